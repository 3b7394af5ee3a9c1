"""GEPA (Agrawal et al., 2026): reflective prompt evolution over a Pareto frontier of cases.

The search is the ``gepa`` library's (the ``[gepa]`` extra), driven through promptci's own
adapter. Each iteration

1. picks a parent among the candidates that are best on at least one dev case (the Pareto
   frontier), not only the best on average;
2. answers a minibatch of train cases with it, through the eval engine (cache, budget,
   batching, the shared-prefix cache), and keeps the reply, the expected answer and the
   scorer's note of each;
3. asks the optimizer model to rewrite the instruction from those cases, failing ones first
   (:func:`promptci.optimize.metaprompt.gepa`); a reply that hygiene refuses is stored with
   its reason and the next one is sampled, up to ``--candidates`` per iteration;
4. tries the child on the same minibatch, and only when it beats its parent there scores it
   on dev and adds it to the pool.

Each iteration is one stored step: its refused replies, then the child with its parent, its
minibatch (train) score and, once in the pool, its dev score. The final choice is the best dev
score; as for every method it must then beat the constant answer on dev and pass the held-out
test.

For a pipeline a candidate holds every step's instruction, and it is always scored end to end.
Each iteration changes one step: the most blamed one on the failing cases of the minibatch
(``--credit blame``: the backward pass of :mod:`promptci.optimize.credit`, stored in the
``credit`` table), else the steps in turn. The reflection on a step reads each case's input and
output at that step, the pipeline's final answer, the expected one, and the backward pass's
feedback on that step. ``--set gepa.merge=true`` also lets gepa merge two pool members that
improved different steps (its system-aware merge); a merge is stored as an iteration whose
``target`` is ``merge``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from ...errors import InputError
from ...evals.baseline import expected_text
from ...evals.dataset import EvalCase
from ...providers.replies import readable
from ...store import TrajectoryRow
from .. import metaprompt
from ..components import TOOL, ToolDescriptions
from ..context import Context
from ..credit import CaseTrace, user_turn
from ..edits import normalised_hash
from ..engine import Method, Proposal, best_by, classify, report_step, sample, score_on, scored_by_hash, store_step
from ..evaluate import Scored
from ..pipeline import CREDIT_CASES, PipelineSearch, read_state, state_text
from ..settings import Proposing
from ..trajectory import new_row
from . import register
from ._gepa_library import Adapter, Events, Quiet, Selector

COMPONENT = "instruction"
INSTALL = "pip install 'promptci-gate[gepa]'  (or: pip install gepa==0.1.4)"


class GepaConfig(Proposing):
    exemplars: int = Field(0, ge=0, le=0, description="not used: a reflection shows the minibatch's own cases")
    minibatch: int = Field(3, ge=1, description="train cases a child must beat its parent on before dev scores it")
    feedback_cases: int = Field(6, ge=1, description="cases shown to the optimizer model per reflection, failing first")
    selection: Literal["pareto", "current_best"] = Field(
        "pareto", description="how a parent is chosen: among the frontier of dev cases, or the best on average"
    )
    max_tokens: int = Field(160, ge=1, description="the longest reply the optimizer model may write, in tokens")
    merge: bool = Field(False, description="for a pipeline: also merge pool members that improved different steps")
    target: Literal["instruction", "tool-descriptions", "both"] = Field(
        "instruction",
        description="what a reflection rewrites: the instruction, the prompt's tool descriptions, or both",
    )


class _Spent(Exception):
    """Raised inside gepa's loop when the budget cannot pay for the next evaluation."""


@register
class Gepa(Method[GepaConfig]):
    name = "gepa"
    description = "reflective evolution: rewrites from failing cases' feedback; parents from a Pareto frontier of cases"
    Config = GepaConfig
    steps_help = "2 passes over train in minibatches of 3 (at least 4)"
    scored_on = "dev"
    tags = ("<INS>", "</INS>")
    searches_pipelines = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.system: PipelineSearch | None = None  # the pipeline searched, if it is one
        self._programs: list[TrajectoryRow] = []  # gepa's candidate index -> its row
        self._pending: list[TrajectoryRow] = []  # this iteration's rows
        self._child: int | None = None  # the index in _pending of the child being tried
        self._step = 0
        self._parent: TrajectoryRow | None = None
        self._done = 0  # iterations finished
        self._failure: Exception | None = None  # what ended a proposal inside gepa's loop
        self._dev: dict[str, Scored] = {}  # each candidate's scoring on dev, by its text
        self._critique: dict[str, str] = {}  # this iteration: case id -> the backward pass's feedback on the step
        self._stored = max((r.step for r in ctx.rows), default=0)  # a resumed search replays these from the cache
        self.tools: ToolDescriptions | None = None  # with a tool target, the components a candidate changes
        if self.config.target != "instruction":
            option = f"gepa.target={self.config.target}"
            self.tools = ToolDescriptions(ctx.evaluator, instruction=self.config.target == "both", option=option)

    def initial_text(self) -> str:
        return self.tools.initial_text() if self.tools else super().initial_text()

    def describe(self, text: str) -> str:
        return self.tools.describe(text) if self.tools else text

    @classmethod
    def default_steps(cls, n_train: int) -> int:
        return max(4, 2 * math.ceil(n_train / 3))

    def per_step(self) -> str:
        changed = "one step's instruction" if self.system else "the instruction"
        return (
            f"one child per iteration ({changed}) from up to {self.ctx.settings.candidates} reflection replies,"
            f" tried on {self.config.minibatch} train cases against its parent, then on dev if better"
        )

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        row, _ = score_on(self.ctx, row, "dev")
        return row

    def parse(self, reply: str) -> str | None:
        return metaprompt.parse_opro(reply)

    def final(self) -> TrajectoryRow:
        scored = [r for r in self.ctx.scored_rows() if r.dev_score is not None]
        return best_by(scored, lambda r: (r.dev_score or 0.0, -r.step, -r.candidate))

    def frontier(self) -> list[tuple[TrajectoryRow, int, int]]:
        """The pool (every candidate scored on dev), with the dev cases each is best on."""
        pool = [r for r in self.ctx.rows if r.dev_score is not None and r.accepted and r.text in self._dev]
        found = []
        for row in pool:
            best = sole = 0
            for case in self.ctx.split.dev:
                mine = self._dev[row.text].per_case.get(case.id, 0.0)
                others = [self._dev[r.text].per_case.get(case.id, 0.0) for r in pool if r is not row]
                if all(mine >= o for o in others):
                    best += 1
                    sole += all(mine > o for o in others)
            found.append((row, best, sole))
        return found

    def search_pipeline(self, system: Any) -> str:
        if self.tools:
            raise InputError(f"gepa.target={self.config.target} rewrites one prompt's tools, not a pipeline's")
        self.system = system
        return self.search()

    def search(self) -> str:
        try:
            from gepa.api import optimize
        except ImportError:
            raise InputError("--method gepa needs the gepa library", hint=INSTALL) from None
        ctx = self.ctx
        initial = ctx.rows[0]
        self._programs = [initial]
        seed = read_state(initial.text) if self.system or self.tools else {COMPONENT: initial.text}
        assert seed is not None, "a pipeline's initial row holds its instructions"
        settings = ctx.settings
        try:
            optimize(
                seed_candidate=seed,
                trainset=list(ctx.split.train),
                valset=list(ctx.split.dev),
                adapter=Adapter(self),
                candidate_selection_strategy=self.config.selection,
                reflection_minibatch_size=min(self.config.minibatch, len(ctx.split.train)),
                module_selector=Selector(self),
                use_merge=self.config.merge and self.system is not None,
                stop_callbacks=[self._stop],
                callbacks=[Events(self)],
                logger=Quiet(),
                seed=settings.seed,
                skip_perfect_score=True,
                perfect_score=1.0,
                raise_on_exception=True,
                display_progress_bar=False,
            )
        except _Spent:
            self._flush()
            return "budget"
        if isinstance(self._failure, _Spent):
            return "budget"
        if self._failure is not None:  # gepa logs and skips a failed proposal: this is ours to raise
            raise self._failure
        return "budget" if ctx.spent() and self._done < self.steps() else "complete"

    def candidates(self, step: int) -> list[TrajectoryRow]:
        raise InputError("gepa runs its own search; it has no per-step candidates")

    # -- a candidate: {"instruction": text} for a prompt, {step id: text} for a pipeline -----

    def text(self, candidate: Mapping[str, str]) -> str:
        """A candidate as a trajectory row's text."""
        return state_text(dict(candidate)) if self.system or self.tools else candidate[COMPONENT]

    def score(self, candidate: Mapping[str, str], cases: list[EvalCase]) -> Scored:
        if self.system:
            return self.system.score(dict(candidate), cases)
        return self.ctx.score(self.text(candidate), cases)

    # -- what gepa calls back -------------------------------------------------------------

    def _stop(self, gepa_state: Any) -> bool:
        return self._failure is not None or self._done >= self.steps() or self.ctx.spent()

    def evaluate(
        self, cases: list[EvalCase], candidate: Mapping[str, str], traces: bool
    ) -> tuple[Scored, list[dict[str, Any]] | None]:
        """``candidate`` scored on ``cases`` through the eval engine; the cases' traces when asked."""
        ctx = self.ctx
        calls = len(cases) * (len(self.system.slots) if self.system else 1)
        if not ctx.affords(calls):
            raise _Spent  # never score a candidate in part: stop before it
        scored = self.score(candidate, cases)
        if not scored.complete:
            raise _Spent
        text = self.text(candidate)
        if {c.id for c in cases} == {c.id for c in ctx.split.dev}:
            self._dev[text] = scored
        if self._child is not None and text == self._pending[self._child].text:
            row = replace(self._pending[self._child], status="scored")  # a merge is first tried on dev cases
            if {c.id for c in cases} <= {c.id for c in ctx.split.train}:
                row = replace(row, train_score=scored.score, train_run=scored.run_id)
            self._pending[self._child] = _spent_on(row, scored)
        if not traces:
            return scored, None
        steps = self.system.traces(scored, cases) if self.system else {}
        threshold = ctx.evaluator.task.suite.case_threshold
        found = []
        for case in cases:
            score = scored.per_case.get(case.id, 0.0)
            expected = expected_text(case)
            if score >= threshold:
                feedback = "correct."
            else:
                feedback = f"wrong: the expected response is {expected!r}."
                if case.id not in scored.per_case:
                    feedback = f"no answer (the call failed): the expected response is {expected!r}."
                note = scored.notes.get(case.id)
                if note:
                    feedback += f" The scorer noted: {note}."
            found.append(
                {
                    "case": case.id,
                    "question": "" if self.system else ctx.question(case),
                    "reply": readable(scored.outputs.get(case.id, "")) or "",  # tool calls as name(arg=…)
                    "expected": expected,
                    "feedback": feedback,
                    "score": score,
                    "trace": steps.get(case.id),
                }
            )
        return scored, found

    def component(self, records: Sequence[Mapping[str, Any]], candidate: Mapping[str, str]) -> str:
        """The component to change this iteration. For a pipeline, with ``--credit blame``, the
        step the backward pass blames most on the minibatch's failing cases, else the next in turn."""
        self._critique = {}
        system = self.system
        if system is None:
            threshold = self.ctx.evaluator.task.suite.case_threshold
            return self.tools.blamed(records, candidate, threshold) if self.tools else COMPONENT
        if self.ctx.settings.credit != "blame":
            return system.turn(self._step)
        threshold = self.ctx.evaluator.task.suite.case_threshold
        failing: list[CaseTrace] = [
            r["trace"] for r in sorted(records, key=lambda r: r["score"]) if r["score"] < threshold and r["trace"]
        ]
        if not self.ctx.affords(len(failing) * (len(system.slots) + 2)):
            raise _Spent
        target, _ = system.assign(self._step, failing[:CREDIT_CASES], dict(candidate))
        self._critique = {c.case_id: c.feedback for c in system.credit if c.step == self._step and c.step_id == target}
        return target

    def reflections(self, name: str, records: Sequence[Mapping[str, Any]]) -> list[metaprompt.Reflection]:
        """The cases shown for component ``name``, failing first: for a pipeline's step, its own
        input and output in each case, the final answer, and the backward pass's feedback on it."""
        ordered = sorted(records, key=lambda r: r["score"])[: self.config.feedback_cases]
        if self.system is None:
            return [metaprompt.Reflection(r["question"], r["reply"], r["expected"], r["feedback"]) for r in ordered]
        last = self.system.slots[-1].id
        shown = []
        for r in ordered:
            said = next((s for s in (r["trace"].steps if r["trace"] else ()) if s.step_id == name), None)
            if said is None:  # the step did not run: an earlier one failed
                continue
            feedback = r["feedback"]
            if r["case"] in self._critique:
                feedback += f" On this step: {self._critique[r['case']]}"
            final = None if name == last else r["reply"]
            shown.append(metaprompt.Reflection(user_turn(said), said.output or "", r["expected"], feedback, final))
        return shown

    def reflect(self, name: str, candidate: Mapping[str, str], records: Sequence[Mapping[str, Any]]) -> str | None:
        """A new text for component ``name`` from the optimizer model, or None when every reply was refused."""
        ctx, system = self.ctx, self.system
        parent = self._parent or self._programs[0]
        view, step = ctx, None
        if system is not None:  # the optimizer sees the step: its instruction, its rows, its feedback
            state = dict(candidate)
            index = next(i for i, s in enumerate(system.slots) if s.id == name)
            view = system.view(name, state, parent, list(self._critique.values()))
            view.questions = system.questions(view, self._step, index, state, 0)
            step = (name, index + 1, len(system.slots))
            parent = view.rows[0]
        if name.startswith(TOOL):
            prompt = metaprompt.gepa_tool(name.removeprefix(TOOL), candidate[name], self.reflections(name, records))
        else:
            prompt = metaprompt.gepa(
                candidate[name], self.reflections(name, records), view.evaluator.slot.position, step
            )
        if self.tools:  # hygiene and edit distance compare the component with its parent's
            parent = replace(parent, text=candidate[name])
        proposal = Proposal(prompt, parent)
        seen = scored_by_hash(view) if not self.tools else self.tools.tried(name, candidate, ctx.rows)
        for r in self._pending:
            if r.status == "scored":
                own = read_state(r.text) if system or self.tools else {name: r.text}
                if own and name in own:
                    seen[normalised_hash(own[name])] = r
        for attempt in range(ctx.settings.candidates):
            if not ctx.affords(1):
                raise _Spent
            before = (ctx.usage.calls, ctx.usage.tokens, ctx.usage.cost)
            reply = sample(view, self, proposal, self._step, n=1, first=attempt)[0]
            row = classify(view, self, self._step, len(self._pending), reply, proposal, seen)
            row = replace(
                row,
                target=name,
                calls=ctx.usage.calls - before[0],
                tokens=ctx.usage.tokens - before[1],
                cost=ctx.usage.cost - before[2],
            )
            if row.status == "budget":
                raise _Spent
            if row.status == "duplicate":  # a text already tried: ask again rather than score it twice
                row = replace(row, train_score=None, dev_score=None)
            if system is not None:
                row = system.full_row(row, name, dict(candidate), self._parent or self._programs[0], accepted=False)
            elif self.tools and row.status not in ("unparsable", "error"):
                whole = state_text({**candidate, name: row.text})
                row = replace(row, text=whole, text_hash=normalised_hash(whole))
            self._pending.append(row)
            if row.status == "new":
                self._child = len(self._pending) - 1
                return (read_state(row.text) or {})[name] if system or self.tools else row.text
        return None

    # -- gepa's events --------------------------------------------------------------------

    def iteration_start(self, iteration: int) -> None:
        self._step = iteration
        self._pending, self._child, self._parent = [], None, None

    def selected(self, index: int) -> None:
        self._parent = self._programs[index]

    def merging(self, parents: Sequence[int], candidate: Mapping[str, str]) -> None:
        """A merge of two pool members: tried like a child, stored with the target ``merge``."""
        first = self._programs[parents[0]]
        row = new_row(self.ctx.id, self._step, len(self._pending), first, self.text(candidate), "new", target="merge")
        self._pending.append(row)
        self._child = len(self._pending) - 1

    def accepted(self, index: int) -> None:
        if self._child is None:
            return
        row = replace(self._pending[self._child], accepted=True)
        self._pending[self._child] = row
        self._place(index, row)

    def _place(self, index: int, row: TrajectoryRow) -> None:
        """``row`` as gepa's candidate ``index`` (its dev scores may come before its acceptance)."""
        while len(self._programs) <= index:
            self._programs.append(row)
        self._programs[index] = row

    def valset(self, index: int, scores: Mapping[Any, float]) -> None:
        if self._child is None or index == 0:
            return
        dev = [scores[i] for i in sorted(scores)]
        row = self._pending[self._child]
        run = self._dev[row.text].run_id if row.text in self._dev else None
        row = replace(row, dev_score=sum(dev) / len(dev) if dev else None, dev_run=run)
        self._pending[self._child] = row
        self._place(index, row)

    def iteration_end(self) -> None:
        self._flush()
        self._done += 1

    def _flush(self) -> None:
        rows = [r if r.status != "new" else replace(r, status="budget") for r in self._pending]
        self._pending, self._child = [], None
        if not rows:
            return
        if self._step > self._stored:
            store_step(self.ctx, rows)
        report_step(self.ctx, self, self._step, rows)


def _spent_on(row: TrajectoryRow, scored: Scored) -> TrajectoryRow:
    return replace(row, calls=row.calls + scored.calls, tokens=row.tokens + scored.tokens, cost=row.cost + scored.cost)

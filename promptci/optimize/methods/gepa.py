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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import Field

from ...errors import InputError
from ...evals.baseline import expected_text
from ...evals.dataset import EvalCase
from ...store import TrajectoryRow
from .. import metaprompt
from ..engine import Method, Proposal, best_by, classify, report_step, sample, score_on, scored_by_hash, store_step
from ..evaluate import Scored, StepEvaluator
from ..settings import Proposing
from . import register

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

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        if isinstance(ctx.evaluator, StepEvaluator):
            raise InputError("gepa optimizes a prompt; a pipeline's steps are not supported by it yet")
        self._programs: list[TrajectoryRow] = []  # gepa's candidate index -> its row
        self._pending: list[TrajectoryRow] = []  # this iteration's rows
        self._child: int | None = None  # the index in _pending of the child being tried
        self._step = 0
        self._parent: TrajectoryRow | None = None
        self._done = 0  # iterations finished
        self._failure: Exception | None = None  # what ended a proposal inside gepa's loop
        self._dev: dict[str, Scored] = {}  # each instruction's scoring on dev
        self._stored = max((r.step for r in ctx.rows), default=0)  # a resumed search replays these from the cache

    @classmethod
    def default_steps(cls, n_train: int) -> int:
        return max(4, 2 * math.ceil(n_train / 3))

    def per_step(self) -> str:
        return (
            f"one child per iteration from up to {self.ctx.settings.candidates} reflection replies, tried on"
            f" {self.config.minibatch} train cases against its parent, then on dev if better"
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
        pool = [r for r in self.ctx.scored_rows() if r.dev_score is not None and r.text in self._dev]
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

    def search(self) -> str:
        try:
            from gepa.api import optimize
        except ImportError:
            raise InputError("--method gepa needs the gepa library", hint=INSTALL) from None
        ctx = self.ctx
        self._programs = [ctx.rows[0]]
        settings = ctx.settings
        try:
            optimize(
                seed_candidate={COMPONENT: ctx.rows[0].text},
                trainset=list(ctx.split.train),
                valset=list(ctx.split.dev),
                adapter=_Adapter(self),
                candidate_selection_strategy=self.config.selection,
                reflection_minibatch_size=min(self.config.minibatch, len(ctx.split.train)),
                module_selector="round_robin",
                stop_callbacks=[self._stop],
                callbacks=[_Events(self)],
                logger=_Quiet(),
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

    # -- what gepa calls back -------------------------------------------------------------

    def _stop(self, gepa_state: Any) -> bool:
        return self._failure is not None or self._done >= self.steps() or self.ctx.spent()

    def evaluate(self, cases: list[EvalCase], text: str, traces: bool) -> tuple[Scored, list[dict[str, Any]] | None]:
        """``text`` scored on ``cases`` through the eval engine; the cases' traces when asked."""
        ctx = self.ctx
        if not ctx.affords(len(cases)):
            raise _Spent  # never score a candidate in part: stop before it
        scored = ctx.score(text, cases)
        if not scored.complete:
            raise _Spent
        if {c.id for c in cases} == {c.id for c in ctx.split.dev}:
            self._dev[text] = scored
        if self._child is not None and text == self._pending[self._child].text:
            row = self._pending[self._child]
            if {c.id for c in cases} <= {c.id for c in ctx.split.train}:
                row = replace(row, train_score=scored.score, train_run=scored.run_id, status="scored")
            self._pending[self._child] = _spent_on(row, scored)
        if not traces:
            return scored, None
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
                    "question": ctx.question(case),
                    "reply": scored.outputs.get(case.id, ""),
                    "expected": expected,
                    "feedback": feedback,
                    "score": score,
                }
            )
        return scored, found

    def reflect(self, current: str, records: Sequence[Mapping[str, Any]]) -> str | None:
        """A new instruction from the optimizer model, or None when every reply was refused."""
        ctx = self.ctx
        ordered = sorted(records, key=lambda r: r["score"])  # failing cases first
        shown = [
            metaprompt.Reflection(r["question"], r["reply"], r["expected"], r["feedback"])
            for r in ordered[: self.config.feedback_cases]
        ]
        proposal = Proposal(metaprompt.gepa(current, shown, ctx.evaluator.slot.position), self._parent)
        seen = scored_by_hash(ctx)
        seen.update({r.text_hash: r for r in self._pending if r.status == "scored"})
        for attempt in range(ctx.settings.candidates):
            if not ctx.affords(1):
                raise _Spent
            before = (ctx.usage.calls, ctx.usage.tokens, ctx.usage.cost)
            reply = sample(ctx, self, proposal, self._step, n=1, first=attempt)[0]
            row = classify(ctx, self, self._step, len(self._pending), reply, proposal, seen)
            row = replace(
                row,
                target=COMPONENT,
                calls=ctx.usage.calls - before[0],
                tokens=ctx.usage.tokens - before[1],
                cost=ctx.usage.cost - before[2],
            )
            if row.status == "budget":
                raise _Spent
            if row.status == "duplicate":  # a text already tried: ask again rather than score it twice
                row = replace(row, train_score=None, dev_score=None)
            self._pending.append(row)
            if row.status == "new":
                self._child = len(self._pending) - 1
                return row.text
        return None

    # -- gepa's events --------------------------------------------------------------------

    def iteration_start(self, iteration: int) -> None:
        self._step = iteration
        self._pending, self._child, self._parent = [], None, None

    def selected(self, index: int) -> None:
        self._parent = self._programs[index]

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


@dataclass
class _Adapter:
    """promptci as gepa sees it: a candidate is ``{"instruction": text}``, a data instance a case."""

    method: Gepa
    propose_new_texts: Any = None

    def __post_init__(self) -> None:
        self.propose_new_texts = self._propose

    def evaluate(self, batch: list[EvalCase], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        text = candidate[COMPONENT]
        scored, traces = self.method.evaluate(batch, text, capture_traces)
        scores = [scored.per_case.get(c.id, 0.0) for c in batch]
        outputs = [scored.outputs.get(c.id, "") for c in batch]
        return EvaluationBatch(outputs=outputs, scores=scores, trajectories=traces)

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        return {name: list(eval_batch.trajectories or []) for name in components_to_update}

    def _propose(
        self, candidate: dict[str, str], dataset: Mapping[str, Sequence[Mapping[str, Any]]], components: list[str]
    ) -> dict[str, str]:
        new = {}
        try:
            for name in components:
                text = self.method.reflect(candidate[name], dataset.get(name, []))
                if text is not None:
                    new[name] = text
        except Exception as exc:  # gepa would log it and go on; stop the search and raise it after
            self.method._failure = exc
            return {}
        return new


class _Events:
    """gepa's callbacks, passed on to the method; the rest are ignored."""

    def __init__(self, method: Gepa) -> None:
        self.method = method

    def on_iteration_start(self, event: Mapping[str, Any]) -> None:
        self.method.iteration_start(event["iteration"])

    def on_candidate_selected(self, event: Mapping[str, Any]) -> None:
        self.method.selected(event["candidate_idx"])

    def on_candidate_accepted(self, event: Mapping[str, Any]) -> None:
        self.method.accepted(event["new_candidate_idx"])

    def on_valset_evaluated(self, event: Mapping[str, Any]) -> None:
        self.method.valset(event["candidate_idx"], event["scores_by_val_id"])

    def on_iteration_end(self, event: Mapping[str, Any]) -> None:
        self.method.iteration_end()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda event: None
        raise AttributeError(name)


class _Quiet:
    """gepa's log lines go nowhere: promptci reports progress itself."""

    def log(self, message: str) -> None:
        pass

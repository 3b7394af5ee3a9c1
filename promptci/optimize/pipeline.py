"""Optimizing a pipeline as one system: one step's instruction at a time, scored end to end.

Each step of the search:

1. **Credit**: the current pipeline answers a minibatch of train cases; for the ones it
   gets wrong, the optimizer model reads each trace backwards and names the step most
   to blame (:mod:`.credit`). The most-blamed step is changed; when no case names one,
   or with ``credit: round-robin``, the steps take turns. Feedback and blame are stored
   in the ``credit`` table.
2. **Search**: the method (GPO, OPRO, TextGrad …) runs one of its own steps on that
   step's instruction, through a view of the optimization that shows it only that
   step: its current instruction, the earlier candidates for it, and the feedback on
   it. Every candidate is scored on the whole pipeline, the other steps held at their
   current instructions, so the steps before it come from the response cache and a
   candidate for step k costs only the calls of steps k and later.
3. **Move**: the best candidate by dev score replaces the step's instruction when it
   beats the current pipeline on dev.

A trajectory row's text is the whole pipeline's instructions, as JSON by step id, and
its ``target`` the step it changes. The held-out test compares the initial pipeline and
the chosen one end to end; the winner may change several prompt files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, PromptciError
from ..evals.dataset import EvalCase
from ..evals.plan import Task
from ..pipelines.load import Pipeline
from ..pipelines.steps import StepError, context, messages
from ..project import Project
from ..prompts import schemafiles
from ..prompts.prompt import Prompt, content_hash
from ..prompts.registry import parse_prompt
from ..settings import ModelSettings
from ..store import CreditRow, Store, TrajectoryRow, now
from . import credit as credits
from .context import Context, Reporter
from .edits import normalised_hash
from .engine import Method, below_constant
from .evaluate import Scored, StepEvaluator, pipeline_variant
from .instruction import Slot, instruction_slot, replace_scalar
from .outcome import Outcome, finished, new_id, record_interrupted, record_outcome
from .settings import Settings
from .split import split_cases
from .trajectory import new_row

CREDIT_CASES = 4  # failing train cases read backwards per step
CREDIT_MODES = ("blame", "round-robin")


@dataclass(frozen=True)
class StepSlot:
    """Where one step's instruction lives in its prompt."""

    id: str
    prompt: Prompt
    slot: Slot


@dataclass
class Round:
    """One search step's credit: the step changed, how it was chosen, and the votes."""

    step: int
    target: str
    chosen_by: str  # "blame" or "turn"
    votes: dict[str, int]


def state_text(instructions: dict[str, str]) -> str:
    """A pipeline's instructions as one trajectory text: JSON by step id, in step order."""
    return json.dumps(instructions, ensure_ascii=False)


def read_state(text: str) -> dict[str, str] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()) else None


class PipelineSearch:
    """One pipeline optimization: its steps' slots, the search loop, and the held-out test."""

    def __init__(
        self,
        project: Project,
        task: Task,
        settings: Settings,
        optimizer: ModelSettings,
        *,
        base_commit: str,
        reporter: Reporter | None = None,
        db: Path | None = None,
        resume: str | None = None,
    ) -> None:
        """A new search, or with ``resume`` the stored optimization of that id, continued."""
        pipeline = task.prompt
        assert isinstance(pipeline, Pipeline), "a pipeline's task"
        if settings.credit not in CREDIT_MODES:
            raise InputError(f"unknown credit '{settings.credit}'", hint=f"one of: {', '.join(CREDIT_MODES)}")
        self.pipeline = pipeline
        self.task = task
        self.slots = [
            StepSlot(stage.step.id, stage.prompt, instruction_slot(stage.prompt.spec, settings.position))
            for stage in task.stages
        ]
        db = db or project.path(project.config.db)
        evaluator = StepEvaluator(project, task, 0, tuple(s.prompt for s in self.slots), settings.position, db=db)
        split = split_cases(task.cases, settings.split, settings.seed)
        opt_id = resume or new_id()
        self.ctx = Context(opt_id, project, settings, evaluator, split, optimizer, db, base_commit, reporter=reporter)
        self.resume = resume is not None
        self.rounds: list[Round] = []
        self.credit: list[CreditRow] = []
        self.frontier: list[tuple[TrajectoryRow, int, int]] = []

    @property
    def initial(self) -> dict[str, str]:
        return {s.id: s.slot.initial for s in self.slots}

    def prompts(self, instructions: dict[str, str]) -> tuple[Prompt, ...]:
        """Each step's prompt holding its instruction from ``instructions``."""
        out = []
        for s in self.slots:
            text = instructions.get(s.id, s.slot.initial)
            if text == s.slot.initial:
                out.append(s.prompt)
                continue
            source = replace_scalar(s.prompt.source, s.prompt.path, s.slot.loc, s.slot.compose(text))
            doc, spec = parse_prompt(source, s.prompt.path, schemafiles.worktree(self.ctx.project.root))
            out.append(Prompt(spec, s.prompt.path, source, content_hash(doc.data)))
        return tuple(out)

    def score(self, instructions: dict[str, str], cases: list[EvalCase], *, limited: bool = True) -> Scored:
        """The pipeline with ``instructions`` scored on ``cases``; within what is left of the
        budget, unless not ``limited`` (the final held-out scoring is outside it)."""
        task = pipeline_variant(self.task, self.prompts(instructions), cases)
        scored = self.ctx.evaluator.score_task(task, cases, budget=self.ctx.remaining() if limited else None)
        self.ctx.usage.calls += scored.calls
        self.ctx.usage.tokens += scored.tokens
        self.ctx.usage.cost += scored.cost
        return scored

    def run(self, method_cls: type[Method[Any]]) -> Outcome:
        ctx = self.ctx
        started = time.perf_counter()
        with Store(ctx.db) as store:
            if self.resume:
                self._restore(store)
            else:
                store.start_optimization(
                    ctx.id,
                    prompt=self.pipeline.name,
                    suite=self.task.suite_name,
                    method=ctx.settings.method,
                    base_commit=ctx.base_commit,
                    settings=ctx.settings.to_json(),
                    initial=state_text(self.initial),
                )
        status = "complete"
        try:
            if ctx.rows:  # resumed: on from the last step taken, at the pipeline it had moved to
                current = max((r for r in ctx.rows if r.accepted), key=lambda r: r.step)
                first = max(r.step for r in ctx.rows) + 1
            else:
                if ctx.reporter:
                    ctx.reporter.phase("loading the model, then scoring the initial pipeline on train and dev")
                current = self._initial_row()
                self._store([current])
                first = 1
            total = ctx.settings.steps
            if method_cls.searches_pipelines:  # the method's own search over every step (GEPA)
                method = method_cls(ctx)
                status = method.search_pipeline(self)
                self.frontier = method.frontier()
                first = total + 1
            for step in range(first, total + 1):
                if ctx.spent():
                    status = "budget"
                    break
                current, cut = self._step(step, current, method_cls)
                if ctx.reporter:
                    r = self.rounds[-1]
                    note = f"step {r.target} ({'blamed' if r.chosen_by == 'blame' else 'its turn'})"
                    ctx.reporter.step(step, total, current.dev_score or 0.0, ctx.usage, note, "dev")
                if cut:
                    status = "budget"
                    break
            initial = ctx.rows[0]
            best = max(
                (r for r in ctx.rows if r.accepted and r.dev_score is not None),
                key=lambda r: (r.dev_score or 0.0, -r.step),
            )
            held_back = below_constant(ctx, best, initial)
            if held_back:
                best = initial
            before = self.score(self.initial, ctx.split.test, limited=False)
            if best.text_hash == initial.text_hash:
                after = before
            else:
                after = self.score(self._state(best), ctx.split.test, limited=False)
        except BaseException:
            record_interrupted(ctx)
            raise
        return record_outcome(ctx, self._outcome(method_cls, status, initial, best, before, after, held_back, started))

    def _restore(self, store: Store) -> None:
        """What a stored search had done: its rows, its feedback and blame, each step's choice and
        what it spent (the backward passes' share included only as far as the rows record it)."""
        ctx = self.ctx
        ctx.rows = store.trajectory(ctx.id)
        last = max((r.step for r in ctx.rows), default=-1)
        store.drop_credit_after(ctx.id, last)  # a step stopped before its candidates were stored runs again
        self.credit = store.credit(ctx.id)
        store.update_optimization(ctx.id, status="running", ended_at=None)
        ctx.count_stored()
        order = [s.id for s in self.slots]
        for step in sorted({r.step for r in ctx.rows if r.step > 0}):
            target = next((r.target for r in ctx.rows if r.step == step and r.target), order[0])
            said = [c for c in self.credit if c.step == step]
            votes = {s: sum(c.blamed and c.step_id == s for c in said) for s in order}
            blamed = ctx.settings.credit == "blame" and votes.get(target, 0) > 0
            self.rounds.append(Round(step, target, "blame" if blamed else "turn", votes))

    def _initial_row(self) -> TrajectoryRow:
        ctx = self.ctx
        row = new_row(ctx.id, 0, 0, None, state_text(self.initial), "initial", accepted=True)
        train, dev = self.score(self.initial, ctx.split.train), self.score(self.initial, ctx.split.dev)
        return replace(
            row,
            train_score=train.score,
            dev_score=dev.score,
            train_run=train.run_id,
            dev_run=dev.run_id,
            calls=train.calls + dev.calls,
            tokens=train.tokens + dev.tokens,
            cost=train.cost + dev.cost,
        )

    def _state(self, row: TrajectoryRow) -> dict[str, str]:
        state = read_state(row.text)
        assert state is not None, "a scored pipeline row holds the pipeline's instructions"
        return state

    def _step(self, step: int, current: TrajectoryRow, method_cls: type[Method[Any]]) -> tuple[TrajectoryRow, bool]:
        """One search step on one pipeline step; returns the (possibly new) current row and
        whether the budget cut it short."""
        state = self._state(current)
        target, feedback = self._credit(step, state)
        view = self.view(target, state, current, feedback)
        index = next(i for i, s in enumerate(self.slots) if s.id == target)
        method = method_cls(view)
        view.questions = self.questions(view, step, index, state, getattr(method.config, "exemplars", 0))
        rows = method.choose(step, method.candidates(step))
        cut = any(r.status == "budget" for r in rows)
        pool = [r for r in rows if r.status == "scored" and r.dev_score is not None]
        pick = max(pool, key=lambda r: (r.dev_score or 0.0, -r.candidate), default=None)
        moved = pick is not None and (pick.dev_score or 0.0) > (current.dev_score or 0.0)
        stored = [self.full_row(r, target, state, current, accepted=moved and r is pick) for r in rows]
        self._store(stored)
        if moved:
            current = next(r for r in stored if r.accepted)
        return current, cut

    def view(self, target: str, state: dict[str, str], current: TrajectoryRow, feedback: list[str]) -> Context:
        """The optimization as a method sees it when it changes step ``target`` of the pipeline at
        ``state``: that step's evaluator, the rows for its instruction, and the feedback on it."""
        ctx = self.ctx
        index = next(i for i, s in enumerate(self.slots) if s.id == target)
        evaluator = StepEvaluator(
            ctx.project, self.task, index, self.prompts(state), ctx.settings.position, db=ctx.db, models=ctx.models
        )
        return Context(
            ctx.id,
            ctx.project,
            ctx.settings,
            evaluator,
            ctx.split,
            ctx.optimizer,
            ctx.db,
            ctx.base_commit,
            rows=self._view_rows(target, state, current),
            usage=ctx.usage,
            started=ctx.started,
            feedback=feedback,
        )

    def _credit(self, step: int, state: dict[str, str]) -> tuple[str, list[str]]:
        """The step to change next and the feedback on its instruction."""
        ctx = self.ctx
        wants_feedback = ctx.settings.method == "textgrad"
        if ctx.settings.credit == "round-robin" and not wants_feedback:
            return self.turn(step), []
        return self.assign(step, self._failing(step, state), state)

    def turn(self, step: int) -> str:
        """The step whose turn it is at search step ``step``, recorded as chosen so."""
        order = [s.id for s in self.slots]
        target = order[(step - 1) % len(order)]
        self.rounds.append(Round(step, target, "turn", {}))
        return target

    def assign(self, step: int, traces: list[credits.CaseTrace], state: dict[str, str]) -> tuple[str, list[str]]:
        """Credit from the failing cases ``traces``: the step to change at search step ``step``
        (the most blamed, else the one whose turn it is) and the feedback on its instruction.
        The feedback and the blame are stored in the ``credit`` table."""
        ctx = self.ctx
        order = [s.id for s in self.slots]
        turn = order[(step - 1) % len(order)]
        found = credits.backward(
            ctx.project,
            ctx.optimizer,
            traces,
            state,
            ctx.usage,
            seed=ctx.settings.seed * 1_000_003 + step,
            budget=ctx.budget,
            models=ctx.models,
            db=ctx.db,
        )
        blamed = credits.blamed_step(found, order) if ctx.settings.credit == "blame" else None
        target = blamed or turn
        votes = {s: sum(c.blamed == s for c in found) for s in order}
        self.rounds.append(Round(step, target, "blame" if blamed else "turn", votes))
        created = now()
        rows = [
            CreditRow(
                optimization_id=ctx.id,
                step=step,
                case_id=c.case_id,
                step_id=step_id,
                feedback=text,
                blamed=c.blamed == step_id,
                created_at=created,
            )
            for c in found
            for step_id, text in c.feedback.items()
        ]
        with Store(ctx.db) as store:
            store.add_credit(rows)
        self.credit += rows
        return target, [c.feedback[target] for c in found if target in c.feedback]

    def _failing(self, step: int, state: dict[str, str]) -> list[credits.CaseTrace]:
        """Up to :data:`CREDIT_CASES` train cases the current pipeline gets wrong, with their traces."""
        import random

        ctx = self.ctx
        rng = random.Random(ctx.settings.seed * 1_000_003 + step)
        batch = rng.sample(ctx.split.train, min(len(ctx.split.train), 4 * CREDIT_CASES))
        scored = self.score(state, batch)
        threshold = self.task.suite.case_threshold
        traces = self.traces(scored, batch)
        failing = [traces[c.id] for c in batch if c.id in traces and scored.per_case.get(c.id, 0.0) < threshold]
        return failing[:CREDIT_CASES]

    def traces(self, scored: Scored, cases: list[EvalCase]) -> dict[str, credits.CaseTrace]:
        """How the pipeline answered each of ``cases`` in the scoring ``scored``: the steps that ran, in order."""
        with Store(self.ctx.db) as store:
            steps = store.steps(scored.run_id)
        by_case: dict[str, list[Any]] = {}
        for row in steps:
            by_case.setdefault(row.case_id, []).append(row)
        found = {}
        for case in cases:
            if case.id not in by_case:
                continue
            trace = tuple(credits.Said.of(r) for r in sorted(by_case[case.id], key=lambda r: r.step_index))
            error = next((r.error for r in trace if r.error), None)
            found[case.id] = credits.CaseTrace(case, scored.outputs.get(case.id), error, trace)
        return found

    def questions(
        self, view: Context, step: int, index: int, state: dict[str, str], n: int
    ) -> Callable[[EvalCase], str]:
        """How cases read at step ``index``'s place. The first step's input comes from the case
        alone; a later step's, for the exemplars the method shows, from the current pipeline's
        answers to them (mostly from the cache); any other case reads as its inputs."""
        stage, prompt = self.task.stages[index], self.prompts(state)[index]
        found: dict[str, str] = {}
        if index > 0 and n > 0:
            scored = self.score(state, view.exemplar_cases(step, n))
            with Store(self.ctx.db) as store:
                found = {r.case_id: credits.user_turn(r) for r in store.steps(scored.run_id) if r.step_index == index}

        def read(case: EvalCase) -> str:
            if case.id in found:
                return found[case.id]
            if index == 0:
                try:
                    chat = messages(stage.step, prompt, context(self.pipeline.bind(case.vars), {}))
                    users = [m["content"] for m in chat if m["role"] == "user"]
                    return (users[-1] if users else chat[-1]["content"]).strip()
                except (StepError, PromptciError):
                    pass
            return "\n".join(f"{k}: {v}" for k, v in case.vars.items())

        return read

    def _view_rows(self, target: str, state: dict[str, str], current: TrajectoryRow) -> list[TrajectoryRow]:
        """What the method sees: the rows that changed ``target`` with every other step as it is
        now, their text the target's instruction alone; the current pipeline first."""
        others = {k: v for k, v in state.items() if k != target}
        view = [replace(current, text=state[target], text_hash=normalised_hash(state[target]), status="initial")]
        for r in self.ctx.rows:
            full = read_state(r.text)
            if r is current or r.target != target or full is None:
                continue
            if {k: v for k, v in full.items() if k != target} == others:
                view.append(replace(r, text=full[target], text_hash=normalised_hash(full[target])))
        return view

    def full_row(
        self, row: TrajectoryRow, target: str, state: dict[str, str], current: TrajectoryRow, *, accepted: bool
    ) -> TrajectoryRow:
        """A method's row for one step's instruction as a row for the whole pipeline."""
        row = replace(row, target=target, parent_step=current.step, parent_candidate=current.candidate)
        if row.status in ("unparsable", "error"):  # the text is the optimizer's reply, not an instruction
            return replace(row, accepted=False)
        text = state_text({**state, target: row.text})
        return replace(row, text=text, text_hash=normalised_hash(text), accepted=accepted)

    def _store(self, rows: list[TrajectoryRow]) -> None:
        with Store(self.ctx.db) as store:
            store.add_trajectory(rows)
        self.ctx.rows.extend(rows)

    def _outcome(
        self,
        method_cls: type[Method[Any]],
        status: str,
        initial: TrajectoryRow,
        best: TrajectoryRow,
        before: Scored,
        after: Scored,
        held_back: str,
        started: float,
    ) -> Outcome:
        ctx = self.ctx
        chosen = self.prompts(self._state(best))
        files = [
            (s.prompt.path, s.prompt.source, p.source)
            for s, p in zip(self.slots, chosen, strict=True)
            if p.source != s.prompt.source
        ]
        return finished(
            ctx,
            method=method_cls.name,
            status=status,
            rows=(initial, best),
            scores=(before, after),
            held_back=held_back,
            started=started,
            sources=(self.pipeline.source, self.pipeline.source),
            per_step=f"{ctx.settings.candidates} candidates for one step's instruction per step",
            describe=describe_state,
            files=files,
            rounds=[(r.step, r.target, r.chosen_by, r.votes) for r in self.rounds],
            feedback=[(c.step, c.step_id, c.feedback) for c in self.credit if c.blamed],
            frontier=self.frontier,
        )


def describe_state(text: str) -> str:
    """A pipeline row's instructions as tables show them: ``reason: … · answer: …``."""
    state = read_state(text)
    if state is None:
        return text
    return " · ".join(f"{k}: {v or '(none)'}" for k, v in state.items())

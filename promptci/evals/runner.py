"""Running a plan: cache lookups, batched generation, scoring, and rows stored as they finish.

Results are written in small batches while the run goes on (at most half a second
or 64 rows behind), and flushed on Ctrl-C or SIGTERM, so an interrupted run keeps
what it finished; running the same command again picks those answers up from the
cache.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..conversations.run import Dialogue, converse
from ..pipelines.execute import Answer, Stage, StepResult, Trace, execute, stages_to_run
from ..pipelines.load import Pipeline
from ..pipelines.steps import as_text
from ..project import Project
from ..providers.base import Completion, Request
from ..providers.pool import ModelPool, session_pool
from ..store import CachedResponse, ResultRow, StepRow, Store, dumps, now
from .answers import Budget, Usage, answer, from_cache, to_cache
from .plan import Item, Plan, dialogue
from .scoring import Scorer, make_scorer
from .suite import Turn
from .summary import TaskSummary, summarize
from .turns import Verdict, score_turns


class Progress(Protocol):
    def start(self, total: int, cached: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def status(self, text: str) -> None: ...


@dataclass
class EvalReport:
    run_id: str
    status: str  # complete, budget, interrupted or failed
    summaries: list[TaskSummary]
    rows: list[ResultRow]
    usage: Usage
    skipped: int  # items not run because the budget ran out
    wall_s: float
    db: Path
    estimate: dict[str, Any] | None = None  # what the run was estimated to take, before it started

    @property
    def failed(self) -> bool:
        return any(not s.passed for s in self.summaries)


@dataclass
class _Writer:
    """Buffers result rows and cache entries; flushes every 64 rows or half second."""

    store: Store
    rows: list[ResultRow] = field(default_factory=list)
    pending: list[ResultRow] = field(default_factory=list)
    cache: list[tuple[str, str, CachedResponse]] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)

    def add(
        self,
        row: ResultRow | None,
        cache_entries: Sequence[tuple[str, str, CachedResponse]] = (),
        steps: Sequence[StepRow] = (),
    ) -> None:
        if row is not None:
            self.rows.append(row)
            self.pending.append(row)
        self.cache += cache_entries
        self.steps += steps
        if len(self.pending) + len(self.steps) >= 64 or time.monotonic() - self.last > 0.5:
            self.flush()

    def flush(self) -> None:
        # Taken off the buffers first: a signal held during the write is delivered as it ends,
        # and the final flush must not write the same rows again.
        pending, cache, steps = self.pending, self.cache, self.steps
        self.pending, self.cache, self.steps, self.last = [], [], [], time.monotonic()
        if pending or cache or steps:
            self.store.record(pending, cache, steps)


def run_eval(
    project: Project,
    plan: Plan,
    *,
    use_cache: bool = True,
    budget: Budget | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    git_info: tuple[str | None, str | None, bool | None] = (None, None, None),
    db: Path | None = None,
    models: ModelPool | None = None,
    estimate: dict[str, Any] | None = None,
) -> EvalReport:
    """Run every item of ``plan`` and store the results in the project's database (or ``db``).

    ``models`` keeps the models loaded between runs of one session; by default the run
    has its own."""
    started = time.perf_counter()
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    db_path = db or project.path(project.config.db)
    usage = Usage()
    with Store(db_path) as store:
        config_hash = _config_hash(project)
        store.start_run(
            run_id,
            git_commit=git_info[0],
            branch=git_info[1],
            dirty=git_info[2],
            command=shlex.join(["promptci", *sys.argv[1:]]),
            config_hash=config_hash,
        )
        if estimate is not None:
            store.set_estimate(run_id, json.dumps(estimate))
        writer = _Writer(store)
        scorers = {id(t): make_scorer(t, project) for t in plan.tasks}
        status = "failed"
        try:
            hits = store.cache_get(i.key for i in plan.items if i.request) if use_cache else {}
            if progress:  # a pipeline's case counts once per step, and moves the bar at each
                progress.start(sum(map(_units, plan.items)), sum(1 for i in plan.items if i.key in hits))
            to_run: list[Item] = []
            chains: list[Item] = []
            for item in plan.items:
                if not item.runnable:
                    _finish(writer, scorers, run_id, item, Completion(error=item.error), cached=False, usage=usage)
                elif item.request is None:
                    chains.append(item)
                    continue
                elif item.key in hits:
                    _finish(writer, scorers, run_id, item, from_cache(hits[item.key]), cached=True, usage=usage)
                else:
                    to_run.append(item)
                    continue
                if progress:
                    progress.advance()
            pool = models if models is not None else session_pool(project.root)
            pool.attach(store, run_id)
            skipped = _generate(pool, to_run, writer, scorers, run_id, usage, budget, jobs, progress)
            if chains:
                answer = _answerer(store, pool, usage, budget, jobs, use_cache, progress)
                talks = [i for i in chains if i.task.conversation is not None]
                steps = [i for i in chains if i.task.conversation is None]
                skipped += _run_chains(steps, answer, writer, scorers, run_id, usage, progress) if steps else 0
                if talks:
                    scored = _TurnScorers(project, scorers)
                    skipped += _run_conversations(talks, answer, writer, scored, run_id, usage, progress)
            status = "budget" if skipped else "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            writer.flush()
            store.finish_run(run_id, status)
    return EvalReport(
        run_id,
        status,
        summarize(plan.tasks, writer.rows),
        writer.rows,
        usage,
        skipped,
        time.perf_counter() - started,
        db_path,
        estimate,
    )


def _generate(
    models: ModelPool,
    items: list[Item],
    writer: _Writer,
    scorers: dict[int, Scorer],
    run_id: str,
    usage: Usage,
    budget: Budget | None,
    jobs: int | None,
    progress: Progress | None,
) -> int:
    """Run uncached items, grouped by model; returns how many the budget left unrun."""
    by_model: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_model[item.task.model_id].append(item)
    answered = 0
    for model_id, group in by_model.items():
        if usage.exceeds(budget):
            break
        if progress:
            progress.status(f"loading {model_id}")
        group = group[: usage.calls_left(budget)]  # what the budget can still send
        provider = models.get(group[0].task.settings, jobs)
        if progress:
            progress.status(f"generating with {model_id}")

        def on_done(index: int, completion: Completion, group: list[Item] = group) -> None:
            nonlocal answered
            answered += 1
            usage.add(completion)
            _finish(writer, scorers, run_id, group[index], completion, cached=False, usage=usage)
            if progress:
                progress.advance()

        provider.generate([i.request for i in group if i.request], on_done, lambda: usage.exceeds(budget))
    return len(items) - answered


def _answerer(
    store: Store,
    models: ModelPool,
    usage: Usage,
    budget: Budget | None,
    jobs: int | None,
    use_cache: bool,
    progress: Progress | None,
) -> Answer:
    """How a pipeline's steps are answered in a run: through the run's cache, models and budget."""

    def step_answers(
        stage: Stage, requests: Sequence[Request], keys: Sequence[str]
    ) -> list[tuple[Completion, bool] | None]:
        if progress:
            progress.status(f"step {stage.step.id} ({stage.prompt.name}) with {stage.model_id}")
        found = answer(
            store, models, stage.settings, requests, keys, usage, budget=budget, use_cache=use_cache, jobs=jobs
        )
        if progress:
            progress.advance(sum(1 for f in found if f is not None))
        return found

    return step_answers


def _run_chains(
    items: list[Item],
    answer: Answer,
    writer: _Writer,
    scorers: dict[int, Scorer],
    run_id: str,
    usage: Usage,
    progress: Progress | None,
) -> int:
    """Run the pipelines' cases step by step; returns how many the budget left unfinished."""
    skipped = 0

    def on_trace(trace: Trace) -> None:
        nonlocal skipped
        item = trace.owner
        assert isinstance(item, Item)
        entries = [(key, model, r) for key, model, c in trace.new_answers() if (r := to_cache(c)) is not None]
        if trace.skipped:  # its answers so far are good ones: keep them for the next run
            skipped += 1
            writer.add(None, entries)
            return
        steps = trace.steps
        # A reply its parse rule cannot read is a wrong answer, scored 0 with the reason; the rest
        # of trace errors (a provider's, a render's) are faults of the run, not of the model.
        unread = trace.error if trace.unread else None
        text = steps[-1].completion.text if unread and steps[-1].completion else trace.output_text
        completion = _summed(text, None if unread else trace.error, steps)
        row = _finish(
            writer, scorers, run_id, item, completion, cached=trace.cached, usage=usage, add=False, unread=unread
        )
        writer.add(row, entries, [_step_row(row, s) for s in steps])
        if progress:  # the steps a failed step left unasked
            progress.advance(_units(item) - sum(1 for s in steps if s.completion is not None))

    execute([_trace(i) for i in items], answer, on_trace)
    return skipped


@dataclass
class _TurnScorers:
    """The suite's scorer per task, and a conversation turn's own, built once each."""

    project: Project
    suite: dict[int, Scorer]
    own: dict[int, Scorer] = field(default_factory=dict)

    def scorer(self, item: Item) -> Callable[[Turn | None], Scorer]:
        def pick(turn: Turn | None) -> Scorer:
            if turn is None or turn.scorers is None:
                return self.suite[id(item.task)]
            if id(turn) not in self.own:
                self.own[id(turn)] = make_scorer(item.task, self.project, turn.scorers)
            return self.own[id(turn)]

        return pick


def _run_conversations(
    items: list[Item],
    answer: Answer,
    writer: _Writer,
    scorers: _TurnScorers,
    run_id: str,
    usage: Usage,
    progress: Progress | None,
) -> int:
    """Run the conversation cases turn by turn; returns how many the budget left unfinished."""
    skipped = 0

    def on_end(d: Dialogue) -> None:
        nonlocal skipped
        item = d.owner
        assert isinstance(item, Item)
        entries = [(key, model, r) for key, model, c in d.new_answers() if (r := to_cache(c)) is not None]
        if d.skipped:
            skipped += 1
            writer.add(None, entries)
            return
        completion = _summed(d.replies[-1] if d.replies else None, d.error, d.steps)
        verdict = None
        if d.error is None:
            task, conversation = item.task, item.task.suite.conversation
            how = conversation.score if conversation else "mean"
            verdict = score_turns(item.case, d.replies, scorers.scorer(item), how, task.suite.case_threshold)
        row = _finish(writer, {}, run_id, item, completion, cached=d.cached, usage=usage, add=False, verdict=verdict)
        writer.add(row, entries, [_step_row(row, s) for s in d.steps])
        if progress:  # the turns it never asked for
            progress.advance(max(_units(item) - len(d.steps), 0))

    converse([dialogue(i.task, i.case, i.repeat, i) for i in items], answer, on_end)
    return skipped


def _units(item: Item) -> int:
    """How far a case moves the progress bar: one per step or turn it may ask for, one for a prompt's case."""
    if item.request is not None or not item.runnable:
        return 1
    if item.task.conversation is not None:
        return max(len(item.case.turns) + item.task.conversation.units, 1)
    pipeline = item.task.prompt
    assert isinstance(pipeline, Pipeline), "a pipeline's task"
    return len(stages_to_run(pipeline, item.task.stages))


def _trace(item: Item) -> Trace:
    """The trace an eval item of a pipeline's task starts as."""
    pipeline = item.task.prompt
    assert isinstance(pipeline, Pipeline), "a pipeline's task"
    stages = stages_to_run(pipeline, item.task.stages)
    return Trace(stages, json.loads(item.rendered), item.repeat, item)


def _summed(text: str | None, error: str | None, steps: Sequence[StepResult]) -> Completion:
    """A case's answer from its steps or turns: ``text``, and their latency, tokens and cost added up."""
    done = [s.completion for s in steps if s.completion]
    return Completion(
        text,
        error,
        _total(c.latency_ms for c in done),
        _total(c.tokens_in for c in done),
        _total(c.tokens_out for c in done),
        _total(c.cost for c in done),
    )


def _total(values: Iterable[float | int | None]) -> Any:
    found = [v for v in values if v is not None]
    return sum(found) if found else None


def _step_row(row: ResultRow, step: StepResult) -> StepRow:
    c = step.completion
    return StepRow(
        run_id=row.run_id,
        suite=row.suite,
        prompt=row.prompt,
        case_id=row.case_id,
        repeat_index=row.repeat_index,
        step_index=step.index,
        step_id=step.stage.step.id,
        step_prompt=step.stage.prompt.name,
        step_prompt_hash=step.stage.prompt.content_hash,
        model_id=step.stage.model_id,
        input=step.rendered,
        output=c.text if c else None,
        parsed=as_text(step.parsed) if c and not step.error else None,
        error=step.error,
        latency_ms=c.latency_ms if c else None,
        tokens_in=c.tokens_in if c else None,
        tokens_out=c.tokens_out if c else None,
        cost=c.cost if c else None,
        cached=step.cached,
        created_at=row.created_at,
    )


def _finish(
    writer: _Writer,
    scorers: dict[int, Scorer],
    run_id: str,
    item: Item,
    completion: Completion,
    *,
    cached: bool,
    usage: Usage,
    add: bool = True,
    unread: str | None = None,
    verdict: Verdict | None = None,
) -> ResultRow:
    """Score one answer into its result row, and (with ``add``) hand it to the writer. ``unread``:
    why the answer could not be read (a pipeline step's parse rule); it scores 0 with that note."""
    task = item.task
    scores: dict[str, float] | None = None
    score = passed = note = None
    error = completion.error
    if unread is not None:
        scores, score, passed, note = {}, 0.0, False, unread
    elif verdict is not None:  # a conversation's, scored turn by turn
        scores, score, passed, note = verdict
    elif error is None and completion.text is not None:
        try:
            scores, score, note = scorers[id(task)].score(completion.text, item.case)
            passed = score >= task.suite.case_threshold
        except Exception as exc:  # a scorer that fails is an error on this case, not a zero
            error = f"scorer: {type(exc).__name__}: {exc}"
    if cached:
        usage.cached += 1
    if error:
        usage.errors += 1
    row = ResultRow(
        run_id=run_id,
        suite=task.suite_name,
        suite_hash=task.suite_hash,
        prompt=task.prompt.name,
        prompt_hash=task.prompt.content_hash,
        prompt_commit=task.prompt.version.commit,
        case_id=item.case.id,
        case_name=item.case.name,
        repeat_index=item.repeat,
        model_id=task.model_id,
        params_hash=task.params.digest(),
        input=item.rendered,
        expected=dumps(item.case.expected),
        output=completion.text,
        scores=json.dumps(scores) if scores is not None else None,
        score=score,
        passed=passed,
        error=error,
        latency_ms=completion.latency_ms,
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
        cost=completion.cost,
        cached=cached,
        created_at=now(),
        note=note,
        logprobs=json.dumps(completion.meta, sort_keys=True) if "logprobs" in completion.meta else None,
    )
    if add:
        response = to_cache(completion) if not cached and error is None and item.request else None
        writer.add(row, [(item.key, task.model_id, response)] if response else [])
    return row


def _config_hash(project: Project) -> str:
    import hashlib

    return hashlib.sha256(project.config.model_dump_json().encode()).hexdigest()[:16]

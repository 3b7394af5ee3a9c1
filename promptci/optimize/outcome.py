"""How an optimization ended: its choice, its held-out evidence and its cost, as stored and reported."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..evals.answers import Usage
from ..evals.baseline import Constant
from ..providers import identity
from ..store import Store, TrajectoryRow, now
from .context import Context
from .evaluate import Scored
from .settings import Settings
from .split import Split


@dataclass(kw_only=True)
class Outcome:
    """A finished (or budget-stopped) optimization and its held-out evidence."""

    id: str
    method: str
    status: str  # complete or budget
    settings: Settings
    split: Split
    rows: list[TrajectoryRow]
    initial: TrajectoryRow
    best: TrajectoryRow
    test_before: Scored
    test_after: Scored
    usage: Usage
    wall_s: float
    optimizer_model: str
    task_model: str
    source_before: str
    source_after: str
    path: str
    prompt: str
    suite: str
    base_commit: str
    unparsable: int
    per_step: str = ""  # what one step did, in the method's words
    held_back: str = ""  # why the search's choice was not taken (it did not beat the constant answer)
    constant_dev: Constant | None = None  # the best constant answer on dev and on test
    constant_test: Constant | None = None
    describe: Callable[[str], str] = str  # a candidate's text as tables show it
    # A pipeline's: each prompt file the winner changes (path, before, after); per search step
    # the step changed, whether it was blamed or its turn, and the votes; the blamed steps' feedback.
    files: list[tuple[str, str, str]] = field(default_factory=list)
    # A Pareto search's (GEPA's) pool on dev: each candidate, the dev cases it is best on (ties
    # included) and those it alone is best on.
    frontier: list[tuple[TrajectoryRow, int, int]] = field(default_factory=list)
    rounds: list[tuple[int, str, str, dict[str, int]]] = field(default_factory=list)
    feedback: list[tuple[int, str, str]] = field(default_factory=list)
    # A chain's links: method, dev score before and after, calls, whether it changed the prompt.
    links: list[tuple[str, float | None, float | None, int, bool]] = field(default_factory=list)
    probe: list[str] = field(default_factory=list)  # --method auto: what its probe saw and chose, as markdown

    def rejected(self) -> dict[str, int]:
        """Candidates refused before or instead of scoring, by reason (those the budget stopped are not)."""
        counts = Counter(r.status for r in self.rows if r.status not in ("initial", "scored", "duplicate", "budget"))
        return dict(counts.most_common())

    @property
    def changed(self) -> bool:
        return self.best.text_hash != self.initial.text_hash


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def finished(
    ctx: Context,
    *,
    method: str,
    status: str,
    rows: tuple[TrajectoryRow, TrajectoryRow],
    scores: tuple[Scored, Scored],
    held_back: str,
    started: float,
    sources: tuple[str, str],
    per_step: str,
    describe: Callable[[str], str],
    **extra: Any,
) -> Outcome:
    """The outcome of a search that ended: ``rows`` the initial and best candidates, ``scores``
    their held-out test scores, ``sources`` the file before and after; the rest from ``ctx``.
    ``extra`` sets the fields only some searches have (a pipeline's files, rounds and feedback)."""
    task = ctx.evaluator.task
    return Outcome(
        id=ctx.id,
        method=method,
        status=status,
        settings=ctx.settings,
        split=ctx.split,
        rows=list(ctx.rows),
        initial=rows[0],
        best=rows[1],
        test_before=scores[0],
        test_after=scores[1],
        usage=ctx.usage,
        wall_s=time.perf_counter() - started,
        optimizer_model=identity(ctx.optimizer, ctx.project.root),
        task_model=task.model_id,
        source_before=sources[0],
        source_after=sources[1],
        path=task.prompt.path,
        prompt=task.prompt.name,
        suite=task.suite_name,
        base_commit=ctx.base_commit,
        unparsable=sum(r.status in ("unparsable", "error") for r in ctx.rows),
        per_step=per_step,
        held_back=held_back,
        describe=describe,
        constant_dev=ctx.baseline("dev"),
        constant_test=ctx.baseline("test"),
        **extra,
    )


def record_outcome(ctx: Context, outcome: Outcome) -> Outcome:
    """Store how an optimization ended: its status, choice, held-out scores and cost."""
    with Store(ctx.db) as store:
        store.update_optimization(
            ctx.id,
            status=outcome.status,
            ended_at=now(),
            best=outcome.best.text,
            test_before=outcome.test_before.score,
            test_after=outcome.test_after.score,
            calls=ctx.usage.calls,
            tokens=ctx.usage.tokens,
            cost=ctx.usage.cost,
            wall_s=outcome.wall_s,
        )
    return outcome


def record_interrupted(ctx: Context) -> None:
    with Store(ctx.db) as store:
        store.update_optimization(ctx.id, status="interrupted", ended_at=now())

"""The loop every optimizer method shares: propose, parse, dedupe, score, choose, store.

A method supplies three things: the meta-prompt for a step, which candidates it
accepts after scoring, and its final choice. Everything else is common:

- the seeded train/dev/test split; test is scored once, before and after;
- scoring through the eval engine, so every answer is cached and stored;
- the trajectory in DuckDB, one transaction per step, so a stored step is complete;
- budget accounting over optimizer and task calls, stopping cleanly between calls;
- resuming: the method's state is rebuilt from the stored trajectory, and the step
  that was interrupted is replayed from the response cache.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, cast

from ..errors import InputError
from ..evals.answers import complete
from ..evals.plan import Task
from ..project import Project
from ..providers.base import Completion, GenParams, Request
from ..settings import ModelSettings
from ..store import Store, TrajectoryRow
from .context import Context, Reporter
from .edits import normalised_hash, word_edit_distance
from .evaluate import Evaluator
from .outcome import Outcome, finished, new_id, record_interrupted, record_outcome
from .settings import Options, Proposing, Settings
from .split import split_cases
from .trajectory import new_row


@dataclass(frozen=True)
class Proposal:
    """A step's meta-prompt, the candidate it refines (if one) and GPO's edit budget."""

    text: str
    parent: TrajectoryRow | None
    edit_budget: int | None = None


C = TypeVar("C", bound=Options)


class Method(Generic[C]):
    """The hooks one optimizer method fills in. ``ctx.rows`` holds the trajectory so far.

    A method declares its ``name``, a one-line ``description``, its ``Config`` (the options
    ``--set NAME.KNOB=VALUE`` and an ``optimize:`` block's ``options:`` set) and its
    ``default_steps``, and registers with :func:`promptci.optimize.methods.register`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[Options]] = Options
    steps_help: ClassVar[str] = "10"
    scored_on: ClassVar[str]  # "train" or "dev": the split candidates are scored on
    tags: ClassVar[tuple[str, str]]
    searches_pipelines: ClassVar[bool] = False  # searches a pipeline's steps together (search_pipeline)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = cast(C, self.Config.model_validate(ctx.settings.config))

    @classmethod
    def default_steps(cls, n_train: int) -> int:
        """The search length when none is given, from the number of train cases."""
        return 10

    def steps(self) -> int:
        return self.ctx.settings.steps

    def per_step(self) -> str:
        """What one step does, for the PR body."""
        temperature = getattr(self.config, "temperature", None)
        at = f" at temperature {temperature:g}" if temperature is not None else ""
        return f"{self.ctx.settings.candidates} candidates per step{at}"

    def candidates(self, step: int) -> list[TrajectoryRow]:
        """The step's scored candidates; by default, the optimizer model's proposals."""
        return _candidates(self.ctx, self, step)

    def propose(self, step: int) -> Proposal:
        raise NotImplementedError

    def parse(self, reply: str) -> str | None:
        raise NotImplementedError

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        """The step's rows with ``accepted`` (and any extra scores) set."""
        raise NotImplementedError

    def final(self) -> TrajectoryRow:
        raise NotImplementedError

    def describe(self, text: str) -> str:
        """A candidate's text as a reviewer reads it in tables; by default the instruction itself."""
        return text

    def initial_text(self) -> str:
        """The starting candidate's text: by default the prompt's instruction."""
        return self.ctx.evaluator.initial

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        """Score the starting instruction; OPRO scores train and dev, GPO dev."""
        return row

    def frontier(self) -> list[tuple[TrajectoryRow, int, int]]:
        """For a search that keeps a Pareto frontier of dev cases, its pool (see :class:`Outcome`)."""
        return []

    def files(self, text: str) -> list[tuple[str, str, str]]:
        """Every file candidate ``text`` changes, (path, before, after), where it changes more than the
        prompt file (an example pool it adds); empty for the prompt file alone."""
        return []

    def search_pipeline(self, system: Any) -> str:
        """For a method whose class sets ``searches_pipelines``: its own search over every step of
        a pipeline (``system``, a :class:`~promptci.optimize.pipeline.PipelineSearch`), storing
        whole-pipeline rows; returns ``complete`` or ``budget``. Other methods change one step's
        instruction at a time, chosen by credit."""
        raise NotImplementedError

    def search(self) -> str:
        """Run the steps not yet stored; ``complete``, or ``budget`` when the budget ended it.

        By default each step proposes candidates, chooses among them and is stored as one
        transaction. A method that drives a search of its own (GEPA) overrides this and stores
        each of its iterations with :func:`store_step`.
        """
        ctx = self.ctx
        total = self.steps()
        first = max(r.step for r in ctx.rows) + 1
        for step in range(first, total + 1):
            if ctx.spent() or not ctx.affords(ctx.settings.candidates):
                return "budget"
            rows = self.choose(step, self.candidates(step))
            store_step(ctx, rows)
            report_step(ctx, self, step, rows)
            if any(r.status == "budget" for r in rows):
                return "budget"
        return "complete"


def start(
    project: Project,
    task: Task,
    settings: Settings,
    optimizer: ModelSettings,
    *,
    base_commit: str,
    opt_id: str | None = None,
    reporter: Reporter | None = None,
    db: Path | None = None,
) -> Context:
    """A new optimization, recorded in the store; or, given ``opt_id``, the stored one resumed."""
    db = db or project.path(project.config.db)
    evaluator = Evaluator(project, task, settings.position, db=db)
    split = split_cases(task.cases, settings.split, settings.seed)
    ctx = Context(
        opt_id or new_id(), project, settings, evaluator, split, optimizer, db, base_commit, reporter=reporter
    )
    with Store(db) as store:
        if opt_id is None:
            store.start_optimization(
                ctx.id,
                prompt=task.prompt.name,
                suite=task.suite_name,
                method=settings.method,
                base_commit=base_commit,
                settings=settings.to_json(),
                initial=evaluator.initial,
            )
        else:
            ctx.rows = store.trajectory(ctx.id)
            store.update_optimization(ctx.id, status="running", ended_at=None)
    ctx.count_stored()
    return ctx


def run(ctx: Context, method_cls: type[Method[Any]]) -> Outcome:
    """Run (or continue) the search, then score the initial and chosen instructions on test."""
    started = time.perf_counter()
    method = method_cls(ctx)
    try:
        if not ctx.rows:
            if ctx.reporter:
                ctx.reporter.phase(f"loading the model, then scoring the initial instruction on {method.scored_on}")
            initial = method.score_initial(_initial_row(ctx, method))
            store_step(ctx, [initial])
        status = method.search()
        best = method.final()
        initial = ctx.rows[0]
        held_back = below_constant(ctx, best, initial)
        if held_back:
            best = initial
        before = ctx.evaluator.score(initial.text, ctx.split.test)
        after = before if best.text_hash == initial.text_hash else ctx.evaluator.score(best.text, ctx.split.test)
    except BaseException:
        record_interrupted(ctx)
        raise
    task = ctx.evaluator.task
    outcome = finished(
        ctx,
        method=method.name,
        status=status,
        rows=(initial, best),
        scores=(before, after),
        held_back=held_back,
        started=started,
        sources=(task.prompt.source, ctx.evaluator.source(best.text)),
        per_step=method.per_step(),
        describe=method.describe,
        frontier=method.frontier(),
        files=method.files(best.text) if best.text_hash != initial.text_hash else [],
    )
    return record_outcome(ctx, outcome)


def _step_note(rows: list[TrajectoryRow]) -> str:
    """How a step's candidates fared: "2 new of 4 (1 about-rewrite, 1 budget)"."""
    others = Counter(r.status for r in rows if r.status not in ("scored", "initial"))
    note = f"{sum(r.status == 'scored' for r in rows)} new of {len(rows)}"
    return note + (f" ({', '.join(f'{n} {s}' for s, n in others.most_common())})" if others else "")


def below_constant(ctx: Context, best: TrajectoryRow, initial: TrajectoryRow) -> str:
    """Why ``best`` may not replace ``initial``: its dev score does not beat the best constant
    answer's; empty when it does (or when it is the initial instruction)."""
    if best.text_hash == initial.text_hash:
        return ""
    constant = ctx.baseline("dev")
    if constant is None or best.dev_score is None or best.dev_score > constant.score:
        return ""
    return f"its dev score {best.dev_score:.3f} does not beat the best constant answer on dev, {constant}"


def _selection_score(row: TrajectoryRow, method: Method[Any]) -> float:
    value = row.train_score if method.scored_on == "train" else row.dev_score
    return value if value is not None else 0.0


def _initial_row(ctx: Context, method: Method[Any]) -> TrajectoryRow:
    text = method.initial_text()
    return new_row(ctx.id, 0, 0, None, text, "initial", accepted=True)


def store_step(ctx: Context, rows: list[TrajectoryRow]) -> None:
    """Store one step's rows in one transaction, and add them to the trajectory.

    What the step spent beyond its rows' own accounts (a method's side work, such as GEPA's
    minibatch runs or scoring the demonstrations' train cases) is added to its first row, so
    that the stored trajectory adds up to the calls, tokens and cost the search spent.
    """
    if rows:
        stored = (*ctx.rows, *rows)
        calls = ctx.usage.calls - sum(r.calls for r in stored)
        tokens = ctx.usage.tokens - sum(r.tokens for r in stored)
        cost = ctx.usage.cost - sum(r.cost for r in stored)
        first = rows[0]
        first = replace(
            first,
            calls=first.calls + max(calls, 0),
            tokens=first.tokens + max(tokens, 0),
            cost=first.cost + max(cost, 0.0),
        )
        rows = [first, *rows[1:]]
    with Store(ctx.db) as store:
        store.add_trajectory(rows)
    ctx.rows.extend(rows)


def report_step(ctx: Context, method: Method[Any], step: int, rows: list[TrajectoryRow]) -> None:
    if ctx.reporter:
        top = max((_selection_score(r, method) for r in ctx.scored_rows()), default=0.0)
        ctx.reporter.step(step, method.steps(), top, ctx.usage, _step_note(rows), method.scored_on)


def sample(
    ctx: Context, method: Method[Any], proposal: Proposal, step: int, n: int | None = None, first: int = 0
) -> list[Completion]:
    """The optimizer model's replies to a meta-prompt, seeded by the step: ``candidates`` of
    them, or ``n`` from the ``first``-th on.

    The reply is prefilled with the method's opening tag (a local model continues it; an
    API model answers afresh) and generation stops at the closing tag.
    """
    s, config = ctx.settings, method.config
    assert isinstance(config, Proposing), f"{method.name} samples an optimizer model: its Config extends Proposing"
    params = GenParams(config.max_tokens, config.temperature, seed=s.seed * 1_000_003 + step, stop=(method.tags[1],))
    messages = (("user", proposal.text), ("assistant", method.tags[0]))
    requests = [Request(messages, params, i) for i in range(first, first + (s.candidates if n is None else n))]
    return complete(ctx.project, ctx.optimizer, requests, ctx.usage, budget=ctx.budget, db=ctx.db, models=ctx.models)


def scored_by_hash(ctx: Context) -> dict[str, TrajectoryRow]:
    """The instructions scored so far, by normalised hash: what a new candidate duplicates."""
    return {r.text_hash: r for r in ctx.scored_rows()}


def _candidates(ctx: Context, method: Method[Any], step: int) -> list[TrajectoryRow]:
    """Sample the optimizer, then parse, filter, dedupe and score each reply."""
    calls_before, tokens_before, cost_before = ctx.usage.calls, ctx.usage.tokens, ctx.usage.cost
    proposal = method.propose(step)  # a method's own work for it (TextGrad's feedback) counts too
    replies = sample(ctx, method, proposal, step)
    # What proposing cost is shared by the step's candidates, in whole calls and tokens that add
    # up to what was spent: the record of an optimization is what its server saw.
    calls = _split(ctx.usage.calls - calls_before, len(replies))
    tokens = _split(ctx.usage.tokens - tokens_before, len(replies))
    cost = (ctx.usage.cost - cost_before) / len(replies)
    seen = scored_by_hash(ctx)
    rows: list[TrajectoryRow] = []
    for i, reply in enumerate(replies):
        row = classify(ctx, method, step, i, reply, proposal, seen)
        if row.status == "new":
            cases = ctx.split.train if method.scored_on == "train" else ctx.split.dev
            # Never score a candidate in part; one scored on train keeps room to be confirmed on dev.
            confirm = len(ctx.split.dev) if method.scored_on == "train" else 0
            if ctx.spent() or not ctx.affords(len(cases) + confirm):
                row = replace(row, status="budget")
            else:
                row = score_candidate(ctx, method, row)
                if row.status == "scored":
                    seen[row.text_hash] = row
        rows.append(replace(row, calls=row.calls + calls[i], tokens=row.tokens + tokens[i], cost=row.cost + cost))
    return rows


def _split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` whole numbers, as even as can be, that add up to it."""
    each, rest = divmod(total, parts)
    return [each + (1 if i < rest else 0) for i in range(parts)]


def classify(
    ctx: Context,
    method: Method[Any],
    step: int,
    index: int,
    reply: Completion,
    proposal: Proposal,
    seen: dict[str, TrajectoryRow],
) -> TrajectoryRow:
    """The reply as a candidate row: parsed and filtered, with status ``new`` when it is worth scoring."""
    parent = proposal.parent
    base = new_row(ctx.id, step, index, parent, "", "new", text_hash="", edit_budget=proposal.edit_budget)
    if reply.error is not None:
        status = "budget" if reply.error.startswith("not run: budget") else "error"
        return replace(base, text=reply.error, text_hash=normalised_hash(reply.error), status=status)
    raw = reply.text or ""
    text = method.parse(raw if method.tags[0] in raw else method.tags[0] + raw)
    if text is None:
        return replace(base, text=raw, text_hash=normalised_hash(raw), status="unparsable")
    digest = normalised_hash(text)
    distance = word_edit_distance(parent.text, text) if parent else None
    row = replace(base, text=text, text_hash=digest, edit_distance=distance)
    if len(text) > ctx.settings.max_chars:
        return replace(row, status="too-long")
    if _has_tag(text, method.tags):
        return replace(row, status="has-tag")
    if any(mark in text for mark in ("{{", "{%", "{#")):  # the prompt is a template: this would run
        return replace(row, status="invalid")
    reason = ctx.screen(text, method.config.hygiene, parent=parent.text if parent else None, meta=proposal.text)
    if reason is not None:
        return replace(row, status=reason)
    if digest in seen:  # a duplicate keeps the score it already has
        earlier = seen[digest]
        return replace(row, status="duplicate", train_score=earlier.train_score, dev_score=earlier.dev_score)
    return row


def _has_tag(text: str, tags: tuple[str, str]) -> bool:
    """Whether ``text`` holds one of the method's tags as a tag (``<INS>``, ``</ins >``): the words
    inside them ("instructions", "the end") are ordinary words."""
    names = {tag.strip("<>/ ") for tag in tags} - {""}
    return any(re.search(rf"<\s*/?\s*{re.escape(name)}\s*>", text, re.IGNORECASE) for name in names)


def score_candidate(ctx: Context, method: Method[Any], row: TrajectoryRow) -> TrajectoryRow:
    """A new candidate scored on the method's split: ``scored``, ``collapsed``, ``budget`` or ``invalid``."""
    try:
        ctx.evaluator.variant(row.text)
    except InputError:  # the prompt file cannot hold it
        return replace(row, status="invalid")
    scored, complete = score_on(ctx, row, method.scored_on)
    if scored.status == "collapsed":
        return scored
    return replace(scored, status="scored" if complete else "budget")


def score_on(ctx: Context, row: TrajectoryRow, split: str) -> tuple[TrajectoryRow, bool]:
    """``row`` with its score on ``split`` ("train" or "dev") and the cost added; the flag is
    False when the budget cut the scoring short (then no score is set)."""
    cases = ctx.split.train if split == "train" else ctx.split.dev
    scored = ctx.score(row.text, cases)
    extra: dict[str, Any] = {
        "calls": row.calls + scored.calls,
        "tokens": row.tokens + scored.tokens,
        "cost": row.cost + scored.cost,
    }
    if scored.complete:
        extra[f"{split}_score"] = scored.score
        extra[f"{split}_run"] = scored.run_id
        if row.loss is None and scored.margin is not None:  # a likelihood-ranked suite: its margin breaks ties
            extra["loss"] = -scored.margin
        if row.status != "initial" and scored.collapsed(cases):
            extra["status"] = "collapsed"
    return replace(row, **extra), scored.complete


def best_by(rows: Sequence[TrajectoryRow], key: Callable[[TrajectoryRow], tuple[float, ...]]) -> TrajectoryRow:
    if not rows:
        raise InputError("the optimization has no scored candidate")
    return max(rows, key=key)

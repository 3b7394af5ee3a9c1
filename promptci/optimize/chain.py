"""Chains of methods in one optimization: ``--method gpo+demos``.

Each link starts from the prompt the link before it chose, as a merged branch would, with a
share of one budget: a link gets what is left divided by the links still to run, so a link that
spends less leaves more to the next. Each link is its own stored search; the chain reports one
trajectory (the links' steps one after another), one held-out test of the final prompt against
the initial one, one branch and one PR body, with each link's contribution on dev.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import InputError
from ..evals.answers import Usage
from ..evals.plan import Task
from ..project import Project
from ..settings import ModelSettings
from . import methods
from .context import Reporter
from .engine import run, start
from .outcome import Outcome
from .settings import Settings
from .split import split_cases

MAX_LINKS = 4


def links(method: str) -> list[str]:
    """The methods of ``gpo+demos``, each a known method; one name is a chain of one."""
    names = [n.strip() for n in method.split("+")]
    if len(names) > MAX_LINKS or not all(names) or len(set(names)) != len(names):
        raise InputError(
            f"bad chain '{method}'", hint=f"up to {MAX_LINKS} different methods joined by +, e.g. gpo+demos"
        )
    for name in names:
        methods.get(name)  # an unknown one is an error naming the known ones
    return names


def link_options(method: str, sets: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--set`` items for a chain: each names its method (``demos.k=3``); per link, its options."""
    names = links(method)
    for item in sets:
        prefix = item.partition("=")[0].strip().rpartition(".")[0]
        if prefix not in names:
            raise InputError(f"--set {item}: in a chain, write METHOD.KNOB=VALUE for one of {', '.join(names)}")
    return {
        n: methods.parse_sets(n, [s for s in sets if s.partition("=")[0].strip().startswith(n + ".")]) for n in names
    }


def run_chain(
    project: Project,
    task: Task,
    settings: Settings,
    optimizer: ModelSettings,
    *,
    base_commit: str,
    reporter: Reporter | None = None,
) -> Outcome:
    """Run each link in turn on the prompt the one before chose; the chain's outcome."""
    names = links(settings.method)
    started = time.perf_counter()
    spent = Usage()
    outcomes: list[Outcome] = []
    current = task
    n_train = len(split_cases(task.cases, settings.split, settings.seed).train)
    for i, name in enumerate(names):
        method = methods.get(name)
        budget = _share(settings.budget, spent, time.perf_counter() - started, len(names) - i)
        steps = settings.steps if settings.steps > 0 else method.default_steps(n_train)
        config = methods.configure(name, settings.config.get(name, {}))
        link = replace(settings, method=name, steps=steps, budget=budget, config=config)
        if reporter:
            reporter.phase(f"link {i + 1} of {len(names)}: {name}")
        ctx = start(project, current, link, optimizer, base_commit=base_commit, reporter=reporter)
        outcome = run(ctx, method)
        outcomes.append(outcome)
        spent = _plus(spent, outcome.usage)
        if outcome.changed:  # the next link starts from this one's choice
            current = replace(current, prompt=ctx.evaluator.variant(outcome.best.text))
        if settings.limits is not None and spent.exceeds(settings.limits):
            break
    return combine(settings, outcomes, time.perf_counter() - started)


def combine(settings: Settings, outcomes: list[Outcome], wall_s: float) -> Outcome:
    """The chain as one outcome: the first link's initial prompt and test score, the last change's
    prompt and the last link's test score, every link's rows one after another."""
    first, last = outcomes[0], outcomes[-1]
    changed = [o for o in outcomes if o.changed]
    rows, offset = [], 0
    describes: dict[str, Callable[[str], str]] = {}
    for o in outcomes:
        shifted = [replace(r, step=r.step + offset) for r in (o.rows if o is first else o.rows[1:])]
        rows += shifted
        offset = max((r.step for r in rows), default=0)
        describes |= {r.text: o.describe for r in o.rows}
    usage = Usage()
    for o in outcomes:
        usage = _plus(usage, o.usage)
    files = [  # a link that adds files (an example pool): its prompt file diffed from the chain's start
        (path, first.source_before if path == first.path else before, after)
        for path, before, after in (changed[-1].files if changed else [])
    ]
    return replace(
        last,
        method=settings.method,
        status="budget" if any(o.status == "budget" for o in outcomes) else "complete",
        settings=settings,
        rows=rows,
        initial=first.initial,
        best=changed[-1].best if changed else first.initial,
        test_before=first.test_before,
        usage=usage,
        wall_s=wall_s,
        source_before=first.source_before,
        source_after=changed[-1].source_after if changed else first.source_before,
        unparsable=sum(o.unparsable for o in outcomes),
        per_step="; ".join(f"{o.method}: {o.per_step}" for o in outcomes if o.per_step),
        held_back="" if changed else "; ".join(f"{o.method}: {o.held_back}" for o in outcomes if o.held_back),
        describe=lambda text: describes.get(text, str)(text),
        links=[(o.method, o.initial.dev_score, _dev(o), o.usage.calls, o.changed) for o in outcomes],
        files=files,
    )


def _dev(o: Outcome) -> float | None:
    return o.best.dev_score if o.changed else o.initial.dev_score


def _share(budget: dict[str, float], spent: Usage, elapsed: float, left: int) -> dict[str, float]:
    """A link's budget: what the chain has left, divided by the links still to run."""
    used = {"calls": spent.calls, "tokens": spent.tokens, "cost": spent.cost, "seconds": elapsed}
    share = {k: max((v - used.get(k, 0)) / left, 0.0) for k, v in budget.items()}
    return {k: float(int(v)) if k in ("calls", "tokens") else v for k, v in share.items()}


def _plus(a: Usage, b: Usage) -> Usage:
    return Usage(a.calls + b.calls, a.cached + b.cached, a.tokens + b.tokens, a.cost + b.cost, a.errors + b.errors)

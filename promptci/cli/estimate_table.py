"""The estimate printed before an eval, and ``eval --estimate``'s table."""

from __future__ import annotations

from typing import Any

import click

from ..errors import InputError
from .options import State
from .output import emit_json, table


def before_run(
    state: State, plan: Any, no_cache: bool, only: bool, max_calls: int | None, max_cost: float | None, fmt: str,
    batch: bool = False,
) -> dict[str, Any] | None:  # fmt: skip
    """Print the estimate and return its totals for the run to store; None when the run must not
    start (``--estimate``); an error (exit 2) when it would pass ``--max-calls`` or ``--max-cost``."""
    from ..evals.estimate import estimate_in, over_limits, summary_line

    found = estimate_in(state.project, plan, use_cache=not no_cache, batch=batch)
    reasons = over_limits(found.calls, found.cost(), max_calls, max_cost)
    if only:
        print_estimate(found, fmt)
    if reasons:
        raise InputError("the run would pass its limit: " + "; ".join(reasons), hint="--estimate shows it per suite")
    if only:
        return None
    # the progress says the line as the run starts; nothing to call (all cached, or no case renders), no line
    return {**found.totals(), "line": summary_line(found) if found.calls else None}


def print_estimate(found: Any, fmt: str) -> None:
    if fmt == "json":
        emit_json(found.to_dict())
        return
    rows = []
    for t in found.tasks:
        expected = "-" if t.output_expected is None else f"{t.output_expected:,}"
        cost = t.cost(t.output_max)
        price = "-" if cost is None else ("free" if cost == 0 else f"${cost:.4f}")
        seconds = "-" if t.seconds is None else f"{t.seconds:.0f} s"
        tokens = f"{t.prompt_tokens:,}" + ("" if t.exact else " ≈")
        rows.append(
            (t.suite, t.prompt, t.model_id, t.calls, t.cached, tokens, f"{t.output_max:,}", expected, price, seconds)
        )
    headers = ("suite", "prompt", "model", "calls", "cached", "prompt tokens", "output at most", "output expected",
               "cost at most", "time")  # fmt: skip
    table(headers, rows)
    for t in found.tasks:
        for note in t.notes:
            click.echo(f"{t.suite} × {t.prompt}: {note}", err=True)
    how = sorted({t.tokens for t in found.tasks if t.calls})
    click.echo(f"prompt tokens counted by: {', '.join(how) or '-'}", err=True)
    from ..evals.estimate import summary_line

    click.echo(summary_line(found), err=True)


def before_optimizing(
    state: State, name: str | None, suite: str | None, settings: Any, task_model: str | None,
    only: bool, limits: tuple[int | None, float | None], fmt: str,
) -> bool:  # fmt: skip
    """The optimization's estimate: printed (``--estimate``: alone, and True to run nothing), and
    checked against ``--max-calls`` and ``--max-cost`` (an error, exit 2, above them)."""
    from ..errors import PromptciError
    from ..evals.estimate import over_limits
    from ..optimize.estimate import optimize_estimate

    wanted = only or limits != (None, None)
    if not (name and suite):
        if wanted:
            raise InputError("--estimate, --max-calls and --max-cost need a prompt NAME and --suite SUITE")
        return False
    try:
        found = optimize_estimate(state.project, name, suite, settings, task_model)
    except PromptciError:
        if wanted:
            raise
        return False  # the run itself says what is wrong, as it would without the estimate
    if only:
        if fmt == "json":
            emit_json(found.to_dict())
        else:
            click.echo(found.line())
    else:
        click.echo(found.line(), err=True)
    reasons = over_limits(found.calls + found.proposals, found.cost, *limits)
    if reasons:
        raise InputError("the optimization could pass its limit: " + "; ".join(reasons), hint="--estimate shows it")
    return only

"""The table printed after an eval."""

from __future__ import annotations

import click

from ..evals.runner import EvalReport
from .options import VERBOSE
from .output import table


def print_summary(report: EvalReport) -> None:
    rows = []
    repeated = any(s.repeats > 1 for s in report.summaries)
    for s in report.summaries:
        verdict = "pass" if s.passed else ("error" if s.errors else "FAIL")
        score = f"{s.score:.3f}" if s.score is not None else "-"
        if s.errors and s.score is not None:  # a mean over the few cases that ran is no mean of the suite
            score += f" ({s.scored} of {s.cases} scored)"
        row: list[object] = [s.suite, s.prompt, s.cases, s.passed_cases, s.errors, s.flaky, score]
        if repeated:
            row += [_share(s.pass_all), _share(s.pass_any)]
        rows.append((*row, f"{s.threshold:.2f}", verdict))
    k = max(s.repeats for s in report.summaries) if repeated else 1
    repeats = (f"pass^{k}", f"pass@{k}") if repeated else ()
    table(("suite", "prompt", "cases", "passed", "errors", "flaky", "score", *repeats, "threshold", "verdict"), rows)
    for line in reasons(report, shown=10**9 if VERBOSE[0] else SHOWN):
        click.echo(line, err=True)
    u = report.usage
    parts = [f"run {report.run_id}", f"{u.calls} model calls", f"{u.cached} cached", f"{report.wall_s:.1f}s"]
    if u.tokens:
        parts.append(f"{u.tokens} tokens")
    if u.cost:
        parts.append(f"${u.cost:.4f}")
    if report.skipped:
        parts.append(f"budget spent: {report.skipped} not run")
    click.echo(", ".join(parts) + f" -> {report.db}", err=True)
    from ..evals.estimate import spent_line

    new = [r for r in report.rows if not r.cached]
    spent = spent_line(
        report.estimate, u.calls, sum(r.tokens_in or 0 for r in new), sum(r.tokens_out or 0 for r in new)
    )
    if spent:
        click.echo(spent, err=True)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


SHOWN = 3  # reasons printed per suite; the rest are counted


def reasons(report: EvalReport, shown: int = SHOWN) -> list[str]:
    """Why cases errored, then why they failed: the first few of each suite, then a count."""
    lines = []
    for s in report.summaries:
        errored = [o for o in s.outcomes if o.score is None and o.reason]
        failed = [o for o in s.outcomes if o.score is not None and o.passed is False and o.reason]
        for what, found in (("error", errored), ("failed", failed)):
            for o in found[:shown]:
                lines.append(f"  {s.suite} × {s.prompt}: {what}: {o.name}: {o.reason}")
            if len(found) > shown:
                lines.append(f"  {s.suite} × {s.prompt}: … and {len(found) - shown} more {what} (-o FILE.json has all)")
    return lines

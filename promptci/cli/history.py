from __future__ import annotations

from itertools import groupby

import click

from .options import State, format_option, pass_state, results_option, stored_results


@click.command()
@click.argument("name", required=False)
@click.option("--suite", help="Only this suite.")
@results_option
@format_option()
@pass_state
def history(state: State, name: str | None, suite: str | None, results_url: str | None, fmt: str) -> int:
    """Show scores over prompt versions: one row per version, suite and model, oldest first."""
    from ..compare.history import history as load_history
    from ..compare.history import sparkline
    from .output import emit_json, short, table

    with stored_results(state, results_url) as store:
        points = load_history(store, name, suite)
    if fmt == "json":
        emit_json([{**p.__dict__, "partial": p.partial} for p in points])
        return 0
    if not points:
        click.echo(f"no results for {name or 'any prompt'}", err=True)
        return 0
    rows = [
        (
            p.suite,
            p.prompt,
            p.model_id,
            short(p.commit) if p.commit else "(uncommitted)",
            p.first_seen.strftime("%Y-%m-%d %H:%M"),
            p.prompt_hash[:12],
            f"{p.cases}"
            + (f" ({p.errors} errored)" if p.errors else "")
            + (f" of {p.total}, partial" if p.partial else ""),
            f"{p.score:.3f}" if p.score is not None else "-",
            f"{p.pass_rate:.0%}" if p.pass_rate is not None else "-",
        )
        for p in points
    ]
    table(("suite", "prompt", "model", "commit", "first seen", "version", "cases", "score", "passed"), rows)
    for (s, prompt, model), group in groupby(points, key=lambda p: (p.suite, p.prompt, p.model_id)):
        scores = [p.score for p in group]
        click.echo(f"{s} × {prompt} [{model}]: {sparkline(scores)}", err=True)
    return 0

from __future__ import annotations

import click

from .options import State, format_option, pass_state, results_option, stored_results


@click.command()
@click.argument("suites", nargs=-1)
@click.option(
    "--drop", type=click.FloatRange(0, 1, min_open=True), required=True, help="The drop to detect (0.05: 5 points)."
)
@click.option(
    "--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Significance (default: gate.alpha)."
)
@click.option("--power", "powers", type=click.FloatRange(0, 1, min_open=True, max_open=True), multiple=True,
              help="Power to plan for; repeatable (default: 0.8 and 0.9).")  # fmt: skip
@results_option
@format_option()
@pass_state
def plan(
    state: State, suites: tuple[str, ...], drop: float, alpha: float | None, powers: tuple[float, ...],
    results_url: str | None, fmt: str,
) -> int:  # fmt: skip
    """How many cases a suite needs to detect a drop.

    For each suite × prompt: its cases now, its pass rate and how often answers flipped between
    its stored prompt versions, the smallest drop it detects at its present size, and the cases
    that detect --drop at each power. Where the store holds too little history, it says what it
    assumed. SUITES are files or names under evals/ (default: every suite).
    """
    from contextlib import nullcontext

    from ..compare.planning import plan_suite
    from ..compare.report import points
    from ..evals.plan import build_plan, suite_files
    from .output import emit_json, table

    project = state.project
    level = alpha or project.config.gate.alpha
    chosen = tuple(sorted(set(powers))) or (0.8, 0.9)
    tasks = build_plan(project, suite_files(project, suites)).tasks
    db = project.path(project.config.db)
    opened = stored_results(state, results_url) if results_url or db.is_file() else nullcontext(None)
    with opened as store:
        plans = [
            plan_suite(store, t.suite_name, t.prompt.name, len(t.cases), drop=drop, alpha=level, powers=chosen)
            for t in tasks
        ]
    if fmt == "json":
        emit_json(
            {
                "drop": drop,
                "alpha": level,
                "suites": [p.__dict__ | {"needed": {str(k): v for k, v in p.needed.items()}} for p in plans],
            }
        )
        return 0
    rows = [
        (
            p.suite,
            p.prompt,
            p.cases,
            "-" if p.pass_rate is None else f"{p.pass_rate:.3f}",
            ("" if p.binary else "sd ")
            + f"{p.spread:.3f}"
            + (f" ({p.pairs} pair{'s' * (p.pairs > 1)})" if p.pairs else " (assumed)"),
            "none at this size" if p.detects is None else f"{points(p.detects)} pts",
            *("more than 100,000" if p.needed[k] is None else str(p.needed[k]) for k in chosen),
        )
        for p in plans
    ]
    headers = ("suite", "prompt", "cases", "pass rate", "change between versions", f"detects now ({chosen[0]:.0%})")
    table((*headers, *(f"cases for {points(drop)} pts at {k:.0%}" for k in chosen)), rows, title=f"α {level:g}")
    for p in plans:
        for note in p.assumed:
            click.echo(f"{p.suite} × {p.prompt}: {note}", err=True)
    return 0

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import State, pass_state, results_option, stored_results


@click.command()
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML page here.",
)
@click.option(
    "--compare",
    "compare_json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A `promptci compare -o report.json` to show as the latest comparison.",
)
@click.option("--prompt", help="Only this prompt's history.")
@results_option
@pass_state
def report(
    state: State, html_path: Path, compare_json: Path | None, prompt: str | None, results_url: str | None
) -> int:
    """Write an HTML report: score history per prompt and suite, the latest comparison, flipped cases."""
    from ..compare.history import history
    from ..errors import InputError
    from ..redact import write
    from ..report.html import render

    comparison = None
    if compare_json:
        from ..files import read_text

        try:
            comparison = json.loads(read_text(compare_json, str(compare_json), what="compare report"))
        except json.JSONDecodeError as exc:
            raise InputError(f"not a compare report: {exc.msg}", path=compare_json, line=exc.lineno) from None
        except RecursionError:
            raise InputError("not a compare report: JSON nests too deeply", path=compare_json) from None
        if not isinstance(comparison, dict) or comparison.get("version") != 1:
            raise InputError(
                "not a version 1 compare report", path=compare_json, hint="write it with `promptci compare -o`"
            )
    from ..evals.plan import thresholds
    from ..release.ab import analyse

    with stored_results(state, results_url) as store:
        points = history(store, prompt)
        ab = [g.as_dict() for g in analyse(store, prompt, None, record=False)]
        errors = store.version_errors(prompt)
    write(html_path, render(points, comparison, ab=ab, thresholds=thresholds(state.project), errors=errors))
    click.echo(f"wrote {html_path} ({len(points)} versions)", err=True)
    return 0

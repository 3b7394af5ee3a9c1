from __future__ import annotations

from pathlib import Path

import click

from ..errors import ExitCode
from .options import State, format_option, pass_state


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--no-cache", is_flag=True, help="Analyse every file again instead of reusing unchanged results.")
@format_option()
@pass_state
def lint(state: State, paths: tuple[Path, ...], strict: bool, no_cache: bool, fmt: str) -> int:
    """Check prompts, eval suites and labels.

    Prints every problem as FILE:LINE:COL. Exits 1 when there are errors (or
    warnings, with --strict). With PATHS, reports only on those files or folders.
    Results for unchanged files are reused from the cache directory.
    """
    from ..lint import lint as run_lint
    from .output import emit_json

    report = run_lint(state.project, [p.resolve() for p in paths], cache=not no_cache)
    if fmt == "json":
        emit_json(
            {
                "files": report.files,
                "errors": len(report.errors),
                "warnings": len(report.warnings),
                "diagnostics": [d.__dict__ for d in report.diagnostics],
            }
        )
    else:
        for d in report.diagnostics:
            click.echo(str(d))
        e, w = len(report.errors), len(report.warnings)
        click.echo(
            f"promptci lint: {report.files} files, {e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}", err=True
        )
    failed = bool(report.errors) or (strict and bool(report.warnings))
    return ExitCode.FAILED if failed else ExitCode.OK

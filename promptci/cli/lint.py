from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ExitCode
from .options import State, format_option, pass_state

if TYPE_CHECKING:
    from ..diagnostics import Diagnostic
    from ..project import Project


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

    project, config_problem = _project(state)
    report = run_lint(project, [p.resolve() for p in paths], cache=not no_cache)
    if config_problem is not None:  # reported like any other file's problem, and the rest still linted
        report.diagnostics.insert(0, config_problem)
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


def _project(state: State) -> tuple[Project, Diagnostic | None]:
    """The project; where its ``promptci.yaml`` is invalid, the project with default settings and
    that file's problem as a diagnostic, so that lint reports it as it reports every other file."""
    from ..config import CONFIG_FILE, Config
    from ..diagnostics import Diagnostic
    from ..errors import InputError
    from ..project import Project

    try:
        return state.project, None
    except InputError as exc:
        config = _config_file(state.root)
        if config is None or exc.path is None or Path(str(exc.path)).name != CONFIG_FILE:
            raise
        message = exc.message + (f" ({exc.hint})" if exc.hint else "")
        problem = Diagnostic(CONFIG_FILE, exc.line or 1, exc.col or 1, "error", "config", message)
        return Project(config.parent, Config(), config), problem


def _config_file(start: Path | None) -> Path | None:
    from ..config import CONFIG_FILE

    here = Path(start or os.environ.get("PROMPTCI_ROOT") or Path.cwd()).resolve()
    return next((d / CONFIG_FILE for d in (here, *here.parents) if (d / CONFIG_FILE).is_file()), None)

"""The ``promptci`` command. Each command lives in its own module and is wired here.

Command modules import only click at module level; the library is imported inside
each command, so start-up never pays for duckdb, torch, transformers or openai.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click

from ..errors import ExitCode, PromptciError
from ..interrupts import is_abandoned_query, sigterm_interrupts
from ..redact import RedactingStream
from ..version import __version__
from . import (
    cache,
    compare,
    eval,
    github,
    history,
    init,
    judge,
    label,
    lint,
    log,
    ls,
    optimize,
    plan,
    release,
    report,
    results,
    run,
    schema,
    show,
    view,
    worker,
)
from .options import VERBOSE, State, verbosity_options
from .progress import QUIET

COMMANDS: list[click.Command] = [
    init.init,
    lint.lint,
    ls.ls,
    show.show,
    show.render,
    run.run,
    log.log,
    log.diff,
    label.label,
    release.bundle,
    release.ab,
    schema.schema,
    eval.eval_,
    compare.compare,
    plan.plan,
    judge.judge,
    optimize.optimize,
    history.history,
    report.report,
    results.results,
    results.db,
    cache.cache,
    github.github,
    view.view,
    worker.worker,
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-C",
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run as if started in this directory.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="promptci")
@click.pass_context
def cli(ctx: click.Context, root: Path | None, debug: bool) -> None:
    """A git-native prompt registry and CI regression gate.

    Exit codes: 0 ok, 1 a check or gate failed, 2 bad usage or bad input,
    3 internal error, 130 interrupted.
    """
    if root is not None:
        root = root.resolve()
        os.chdir(root)  # as git -C does: relative paths in arguments are relative to DIR
    ctx.obj = State(root, debug)


for _command in COMMANDS:
    cli.add_command(_command)
verbosity_options(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map every outcome to a documented exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    cwd, streams = os.getcwd(), (sys.stdout, sys.stderr)
    VERBOSE[0] = QUIET[0] = False
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)  # type: ignore[assignment]
    try:
        with sigterm_interrupts():
            return _run(args, debug)
    finally:
        os.chdir(cwd)
        sys.stdout, sys.stderr = streams


def _run(args: list[str], debug: bool) -> int:
    try:
        code = cli.main(args=args, prog_name="promptci", standalone_mode=False)
    except PromptciError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:  # bad usage: unknown option, missing argument …
        exc.show()
        return int(ExitCode.USAGE)
    except SystemExit as exc:  # promptci never exits from inside a command: a plugin did
        click.echo(f"error: code run by this command called exit({exc.code!r}); nothing it did counts", err=True)
        return int(ExitCode.INTERNAL)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("\ninterrupted", err=True)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug in promptci: say so, briefly, unless --debug
        if is_abandoned_query(exc):
            click.echo("\ninterrupted", err=True)
            return int(ExitCode.INTERRUPTED)
        if debug:
            traceback.print_exc()
        else:
            click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        return int(ExitCode.INTERNAL)
    return int(code or 0)

"""Options and context shared by every command, defined once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..project import Project
    from ..prompts.registry import Registry
    from ..store import Store

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """What the top-level group learned; the project is found only when a command asks."""

    def __init__(self, root: Path | None, debug: bool) -> None:
        self.root = root
        self.debug = debug

    @cached_property
    def project(self) -> Project:
        from ..project import Project

        return Project.discover(self.root)

    @cached_property
    def registry(self) -> Registry:
        from ..prompts.registry import Registry

        return Registry(self.project)


pass_state = click.make_pass_decorator(State)


def output_option(formats: str) -> Callable[[F], F]:
    """``-o/--output FILE``, repeatable, the format taken from each file's extension."""
    return click.option(
        "-o",
        "--output",
        "outputs",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Write to FILE ({formats}, by its extension); repeatable.",
    )


def format_option(*choices: str) -> Callable[[F], F]:
    """``--format`` with the given choices, the first being the default."""
    names = choices or ("text", "json")
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(names),
        default=names[0],
        show_default=True,
        help="Output format.",
    )


results_option = click.option(
    "--results",
    "results_url",
    metavar="URL",
    help="Also read the runs published at this directory or fsspec URL (s3://bucket/prefix), in place.",
)


@contextmanager
def stored_results(state: State, url: str | None) -> Iterator[Store]:
    """The results database, read-only; with ``url``, the runs published there that it lacks laid
    over it, read in place."""
    db = state.project.path(state.project.config.db)
    if url is None:
        from ..store import Store

        with Store(db, read_only=True) as store:
            yield store
        return
    from ..results import Folder, destination, reading

    where = destination(state.project, url)
    assert isinstance(where, Folder)
    with reading(db, where) as (store, warnings):
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        yield store


def vars_options(noun: str) -> Callable[[F], F]:
    """``--var KEY=VALUE`` (repeatable) and ``--vars-file``, for a prompt's variables or a pipeline's inputs."""

    def decorate(f: F) -> F:
        f = click.option(
            "--vars-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"A YAML or JSON mapping of {noun}s; --var wins over it.",
        )(f)
        return click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help=f"One {noun}; repeatable.")(f)

    return decorate


VERBOSE = [False]  # -v: every reason, every detail


class QuietStream:
    """stderr under -q: only errors and warnings get through."""

    KEPT = ("error", "warning", "internal error", "interrupted", "\ninterrupted")

    def __init__(self, stream: Any) -> None:
        self._stream, self._line = stream, ""

    def write(self, text: str) -> int:
        self._line += text
        *lines, self._line = self._line.split("\n")
        for line in lines:
            if line.startswith(self.KEPT):
                self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    import sys

    from .progress import QUIET

    if not value or ctx.resilient_parsing:
        return
    if param.name == "quiet":
        QUIET[0] = True
        if not isinstance(sys.stderr, QuietStream):
            sys.stderr = QuietStream(sys.stderr)  # type: ignore[assignment]
    else:
        VERBOSE[0] = True


def verbosity_options(command: click.Command) -> None:
    """``-q/--quiet`` and ``-v/--verbose`` on ``command`` and, for a group, on each of its commands."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            verbosity_options(sub)
    taken = {opt for p in command.params for opt in getattr(p, "opts", [])}
    if "-q" in taken or "-v" in taken:
        return
    for names, help_text in (
        (["-q", "--quiet"], "Print only errors, warnings and results."),
        (["-v", "--verbose"], "Print every reason and detail."),
    ):
        command.params.append(
            click.Option(names, is_flag=True, expose_value=False, callback=_verbosity, help=help_text)
        )

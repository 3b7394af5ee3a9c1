"""What ``promptci optimize`` prints: an optimization's PR body or JSON, the files asked for, and
what became of each winner."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click


@contextlib.contextmanager
def unmoved() -> Iterator[None]:
    """``--method auto`` that found nothing to pull: its probe on stdout, why on stderr, exit 0."""
    from ..optimize.auto import Unmoved

    try:
        yield
    except Unmoved as exc:
        click.echo("\n".join(exc.probe.table()))
        click.echo(exc.message, err=True)
        raise click.exceptions.Exit(0) from None


if TYPE_CHECKING:
    from ..optimize.passes import PassEntry


def report(result: Any, fmt: str, output: Path | None, plot: Path | None) -> None:
    """One optimization's PR body (or JSON) on stdout, the files asked for, and what became of it."""
    from ..optimize.output import svg_plot

    outcome = result.outcome
    if output is not None and plot is not None:
        from ..redact import write

        write(output, result.body)
        write(plot, svg_plot(outcome))
        click.echo(f"wrote {output} and {plot}", err=True)
    if fmt == "json":
        import json

        from ..optimize.jsonout import result_dict

        click.echo(json.dumps(result_dict(result), indent=2))
    else:
        click.echo(result.body)
    if result.branch:
        click.echo(f"created branch {result.branch} ({result.commit[:10] if result.commit else ''})", err=True)
    else:
        click.echo(f"no branch: {result.reason} (optimization {outcome.id})", err=True)


def report_pass(entry: PassEntry, fmt: str) -> None:
    result, publication = entry.result, entry.publication
    outcome = result.outcome
    if fmt == "markdown":
        click.echo(result.body)
    if publication is None:
        where = f"created branch {result.branch}" if result.branch else f"no branch: {result.reason}"
        click.echo(f"{outcome.prompt}: {where} (optimization {outcome.id})", err=True)
        return
    if publication.ok and publication.pr is not None:
        pushed = "pushed" if publication.pushed else "already up to date"
        click.echo(
            f"{outcome.prompt}: {publication.branch} {pushed}; PR #{publication.pr.number} {publication.status}:"
            f" {publication.pr.url or ''}",
            err=True,
        )
    else:
        click.echo(f"::warning title=promptci optimize::{outcome.prompt}: {publication.reason}", err=True)

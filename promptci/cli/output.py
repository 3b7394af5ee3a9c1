"""Rendering for the terminal: JSON, tables and coloured diffs. The library never prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click


def emit_json(data: Any) -> None:
    # ASCII only: every control or bidirectional character in a value is a \\u escape, never raw
    click.echo(json.dumps(data, indent=2, ensure_ascii=True, default=str))


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A table on a terminal; tab-separated columns under a header row when piped, for grep, cut
    and awk."""
    if not sys.stdout.isatty():
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join("" if v is None else str(v) for v in row))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..redact import inert

    t = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:  # as Text: a cell's "[" is never read as rich markup, nor its escapes as styles
        t.add_row(*(Text(inert("" if v is None else str(v))) for v in row))
    Console().print(t)


def colour_diff(text: str) -> str:
    if not sys.stdout.isatty():
        return text
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(click.style(line, bold=True))
        elif line.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            out.append(click.style(line, fg="red"))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        else:
            out.append(line)
    return "".join(out)


def short(sha: str | None) -> str:
    return sha[:10] if sha else "-"

from __future__ import annotations

import click

from .options import State, format_option, pass_state


@click.command()
@click.argument("name")
@click.option("-n", "--max-count", type=click.IntRange(min=1), help="Show at most N versions.")
@format_option()
@pass_state
def log(state: State, name: str, max_count: int | None, fmt: str) -> int:
    """List the versions of a prompt: commit, date, author, message and content hash."""
    from ..prompts.history import versions
    from .output import emit_json, short, table

    found = versions(state.registry, name, max_count)
    if fmt == "json":
        emit_json([v.as_dict() for v in found])
        return 0
    rows = [
        (
            short(v.commit.sha) if v.commit else "(working tree)",
            v.commit.date[:19].replace("T", " ") if v.commit else "",
            v.commit.author if v.commit else "",
            v.content_hash[:12] if v.content_hash else "(invalid)",
            v.commit.message if v.commit else "uncommitted changes",
        )
        for v in found
    ]
    table(("commit", "date", "author", "hash", "message"), rows)
    return 0


@click.command()
@click.argument("name")
@click.argument("rev1")
@click.argument("rev2", required=False)
@format_option()
@pass_state
def diff(state: State, name: str, rev1: str, rev2: str | None, fmt: str) -> int:
    """Show how a prompt changed between two revisions or labels.

    REV2 defaults to the working tree. Either side may be a label, so
    `promptci diff summarize production staging` works.
    """
    from ..prompts.history import diff_versions
    from .output import colour_diff, emit_json

    result = diff_versions(state.registry, name, rev1, rev2)
    if fmt == "json":
        emit_json(result.as_dict())
    elif result.text:
        click.echo(colour_diff(result.text), nl=False)
    else:
        click.echo(f"no change to '{name}' between {result.old_label} and {result.new_label}", err=True)
    return 0

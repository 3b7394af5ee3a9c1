from __future__ import annotations

import click

from .options import State, format_option, pass_state


@click.group()
def label() -> None:
    """Move labels such as production and staging between versions.

    Labels live in a tracked file; every move is a commit, so the history is
    an audit trail of who moved what, and when.
    """


@label.command(name="set")
@click.argument("name")
@click.argument("label_name", metavar="LABEL")
@click.argument("rev", default="HEAD")
@click.option("--no-commit", is_flag=True, help="Only edit the labels file; commit it yourself.")
@pass_state
def set_(state: State, name: str, label_name: str, rev: str, no_commit: bool) -> int:
    """Point NAME@LABEL at the commit REV (default HEAD)."""
    from ..prompts.labels import set_label
    from .output import short

    move = set_label(state.registry, name, label_name, rev, commit=not no_commit)
    if move.old == move.new:
        click.echo(f"{name}@{label_name} already points at {short(move.new)}")
        return 0
    was = f" (was {short(move.old)})" if move.old else ""
    made = f"; committed {short(move.commit.sha)}" if move.commit else ""
    click.echo(f"{name}@{label_name} -> {short(move.new)}{was}{made}")
    return 0


@label.command(name="rm")
@click.argument("name")
@click.argument("label_name", metavar="LABEL")
@click.option("--no-commit", is_flag=True, help="Only edit the labels file; commit it yourself.")
@pass_state
def rm(state: State, name: str, label_name: str, no_commit: bool) -> int:
    """Remove NAME@LABEL."""
    from ..prompts.labels import remove_label
    from .output import short

    move = remove_label(state.registry, name, label_name, commit=not no_commit)
    click.echo(f"removed {name}@{label_name} (was {short(move.old)})")
    return 0


@label.command(name="ls")
@click.argument("name", required=False)
@format_option()
@pass_state
def ls(state: State, name: str | None, fmt: str) -> int:
    """List labels, for one prompt or all."""
    from ..prompts.labelfile import read_labels
    from .output import emit_json, short, table

    labels = read_labels(state.project)
    rows = [
        (prompt, lab, sha)
        for prompt, entries in sorted(labels.items())
        if name is None or prompt == name
        for lab, sha in sorted(entries.items())
    ]
    if fmt == "json":
        emit_json([{"prompt": p, "label": lab, "commit": sha} for p, lab, sha in rows])
        return 0
    described = [(p, lab, short(sha), _subject(state, sha)) for p, lab, sha in rows]
    table(("prompt", "label", "commit", "message"), described)
    return 0


def _subject(state: State, sha: str) -> str:
    from ..errors import PromptciError

    try:
        return state.registry.repo.describe(sha).message
    except (PromptciError, ValueError):
        return "(commit not found)"


@label.command()
@click.argument("name", required=False)
@click.option("--label", "label_name", help="Only this label.")
@format_option()
@pass_state
def history(state: State, name: str | None, label_name: str | None, fmt: str) -> int:
    """Show every label move with its author, time and commit, newest first."""
    from ..prompts.labels import history as label_history
    from .output import emit_json, short, table

    moves = label_history(state.registry, name, label_name)
    if fmt == "json":
        emit_json(
            [
                {
                    "prompt": m.prompt,
                    "label": m.label,
                    "old": m.old,
                    "new": m.new,
                    "commit": m.commit.sha if m.commit else None,
                    "author": m.commit.author if m.commit else None,
                    "date": m.commit.date if m.commit else None,
                }
                for m in moves
            ]
        )
        return 0
    rows = [
        (
            m.commit.date[:19].replace("T", " ") if m.commit else "",
            m.commit.author if m.commit else "",
            f"{m.prompt}@{m.label}",
            f"{short(m.old)} -> {short(m.new)}",
            short(m.commit.sha) if m.commit else "",
        )
        for m in moves
    ]
    table(("date", "author", "label", "move", "commit"), rows)
    return 0

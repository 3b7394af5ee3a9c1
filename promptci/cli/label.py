from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .options import State, format_option, pass_state

if TYPE_CHECKING:
    from ..prompts.labels import LabelMove
    from ..prompts.registry import Files


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

    _report(set_label(_files(state, name), name, label_name, rev, commit=not no_commit))
    return 0


@label.command()
@click.argument("name")
@click.argument("label_name", metavar="LABEL")
@click.argument("shares", nargs=-1, required=True, metavar="REV=WEIGHT...")
@click.option("--no-commit", is_flag=True, help="Only edit the labels file; commit it yourself.")
@pass_state
def split(state: State, name: str, label_name: str, shares: tuple[str, ...], no_commit: bool) -> int:
    """Split NAME@LABEL's traffic between versions: an A/B release, e.g. `HEAD~1=0.9 HEAD=0.1`.

    The weights must sum to 1. An application that loads the label with a key (a user id) always
    gets the same version for the same key; `promptci ab report` compares how they do.
    """
    from ..errors import InputError
    from ..prompts.labels import split_label

    weights: dict[str, float] = {}
    for share in shares:
        rev, sep, weight = share.rpartition("=")
        try:
            if not sep or not rev:
                raise ValueError
            weights[rev] = float(weight)
        except ValueError:
            raise InputError(f"cannot read '{share}' as REV=WEIGHT", hint="e.g. HEAD~1=0.9 HEAD=0.1") from None
    _report(split_label(_files(state, name), name, label_name, weights, commit=not no_commit))
    return 0


def _files(state: State, name: str) -> Files[Any]:
    """Where ``name`` lives: the pipelines, when a pipeline has that name, else the prompts."""
    from ..pipelines.load import Pipelines

    pipelines = Pipelines(state.project)
    return pipelines if name in pipelines.paths() else state.registry


def _report(move: LabelMove) -> None:
    from ..prompts.labels import describe
    from .output import short

    where = f"{move.prompt}@{move.label}"
    if move.old == move.new:
        click.echo(f"{where} already points at {describe(move.new)}")
        return
    was = f" (was {describe(move.old)})" if move.old else ""
    made = f"; committed {short(move.commit.sha)}" if move.commit else ""
    click.echo(f"{where} -> {describe(move.new)}{was}{made}")


@label.command(name="rm")
@click.argument("name")
@click.argument("label_name", metavar="LABEL")
@click.option("--no-commit", is_flag=True, help="Only edit the labels file; commit it yourself.")
@pass_state
def rm(state: State, name: str, label_name: str, no_commit: bool) -> int:
    """Remove NAME@LABEL."""
    from ..prompts.labels import describe, remove_label

    move = remove_label(state.registry, name, label_name, commit=not no_commit)
    click.echo(f"removed {name}@{label_name} (was {describe(move.old)})")
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
        (prompt, lab, sha, weight)
        for prompt, entries in sorted(labels.items())
        if name is None or prompt == name
        for lab, target in sorted(entries.items())
        for sha, weight in ([(target, None)] if isinstance(target, str) else target.versions)
    ]
    if fmt == "json":
        emit_json(
            [{"prompt": p, "label": lab, "commit": sha, **({"weight": w} if w else {})} for p, lab, sha, w in rows]
        )
        return 0
    described = [
        (p, lab, short(sha), f"{w:.0%}" if w is not None else "", _subject(state, sha)) for p, lab, sha, w in rows
    ]
    table(("prompt", "label", "commit", "share", "message"), described)
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
    from ..prompts.labels import as_json, describe, kind
    from ..prompts.labels import history as label_history
    from .output import emit_json, short, table

    moves = label_history(state.registry, name, label_name)
    if fmt == "json":
        emit_json(
            [
                {
                    "prompt": m.prompt,
                    "label": m.label,
                    "kind": kind(state.registry, m),
                    "old": as_json(m.old),
                    "new": as_json(m.new),
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
            kind(state.registry, m),
            f"{describe(m.old)} -> {describe(m.new)}",
            short(m.commit.sha) if m.commit else "",
        )
        for m in moves
    ]
    table(("date", "author", "label", "kind", "move", "commit"), rows)
    return 0

"""``promptci bundle`` and ``promptci ab report``: prompts in production."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import State, format_option, pass_state


@click.command()
@click.argument("names", nargs=-1)
@click.option(
    "--label", "labels", multiple=True, help="Only this label (repeatable); default: every label in use, plus latest."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the bundle here (default: stdout)."
)
@pass_state
def bundle(state: State, names: tuple[str, ...], labels: tuple[str, ...], output: Path | None) -> int:
    """Resolve prompts and pipelines at their labels from git into one deploy bundle.

    An application loads from it with `promptci.load(NAME, label=..., bundle=FILE)` (or
    $PROMPTCI_BUNDLE), without git and without the CLI's dependencies. The same repository
    state always gives the same bytes.
    """
    from ..release.bundle import build, dump
    from ..yamlio import atomic_write

    body = build(state.project, list(names) or None, list(labels) or None)
    data = dump(body)
    if output is None:  # the bytes as they are: stdout's redaction is for messages, not for what ships
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        atomic_write(output, data.decode())
        entries = sum(len(e["labels"]) for kind in ("prompts", "pipelines") for e in body[kind].values())
        click.echo(f"wrote {output}: {entries} labelled entries, {body['digest']}", err=True)
    return 0


@click.group()
def ab() -> None:
    """A/B releases: how the versions of a split label do on real traffic."""


@ab.command()
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--label", "label_name", help="Only this label.")
@click.option("--prompt", "prompt_name", help="Only this prompt.")
@click.option(
    "--planned",
    type=click.IntRange(min=2),
    help="Outcomes planned per version: spend alpha by the O'Brien-Fleming rule.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="The significance level, spent over the planned looks.",
)
@click.option("--control", metavar="REV", help="The version the others are compared with (a commit or its prefix).")
@format_option()
@pass_state
def report(
    state: State,
    logs: tuple[Path, ...],
    label_name: str | None,
    prompt_name: str | None,
    planned: int | None,
    alpha: float,
    control: str | None,
    fmt: str,
) -> int:
    """Load outcome logs into the results database and compare the versions of each label.

    Per version: n and the mean outcome; against the label's main version (--control, else the one
    with the most outcomes),
    the difference with a 95% CI and an unpaired test (two-proportion z or Fisher for pass/fail,
    Welch otherwise). Each report that sees new outcomes is a look, and looks spend alpha, so
    peeking daily does not inflate false positives.
    """
    from ..release.ab import analyse, load_logs, render
    from ..store import Store
    from .output import emit_json
    from .progress import LoadProgress

    with Store(state.project.path(state.project.config.db)) as store:
        with LoadProgress() as progress:
            loaded = load_logs(store, list(logs), progress)
        for problem in loaded.problems:
            click.echo(f"warning: {problem}", err=True)
        if loaded.refused > len(loaded.problems):
            click.echo(f"warning: and {loaded.refused - len(loaded.problems)} more bad lines", err=True)
        found = analyse(store, prompt_name, label_name, alpha=alpha, planned=planned, control=control)
    click.echo(f"loaded {loaded.new} new outcomes ({loaded.seen} already stored, {loaded.refused} bad lines)", err=True)
    if fmt == "json":
        emit_json([f.as_dict() for f in found])
    else:
        click.echo(render(found), nl=False)
    return 0

from __future__ import annotations

from pathlib import Path

import click

from .options import State, pass_state


@click.group()
def results() -> None:
    """Share stored results through a git branch, so CI runs find the base's results."""


_remote = click.option("--remote", default="origin", show_default=True, help="The git remote.")
_branch = click.option("--branch", default="promptci-results", show_default=True, help="The results branch.")


@results.command()
@_remote
@_branch
@pass_state
def push(state: State, remote: str, branch: str) -> int:
    """Merge the remote's results into the local database, then push it to the results branch."""
    from ..results_sync import push as do_push

    outcome = do_push(state.registry.repo, state.project.path(state.project.config.db), remote, branch)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    got = outcome.merged
    if got:
        click.echo(f"merged from {remote}/{branch}: {got.runs} runs, {got.results} results", err=True)
    click.echo(f"pushed {branch} at {outcome.commit[:10] if outcome.commit else '-'}")
    return 0


@results.command()
@_remote
@_branch
@pass_state
def pull(state: State, remote: str, branch: str) -> int:
    """Merge the results branch's database into the local one."""
    from ..results_sync import pull as do_pull

    outcome = do_pull(state.registry.repo, state.project.path(state.project.config.db), remote, branch)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    if outcome.merged is None and outcome.warnings:
        return 0
    if outcome.merged is None:
        click.echo(f"{remote} has no branch {branch} yet; nothing to pull", err=True)
        return 0
    got = outcome.merged
    click.echo(f"merged from {remote}/{branch}: {got.runs} runs, {got.results} results, {got.cache} cached answers")
    return 0


@click.group()
def db() -> None:
    """Maintain the results database."""


@db.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def merge(state: State, sources: tuple[Path, ...]) -> int:
    """Merge other results databases (e.g. from `eval --shard i/n` jobs) into this project's."""
    from ..store import Store

    with Store(state.project.path(state.project.config.db)) as store:
        for source in sources:
            got = store.merge_from(source)
            click.echo(f"{source}: {got.runs} runs, {got.results} results, {got.cache} cached answers")
    return 0

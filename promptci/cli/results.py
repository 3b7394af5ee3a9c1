from __future__ import annotations

from pathlib import Path

import click

from .options import State, pass_state


@click.group()
def results() -> None:
    """Share stored results as Parquet sets (a git branch, a directory or an object store), so CI
    runs find the base's results."""


_url = click.option(
    "--url", help="A directory or fsspec URL (s3://bucket/prefix) instead of the configured destination."
)
_remote = click.option("--remote", help="The git remote of the results branch (default: origin).")
_branch = click.option("--branch", help="The results branch (default: promptci-results).")


@results.command()
@_url
@_remote
@_branch
@pass_state
def push(state: State, url: str | None, remote: str | None, branch: str | None) -> int:
    """Publish the finished runs and optimizations the destination lacks, each as its own set."""
    from ..results import destination
    from ..results import push as do_push

    where = destination(state.project, url, remote=remote, branch=branch)
    done = do_push(state.project.path(state.project.config.db), where)
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    if done.converted:
        got = done.converted
        click.echo(f"converted {where.name}'s results.duckdb: {got.runs} runs, {got.results} results", err=True)
    click.echo(
        f"pushed to {where.name}: {done.runs} runs, {done.optimizations} optimizations,"
        f" {done.cached} cached answers ({done.files} files, {done.bytes} bytes)"
    )
    return 0


@results.command()
@_url
@_remote
@_branch
@pass_state
def pull(state: State, url: str | None, remote: str | None, branch: str | None) -> int:
    """Copy in the published runs, optimizations and cached answers the local database lacks."""
    from ..results import destination
    from ..results import pull as do_pull

    where = destination(state.project, url, remote=remote, branch=branch)
    done = do_pull(state.project.path(state.project.config.db), where)
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not done.found:
        click.echo(f"{where.name} holds no results yet; nothing to pull", err=True)
        return 0
    if done.converted:
        got = done.converted
        click.echo(f"merged {where.name}'s results.duckdb: {got.runs} runs, {got.results} results", err=True)
    click.echo(
        f"pulled from {where.name}: {done.runs} runs, {done.optimizations} optimizations,"
        f" {done.rows} rows, {done.cached} cached answers"
    )
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

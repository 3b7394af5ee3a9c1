from __future__ import annotations

from pathlib import Path

import click


@click.group(name="github")
def github() -> None:
    """GitHub integration used by the promptci action."""


@github.command()
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pr", type=int, help="The pull request (default: from $GITHUB_EVENT_PATH).")
@click.option("--marker", default=None, help="The hidden marker that identifies our comment.")
def comment(report: Path, pr: int | None, marker: str | None) -> int:
    """Post REPORT as the PR comment, updating the earlier one in place.

    Reads GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL. A missing token or a
    failed request is logged as a warning and exits 0: the gate decides the job.
    """
    from ..compare.report import MARKER
    from ..files import read_text
    from ..github import ActionsEnv, upsert_comment

    env = ActionsEnv.read()
    outcome = upsert_comment(
        read_text(report, str(report), what="comment"),
        marker=marker or MARKER,
        token=env.token,
        repo=env.repository,
        pr=pr or env.pr,
        api=env.api,
    )
    if outcome.action == "skipped":
        click.echo(f"::warning title=promptci comment::comment not posted: {outcome.reason}")
    else:
        click.echo(f"comment {outcome.action}: {outcome.url or ''}")
    return 0

"""Publishing an optimizer pass: one branch and one PR per prompt and target branch.

``--push`` publishes a winner to ``promptci/optimize/NAME/TARGET`` and opens the one PR
from it, or updates it. The branch is never force-pushed over a human: promptci replaces
only commits that carry its ``Promptci-Optimization`` trailer, and pushes with a lease on
the tip it read. If anyone else has pushed to the branch, the pass stops there and says
so. The job summary says, for each prompt, what the pass did and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import GitError
from ..github import PullOutcome, upsert_pull_request
from ..project import Project
from ..prompts.registry import Registry
from ..store import Store
from .output import TRAILER
from .session import Result

PR_LABEL = "promptci-optimization"  # not the trigger label: an optimization PR must not trigger a pass
BODY_LIMIT = 65_000  # GitHub refuses PR bodies over 65,536 characters


@dataclass(frozen=True)
class Publication:
    status: str  # created, updated, conflict or failed
    branch: str  # the PR's head branch on the remote
    pushed: bool  # False also when the branch already held this very change
    pr: PullOutcome | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("created", "updated")


def pr_branch(prompt: str, target: str) -> str:
    return f"promptci/optimize/{prompt}/{target}"


def pr_title(result: Result) -> str:
    o, r = result.outcome, result.stats.result
    title = f"promptci: optimize {o.prompt} with {o.method.upper()} (held-out {r.base_mean:.3f} → {r.head_mean:.3f})"
    return title if result.stats.significant else f"{title}, not significant (p = {r.p_value:.2g})"


def publish(
    project: Project,
    result: Result,
    *,
    target: str,
    remote: str = "origin",
    token: str | None,
    repo_slug: str | None,
    api: str = "https://api.github.com",
) -> Publication:
    """Push ``result``'s branch as the prompt's PR branch for ``target`` and open or update its PR."""
    assert result.commit is not None, "publish only a result that made a branch"
    repo = Registry(project).repo
    head = pr_branch(result.outcome.prompt, target)
    local = f"the branch {result.branch} exists locally"
    if not token:
        return Publication("failed", head, False, None, f"GITHUB_TOKEN is not set: nothing pushed; {local}")
    try:
        tip = repo.fetch_branch(remote, head)
        same = False
        if tip is not None:
            base = repo.parents(result.commit)[0]
            foreign = [c for c in repo.commits_not_in(tip, base) if TRAILER not in c[2]]
            if foreign:
                sha, author, message = foreign[0]
                subject = message.splitlines()[0] if message else ""
                return Publication(
                    "conflict",
                    head,
                    False,
                    None,
                    f"{head} has a commit promptci did not make ({sha[:10]} by {author}: {subject}); nothing was"
                    f" pushed over it. Merge or close that PR, or delete the branch, to let promptci update it;"
                    f" {local}",
                )
            same = repo.tree(tip) == repo.tree(result.commit) and repo.parents(tip) == repo.parents(result.commit)
        if not same and not repo.push_with_lease(remote, result.commit, head, tip):
            return Publication(
                "conflict", head, False, None, f"{head} changed on {remote} during this pass; nothing was overwritten"
            )
    except GitError as exc:
        return Publication("failed", head, False, None, f"git: {exc.message}; {local}")
    body = result.body if len(result.body) <= BODY_LIMIT else _trimmed(result.body)
    title = pr_title(result)
    pr = upsert_pull_request(
        title=title, body=body, head=head, base=target, labels=[PR_LABEL], token=token, repo=repo_slug, api=api
    )
    if pr.action == "skipped":
        reason = f"{head} is pushed, but the PR could not be opened: {pr.reason}"
        return Publication("failed", head, not same, pr, reason)
    if pr.url:
        with Store(project.path(project.config.db)) as store:
            store.update_optimization(result.outcome.id, pr_url=pr.url)
    return Publication(pr.action, head, not same, pr)


def _trimmed(body: str) -> str:
    """The body without its table of every candidate, which is what grows with the search."""
    start = body.find("<details><summary>Every candidate</summary>")
    end = body.find("</details>", start)
    if start >= 0 and end >= 0:
        body = body[:start] + "_Every candidate: too long for a PR body; see the job summary._" + body[end + 10 :]
    return body[:BODY_LIMIT]

"""GitHub's REST API, for two things: the PR comment, found by a hidden marker and updated
in place, and the optimization PR, found by its head branch and updated in place.

Nothing here raises for a missing token or a failed request: the outcome says why, for
the log and the job summary, and the caller decides the exit code.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_API = "https://api.github.com"


@dataclass(frozen=True)
class ActionsEnv:
    """What GitHub Actions tells a step through its environment: the one place promptci reads it."""

    token: str | None = None
    repository: str | None = None  # owner/name
    api: str = DEFAULT_API
    event_path: str | None = None
    head_ref: str | None = None  # a pull request's branch
    ref_name: str | None = None  # the branch or tag the run is for
    step_summary: str | None = None
    in_actions: bool = False

    @classmethod
    def read(cls) -> ActionsEnv:
        env = os.environ
        return cls(
            token=env.get("GITHUB_TOKEN") or None,
            repository=env.get("GITHUB_REPOSITORY") or None,
            api=env.get("GITHUB_API_URL") or DEFAULT_API,
            event_path=env.get("GITHUB_EVENT_PATH") or None,
            head_ref=env.get("GITHUB_HEAD_REF") or None,
            ref_name=env.get("GITHUB_REF_NAME") or None,
            step_summary=env.get("GITHUB_STEP_SUMMARY") or None,
            in_actions=env.get("GITHUB_ACTIONS") == "true",
        )

    @property
    def pr(self) -> int | None:
        return pr_number(self.event_path)


@dataclass(frozen=True)
class CommentOutcome:
    action: str  # created, updated or skipped
    url: str | None = None
    reason: str | None = None


def pr_number(event_path: str | None) -> int | None:
    """The pull request number from the workflow's event payload."""
    if not event_path or not os.path.exists(event_path):
        return None
    with open(event_path, encoding="utf-8") as fh:
        event = json.load(fh)
    number = (event.get("pull_request") or event.get("issue") or {}).get("number")
    return int(number) if number else None


def upsert_comment(
    body: str, *, marker: str, token: str | None, repo: str | None, pr: int | None, api: str = "https://api.github.com"
) -> CommentOutcome:
    """Update the comment on ``pr`` that contains ``marker``, or create one."""
    if not token:
        return CommentOutcome("skipped", reason="GITHUB_TOKEN is not set")
    if not repo or not pr:
        return CommentOutcome("skipped", reason="not a pull request (no repository or PR number)")
    if marker not in body:
        body = f"{marker}\n{body}"
    client = _Client(api.rstrip("/"), token)
    try:
        existing = client.find_comment(repo, pr, marker)
        if existing is not None:
            made = client.request("PATCH", f"/repos/{repo}/issues/comments/{existing}", {"body": body})
            return CommentOutcome("updated", made.get("html_url"))
        made = client.request("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
        return CommentOutcome("created", made.get("html_url"))
    except urllib.error.HTTPError as exc:
        return CommentOutcome("skipped", reason=f"GitHub answered HTTP {exc.code}: {exc.read()[:200]!r}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return CommentOutcome("skipped", reason=f"GitHub could not be reached: {exc}")


@dataclass(frozen=True)
class PullOutcome:
    action: str  # created, updated or skipped
    number: int | None = None
    url: str | None = None
    reason: str | None = None


def upsert_pull_request(
    *,
    title: str,
    body: str,
    head: str,
    base: str,
    labels: list[str],
    token: str | None,
    repo: str | None,
    api: str = "https://api.github.com",
) -> PullOutcome:
    """Update the open PR from branch ``head`` into ``base``, or open one: one PR per head branch."""
    if not token:
        return PullOutcome("skipped", reason="GITHUB_TOKEN is not set")
    if not repo or "/" not in repo:
        return PullOutcome("skipped", reason="GITHUB_REPOSITORY is not set (owner/name)")
    owner = repo.split("/", 1)[0]
    client = _Client(api.rstrip("/"), token)
    try:
        query = urllib.parse.urlencode({"state": "open", "head": f"{owner}:{head}", "base": base})
        existing = client.request("GET", f"/repos/{repo}/pulls?{query}")
        fields = {"title": title, "body": body}
        if existing:
            number = int(existing[0]["number"])
            made = client.request("PATCH", f"/repos/{repo}/pulls/{number}", fields)
            action = "updated"
        else:
            made = client.request("POST", f"/repos/{repo}/pulls", {**fields, "head": head, "base": base})
            number, action = int(made["number"]), "created"
        reason = None
        if labels:
            try:
                client.request("POST", f"/repos/{repo}/issues/{number}/labels", {"labels": labels})
            except urllib.error.HTTPError as exc:  # the PR stands; only its label is missing
                reason = f"labels not set: GitHub answered HTTP {exc.code}"
        return PullOutcome(action, number, made.get("html_url"), reason)
    except urllib.error.HTTPError as exc:
        return PullOutcome("skipped", reason=f"GitHub answered HTTP {exc.code}: {exc.read()[:200]!r}")
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return PullOutcome("skipped", reason=f"GitHub could not be reached: {exc}")


class _Client:
    def __init__(self, api: str, token: str) -> None:
        self.api = api
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "promptci",
        }

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        from .redact import redact_any

        data = json.dumps(redact_any(payload)).encode() if payload is not None else None
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else {}

    def find_comment(self, repo: str, pr: int, marker: str) -> int | None:
        page = 1
        while True:
            comments = self.request("GET", f"/repos/{repo}/issues/{pr}/comments?per_page=100&page={page}")
            for comment in comments:
                if marker in (comment.get("body") or ""):
                    return int(comment["id"])
            if len(comments) < 100:
                return None
            page += 1

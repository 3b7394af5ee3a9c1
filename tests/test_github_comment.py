"""The PR comment upsert, against a local HTTP server that records and checks every request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from promptci.cli import main
from promptci.compare.report import MARKER

from .conftest import json_server

TOKEN = "ghs_test_token"
REPO = "acme/prompts"


@dataclass
class FakeGitHub:
    """Just enough of the issues-comments API, recording what it was sent."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    fail_writes: bool = False
    url: str = ""

    def handle(self, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        self.requests.append((h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body))
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials"}
        url = urlparse(h.path)
        parts = url.path.strip("/").split("/")
        if h.command == "GET" and parts[-1] == "comments":
            q = parse_qs(url.query)
            per, page = int(q["per_page"][0]), int(q["page"][0])
            return 200, self.comments[(page - 1) * per : page * per]
        if self.fail_writes:
            return 500, {"message": "boom"}
        if h.command == "POST":
            comment = {
                "id": 1000 + len(self.comments),
                "body": body["body"],
                "html_url": f"https://gh/c/{len(self.comments)}",
            }
            self.comments.append(comment)
            return 201, comment
        if h.command == "PATCH":
            comment = next(c for c in self.comments if c["id"] == int(parts[-1]))
            comment["body"] = body["body"]
            return 200, comment
        return 404, {}


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    with json_server(fake.handle) as url:
        fake.url = url
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7}}))
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
        yield fake


def _report(tmp_path: Path, text: str) -> str:
    path = tmp_path / "report.md"
    path.write_text(f"{MARKER}\n{text}\n")
    return str(path)


def test_one_comment_created_then_updated_in_place(
    github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    github.comments = [{"id": i, "body": f"human comment {i}"} for i in range(150)]  # two pages to search
    assert main(["github", "comment", _report(tmp_path, "first verdict")]) == 0
    assert "comment created" in capsys.readouterr().out
    method, path, headers, body = github.requests[-1]
    assert (method, path) == ("POST", f"/repos/{REPO}/issues/7/comments")
    assert headers["authorization"] == f"Bearer {TOKEN}" and headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28" and body["body"].startswith(MARKER)
    assert [r[1] for r in github.requests[:2]] == [
        f"/repos/{REPO}/issues/7/comments?per_page=100&page=1",
        f"/repos/{REPO}/issues/7/comments?per_page=100&page=2",
    ]

    github.requests.clear()
    assert main(["github", "comment", _report(tmp_path, "second verdict")]) == 0
    assert "comment updated" in capsys.readouterr().out
    method, path, _, body = github.requests[-1]
    assert (method, path) == ("PATCH", f"/repos/{REPO}/issues/comments/1150")
    ours = [c for c in github.comments if MARKER in c["body"]]
    assert len(ours) == 1 and "second verdict" in ours[0]["body"]
    assert len(github.comments) == 151 and github.comments[0]["body"] == "human comment 0"


def test_missing_token_skips_without_a_request(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["github", "comment", _report(tmp_path, "x")]) == 0
    assert "::warning title=promptci comment::comment not posted: GITHUB_TOKEN is not set" in capsys.readouterr().out
    assert github.requests == []


def test_a_failed_post_is_a_warning_not_a_failure(
    github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    github.fail_writes = True
    assert main(["github", "comment", _report(tmp_path, "x")]) == 0
    assert "GitHub answered HTTP 500" in capsys.readouterr().out


def test_outside_a_pull_request(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    assert main(["github", "comment", _report(tmp_path, "x")]) == 0
    assert "not a pull request" in capsys.readouterr().out and github.requests == []

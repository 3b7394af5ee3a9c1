"""Optimizer passes in CI, end to end on SmolLM2: the branch is pushed to a real bare remote and
the PR is opened, then updated, through a local server that records every request as GitHub's
REST API would receive it.

One real pass warms a results database; each test starts from a copy of it, so its passes
find SmolLM2's answers in the response cache and the same winner, at a fraction of the time.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import duckdb
import pytest

from promptci.cli import main

from ..conftest import MODEL_CACHE, Repo, free_port, git, json_server, new_repo
from .conftest import add_task

pytestmark = pytest.mark.slow

TOKEN = "ghs_test_token"
SLUG = "acme/prompts"
TASK = "navigate"  # where a few demonstrations beat the initial prompt and the constant answer on dev
HEAD = f"promptci/optimize/{TASK}/main"
OPTIMIZE = """
optimize:                 # a pass in CI whenever this prompt changes
  suite: navigate
  method: demos
  steps: 4
  candidates: 3
  split: 0.4/0.2/0.4
  budget: {calls: 600}
"""


@dataclass
class FakePulls:
    """The pulls and issue-labels endpoints, checked against the bare remote's branches."""

    remote: Path
    pulls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def handle(self, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        self.requests.append((h.command, h.path, body))
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials"}
        url = urlparse(h.path)
        parts = url.path.strip("/").split("/")
        if parts[:3] != ["repos", *SLUG.split("/")]:
            return 404, {"message": "Not Found"}
        if h.command == "GET" and parts[3:] == ["pulls"]:
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            owner, _, branch = q["head"].partition(":")
            return 200, [
                p
                for p in self.pulls
                if p["state"] == q["state"] and p["head"] == branch and p["base"] == q["base"] and owner == "acme"
            ]
        if h.command == "POST" and parts[3:] == ["pulls"]:
            if git(self.remote, "branch", "--list", body["head"]) == "":
                return 422, {"message": "Validation Failed: head does not exist"}
            number = len(self.pulls) + 1
            pr = {**body, "number": number, "state": "open", "labels": [], "html_url": f"https://gh/pull/{number}"}
            self.pulls.append(pr)
            return 201, pr
        if h.command == "PATCH" and parts[3] == "pulls":
            pr = self.pulls[int(parts[4]) - 1]
            pr.update(body)
            return 200, pr
        if h.command == "POST" and parts[3] == "issues" and parts[5] == "labels":
            pr = self.pulls[int(parts[4]) - 1]
            pr["labels"] = sorted(set(pr["labels"]) | set(body["labels"]))
            return 200, [{"name": n} for n in pr["labels"]]
        return 404, {"message": "Not Found"}

    def calls(self) -> list[tuple[str, str]]:
        return [(method, urlparse(path).path) for method, path, _ in self.requests]


def opted_in(repo: Repo) -> Repo:
    add_task(repo, TASK, 100)
    path = repo.path / f"prompts/{TASK}.yaml"
    path.write_text(path.read_text() + OPTIMIZE)
    repo.commit(f"opt {TASK} in to optimizer passes")
    return repo


@pytest.fixture(scope="module")
def warm_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results database of one real pass on SmolLM2 (a dry run)."""
    with pytest.MonkeyPatch.context() as mp:
        for role in ("AUTHOR", "COMMITTER"):
            mp.setenv(f"GIT_{role}_NAME", "Test User")
            mp.setenv(f"GIT_{role}_EMAIL", "test@example.com")
        mp.setenv("PROMPTCI_MODEL_CACHE", str(MODEL_CACHE))
        repo = opted_in(new_repo(tmp_path_factory.mktemp("warm") / "repo", None))  # type: ignore[arg-type]
        assert main(["-C", str(repo.path), "optimize", TASK, "--dry-run"]) == 0
    return repo.path / ".promptci/results.duckdb"


@pytest.fixture
def ci(repo: Repo, warm_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Repo, FakePulls]]:
    """The task opted in, pushed to a bare ``origin``, with the Actions environment set."""
    opted = opted_in(repo)
    (opted.path / ".promptci").mkdir(exist_ok=True)
    shutil.copy(warm_db, opted.path / ".promptci/results.duckdb")
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    opted.git("remote", "add", "origin", str(remote))
    opted.git("push", "-q", "origin", "main")
    fake = FakePulls(remote)
    with json_server(fake.handle) as url:
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_REPOSITORY", SLUG)
        monkeypatch.setenv("GITHUB_REF_NAME", "main")
        monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
        yield opted, fake


def run_pass(
    repo: Repo, *extra: str, gate: tuple[str, ...] = ("--allow-insignificant",)
) -> tuple[int, dict[str, Any], str]:
    """One pass; by default publishing a gain that is not significant, as the PR mechanics need a PR."""
    result = repo.run("optimize", TASK, "--push", "--format", "json", *gate, *extra)
    passes = json.loads(result.out) if result.out.strip() else [{}]
    return result.code, passes[0], result.err


def remote_tip(fake: FakePulls) -> str:
    return git(fake.remote, "rev-parse", f"refs/heads/{HEAD}")


def test_a_pass_opens_one_pr_and_a_rerun_updates_it(ci: tuple[Repo, FakePulls], tmp_path: Path) -> None:
    repo, fake = ci
    main = repo.git("rev-parse", "HEAD")

    # 1. The first pass pushes the branch and opens the PR, with the evidence as its body.
    code, first, err = run_pass(repo)
    assert code == 0, err
    assert first["publication"]["status"] == "created" and first["publication"]["pushed"] is True
    assert first["test"]["delta"] > 0
    tip = remote_tip(fake)
    assert git(fake.remote, "rev-parse", f"{tip}^") == main  # HEAD plus the prompt file
    assert git(fake.remote, "diff", "--name-only", main, tip) == f"prompts/{TASK}.yaml"
    assert f"Promptci-Optimization: {first['id']}" in git(fake.remote, "log", "-1", "--format=%B", tip)
    assert fake.calls() == [
        ("GET", f"/repos/{SLUG}/pulls"),
        ("POST", f"/repos/{SLUG}/pulls"),
        ("POST", f"/repos/{SLUG}/issues/1/labels"),
    ]
    query = parse_qs(urlparse(fake.requests[0][1]).query)
    assert query == {"state": ["open"], "head": [f"acme:{HEAD}"], "base": ["main"]}
    created = fake.requests[1][2]
    assert created["head"] == HEAD and created["base"] == "main"
    t = first["test"]
    assert created["title"] == (
        f"promptci: optimize {TASK} with DEMOS (held-out {t['before']:.3f} → {t['after']:.3f}),"
        f" not significant (p = {t['p_value']:.2g})"
    )
    body = created["body"]
    assert f"({t['delta']:+.3f}, 95% CI" in body and "```mermaid" in body and "### Prompt diff" in body
    assert f"--optimization {first['id']}" in body
    assert fake.requests[2][2] == {"labels": ["promptci-optimization"]}
    summary = (tmp_path / "summary.md").read_text()
    assert "PR #1 created: https://gh/pull/1" in summary and TASK in summary
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        stored = db.execute("SELECT branch, pr_url FROM optimizations WHERE id = ?", [first["id"]]).fetchone()
    assert stored == (first["branch"], "https://gh/pull/1")

    # 2. `promptci compare` on the branch against its base reports the PR body's held-out gain.
    compared = repo.run("compare", main, tip, "--optimization", first["id"], "--run-missing", "--format", "json")
    assert compared.code == 0, compared.err
    (suite,) = json.loads(compared.out)["suites"]
    assert (suite["suite"], suite["prompt"], suite["n"]) == (TASK, TASK, t["n"])
    assert suite["base_mean"] == pytest.approx(t["before"]) and suite["head_mean"] == pytest.approx(t["after"])
    assert suite["delta"] == pytest.approx(t["delta"]) and suite["p_value"] == pytest.approx(t["p_value"])
    # A reviewer's database does not know the optimization: the branch's commit trailers say the split.
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb")) as db:
        db.execute("DELETE FROM trajectory WHERE optimization_id = ?", [first["id"]])
        db.execute("DELETE FROM optimizations WHERE id = ?", [first["id"]])
    again = repo.run("compare", main, tip, "--optimization", first["id"], "--run-missing", "--format", "json")
    assert again.code == 0, again.err
    (suite,) = json.loads(again.out)["suites"]
    assert (suite["n"], suite["delta"]) == (t["n"], pytest.approx(t["delta"]))

    # 3. A rerun finds the same winner: the branch already holds it, and the one PR is updated.
    fake.requests.clear()
    code, second, err = run_pass(repo)
    assert code == 0, err
    assert second["best"] == first["best"]
    assert second["publication"]["status"] == "updated" and second["publication"]["pushed"] is False
    assert remote_tip(fake) == tip
    assert fake.calls() == [
        ("GET", f"/repos/{SLUG}/pulls"),
        ("PATCH", f"/repos/{SLUG}/pulls/1"),
        ("POST", f"/repos/{SLUG}/issues/1/labels"),
    ]
    assert len(fake.pulls) == 1 and fake.pulls[0]["labels"] == ["promptci-optimization"]

    # 4. The default branch moves on: the pass replaces its own commit (with a lease), same PR.
    repo.write("notes.md", "unrelated\n")
    new_main = repo.commit("unrelated change")
    repo.git("push", "-q", "origin", "main")
    fake.requests.clear()
    code, third, err = run_pass(repo)
    assert code == 0, err
    assert third["publication"] == {**third["publication"], "status": "updated", "pushed": True, "pr": 1}
    assert git(fake.remote, "rev-parse", f"{remote_tip(fake)}^") == new_main
    assert len(fake.pulls) == 1


def test_a_human_commit_on_the_branch_is_never_overwritten(ci: tuple[Repo, FakePulls], tmp_path: Path) -> None:
    repo, fake = ci
    code, _, err = run_pass(repo)
    assert code == 0, err
    clone = tmp_path / "human"
    git(tmp_path, "clone", "-q", "-b", HEAD, str(fake.remote), str(clone))
    (clone / f"prompts/{TASK}.yaml").write_text("# reviewed\n" + (clone / f"prompts/{TASK}.yaml").read_text())
    git(clone, "commit", "-qam", "tweak the wording after review")
    git(clone, "push", "-q", "origin", HEAD)
    human = git(clone, "rev-parse", "HEAD")

    fake.requests.clear()
    code, second, err = run_pass(repo)
    assert code == 5, err
    assert second["publication"]["status"] == "conflict"
    assert f"{human[:10]} by Test User <test@example.com>: tweak the wording after review" in err
    assert remote_tip(fake) == human  # nothing pushed over it
    assert fake.requests == []  # and the PR is left alone
    assert repo.git("branch", "--list", second["branch"]) != ""  # the new winner stays local


def test_no_token_or_no_api_leaves_the_branch_local_and_says_why(
    ci: tuple[Repo, FakePulls], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, fake = ci
    monkeypatch.delenv("GITHUB_TOKEN")
    code, first, err = run_pass(repo)
    assert code == 4, err
    assert "GITHUB_TOKEN is not set: nothing pushed" in first["publication"]["reason"]
    assert repo.git("branch", "--list", first["branch"]) != "" and git(fake.remote, "branch", "--list", HEAD) == ""
    assert "GITHUB_TOKEN is not set" in (tmp_path / "summary.md").read_text()

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    code, second, err = run_pass(repo)
    assert code == 4, err
    assert second["publication"]["status"] == "failed" and second["publication"]["pushed"] is True
    assert "GitHub could not be reached" in second["publication"]["reason"]
    assert git(fake.remote, "branch", "--list", HEAD) != ""  # pushed; the next pass opens the PR
    assert fake.pulls == []


def test_no_pr_when_the_gain_is_below_the_minimum(ci: tuple[Repo, FakePulls], tmp_path: Path) -> None:
    repo, fake = ci
    path = repo.path / f"prompts/{TASK}.yaml"
    path.write_text(path.read_text().replace("  budget: {calls: 600}", "  budget: {calls: 600}\n  min_gain: 0.99"))
    code, result, err = run_pass(repo)
    assert code == 0, err
    assert result["branch"] is None and "publication" not in result
    assert re.search(r"is below the minimum 0\.99", result["reason"])
    assert fake.requests == [] and git(fake.remote, "branch", "--list", HEAD) == ""
    assert "No PR: the held-out gain" in (tmp_path / "summary.md").read_text()


def test_no_pr_for_a_gain_that_is_not_significant(ci: tuple[Repo, FakePulls], tmp_path: Path) -> None:
    repo, fake = ci
    code, result, err = run_pass(repo, gate=())
    assert code == 0, err
    assert result["branch"] is None and "publication" not in result and result["test"]["delta"] > 0
    assert result["reason"] == f"no significant gain (p = {result['test']['p_value']:.3g}, α = 0.05)"
    assert fake.requests == [] and git(fake.remote, "branch", "--list", HEAD) == ""
    assert "No PR: no significant gain" in (tmp_path / "summary.md").read_text()

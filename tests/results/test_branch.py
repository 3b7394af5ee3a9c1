"""Results across machines: `db merge` for shards, `results push/pull` of Parquet sets through a git branch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from promptci.cli import main
from promptci.errors import ExitCode

from ..conftest import Katan, Repo, git

pytestmark = pytest.mark.slow


def _use_echo(repo: Repo, server: Katan) -> None:
    repo.use_model_server(server.base_url)
    repo.commit("use the echo server")


def _count(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_db_merge_of_shards(repo: Repo, katan: Callable[..., Katan], tmp_path: Path) -> None:
    _use_echo(repo, katan("-b", "echo"))
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo.path), str(other))
    repo.run("eval", "--shard", "1/2")
    assert main(["-C", str(other), "eval", "--shard", "2/2"]) == ExitCode.FAILED  # echoes miss the threshold
    db = repo.path / ".promptci/results.duckdb"
    merged = repo.run("db", "merge", str(other / ".promptci/results.duckdb"))
    assert merged.code == 0 and "1 runs" in merged.out
    assert (_count(db, "runs"), _count(db, "results")) == (2, 6)
    again = repo.run("db", "merge", str(other / ".promptci/results.duckdb"))
    assert "0 runs, 0 results" in again.out and _count(db, "results") == 6


def test_merging_a_foreign_file_is_refused(repo: Repo, tmp_path: Path) -> None:
    foreign = tmp_path / "x.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (a INTEGER)")
    con.close()
    before = foreign.read_bytes()
    result = repo.run("db", "merge", str(foreign))
    assert result.code == ExitCode.USAGE and "not a promptci results database" in result.err
    assert foreign.read_bytes() == before


def _tree(remote: Path, rev: str = "promptci-results") -> list[str]:
    return git(remote, "ls-tree", "-r", "--name-only", rev).splitlines()


def test_push_and_pull_through_a_bare_remote(repo: Repo, katan: Callable[..., Katan], tmp_path: Path) -> None:
    _use_echo(repo, katan("-b", "echo"))
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    assert repo.run("eval").code == ExitCode.FAILED  # the echo backend repeats the prompt: below threshold
    pushed = repo.run("results", "push")
    assert pushed.code == 0, pushed.err
    assert "1 runs, 0 optimizations, 6 cached answers" in pushed.out
    (run,) = repo.sql("SELECT id FROM runs")
    files = _tree(remote)
    assert f"runs/{run[0]}/results.parquet" in files and f"runs/{run[0]}/runs.parquet" in files
    assert len([f for f in files if f.startswith("cache/")]) == 1 and len(files) == 3
    assert repo.git("status", "--porcelain") == ""  # the working tree is untouched
    assert repo.run("results", "push").out.startswith("pushed to origin/promptci-results: 0 runs")
    assert git(remote, "rev-list", "--count", "promptci-results") == "1"  # nothing new: no commit

    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    assert main(["-C", str(clone), "results", "pull"]) == 0
    assert _count(clone / ".promptci/results.duckdb", "results") == 6
    assert _count(clone / ".promptci/results.duckdb", "cache") == 6
    out = tmp_path / "cmp.json"
    # The base's results came through the branch: nothing to evaluate, nothing missing.
    assert main(["-C", str(clone), "compare", "HEAD", "HEAD", "sentiment", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["suites"][0]["n"] == 6

    assert main(["-C", str(clone), "eval", "--no-cache"]) == ExitCode.FAILED
    assert main(["-C", str(clone), "results", "push"]) == 0
    assert git(remote, "rev-list", "--count", "promptci-results") == "2"
    added = git(remote, "diff", "--name-status", "promptci-results~1", "promptci-results").splitlines()
    # the second push only adds files: the new run's set, and the answers it cached
    assert all(line.startswith("A\t") for line in added), added
    assert not any(run[0] in line for line in added)
    assert repo.run("results", "pull").code == 0
    assert _count(repo.path / ".promptci/results.duckdb", "runs") == 2
    again = repo.run("results", "pull")
    assert "0 runs, 0 optimizations, 0 rows, 0 cached answers" in again.out


def test_pull_without_a_results_branch(repo: Repo, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo.git("remote", "add", "origin", str(remote))
    result = repo.run("results", "pull")
    assert result.code == 0 and "origin/promptci-results holds no results yet" in result.err

"""The results branch under contention and damage: concurrent pushers all land; garbage blocks nothing."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from tests.conftest import Repo, git
from tests.hostile.conftest import fail_every_case


def _remote(repo: Repo, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    repo.git("remote", "add", "origin", str(bare))
    repo.git("push", "-q", "origin", "main")
    return bare


def test_a_garbage_database_on_the_branch_blocks_no_push(repo: Repo, tmp_path: Path) -> None:
    _remote(repo, tmp_path)
    repo.git("checkout", "-q", "--orphan", "promptci-results")
    repo.git("rm", "-rq", "--cached", ".")
    (repo.path / "results.duckdb").write_bytes(b"this is not a database" * 100)
    repo.git("add", "results.duckdb")
    repo.git("commit", "-qm", "garbage")
    garbage = repo.git("rev-parse", "HEAD")
    repo.git("push", "-q", "origin", "promptci-results")
    repo.git("checkout", "-qf", "main")
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    r = repo.run("results", "push")
    assert r.code == 0, r.err
    assert f"warning: promptci-results:results.duckdb at {garbage[:10]} is not a usable results database" in r.err
    assert "/tmp" not in r.err and "skipped, not merged" in r.err
    # the branch now holds a real database, on top of the garbage
    assert repo.git("rev-parse", "origin/promptci-results~1") == garbage


def test_concurrent_pushes_all_land(repo: Repo, tmp_path: Path) -> None:
    bare = _remote(repo, tmp_path)
    fail_every_case(repo)
    repo.commit("every case errors, so no model is needed")
    repo.git("push", "-q", "origin", "main")
    clones = []
    for i in range(6):
        clone = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(clone))
        clones.append(clone)

    def eval_and_push(clone: Path) -> subprocess.CompletedProcess[str]:
        cli = [sys.executable, "-m", "promptci", "-C", str(clone)]
        ran = subprocess.run([*cli, "eval"], capture_output=True, text=True, check=False)
        assert ran.returncode == 1, ran.stderr
        return subprocess.run([*cli, "results", "push"], capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(eval_and_push, clones))
    assert [o.returncode for o in outcomes] == [0] * 6, [o.stderr for o in outcomes]
    final = tmp_path / "final.duckdb"
    final.write_bytes(
        subprocess.run(
            ["git", "-C", str(bare), "show", "promptci-results:results.duckdb"], capture_output=True, check=True
        ).stdout
    )
    with duckdb.connect(str(final), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM runs").fetchone()
    assert row is not None and row[0] == 6


def test_a_custom_results_branch_is_named_in_its_warnings(repo: Repo, tmp_path: Path) -> None:
    """The branch given with --branch, not the default one, is what messages name."""
    _remote(repo, tmp_path)
    repo.git("checkout", "-q", "--orphan", "team-results")
    repo.git("rm", "-rq", "--cached", ".")
    (repo.path / "results.duckdb").write_bytes(b"garbage")
    repo.git("add", "results.duckdb")
    repo.git("commit", "-qm", "garbage")
    repo.git("push", "-q", "origin", "team-results")
    repo.git("checkout", "-qf", "main")
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    r = repo.run("results", "pull", "--branch", "team-results")
    assert r.code == 0 and "warning: team-results:results.duckdb at " in r.err
    assert "promptci-results" not in r.err

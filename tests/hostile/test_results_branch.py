"""Published results under contention and damage: concurrent pushers all land, each run once; a
damaged or foreign file is skipped with a warning and blocks nothing; an old snapshot converts."""

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


def _branch_with(repo: Repo, branch: str, files: dict[str, bytes]) -> str:
    """Push ``branch`` holding only ``files``; its tip."""
    repo.git("checkout", "-q", "--orphan", branch)
    repo.git("rm", "-rq", "--cached", ".")
    for name, data in files.items():
        (repo.path / name).parent.mkdir(parents=True, exist_ok=True)
        (repo.path / name).write_bytes(data)
        repo.git("add", name)
    repo.git("commit", "-qm", "results")
    tip = repo.git("rev-parse", "HEAD")
    repo.git("push", "-q", "origin", branch)
    repo.git("checkout", "-qf", "main")
    for name in files:
        (repo.path / name).unlink(missing_ok=True)
    return tip


def _tree(bare: Path, rev: str = "promptci-results") -> list[str]:
    return git(bare, "ls-tree", "-r", "--name-only", rev).splitlines()


def test_a_garbage_snapshot_on_the_branch_blocks_no_push(repo: Repo, tmp_path: Path) -> None:
    _remote(repo, tmp_path)
    garbage = _branch_with(repo, "promptci-results", {"results.duckdb": b"this is not a database" * 100})
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    r = repo.run("results", "push")
    assert r.code == 0, r.err
    assert f"warning: promptci-results:results.duckdb at {garbage[:10]} is not a usable results database" in r.err
    assert "/tmp" not in r.err and "skipped, not merged" in r.err
    # the push replaced the snapshot by the run's set, on top of the garbage
    assert repo.git("rev-parse", "origin/promptci-results~1") == garbage
    (run,) = repo.sql("SELECT id FROM runs")
    assert _tree(repo.path, "origin/promptci-results") == [
        f"runs/{run[0]}/results.parquet",
        f"runs/{run[0]}/runs.parquet",
    ]


def test_an_old_snapshot_branch_is_converted(repo: Repo, tmp_path: Path) -> None:
    """A branch that holds the whole database, as before Parquet sets: read once, then converted."""
    bare = _remote(repo, tmp_path)
    fail_every_case(repo)
    repo.commit("every case errors, so no model is needed")
    assert repo.run("eval").code == 1
    old = repo.path / ".promptci/results.duckdb"
    _branch_with(repo, "promptci-results", {"results.duckdb": old.read_bytes()})
    (old_run,) = repo.sql("SELECT id FROM runs")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    cli = [sys.executable, "-m", "promptci", "-C", str(clone)]
    pulled = subprocess.run([*cli, "results", "pull"], capture_output=True, text=True, check=False)
    assert pulled.returncode == 0 and "merged origin/promptci-results's results.duckdb: 1 runs" in pulled.stderr
    pushed = subprocess.run([*cli, "results", "push"], capture_output=True, text=True, check=False)
    assert pushed.returncode == 0, pushed.stderr
    tree = _tree(bare)
    assert "results.duckdb" not in tree and f"runs/{old_run[0]}/runs.parquet" in tree
    again = subprocess.run([*cli, "results", "push"], capture_output=True, text=True, check=False)
    assert "0 runs" in again.stdout and git(bare, "rev-list", "--count", "promptci-results") == "2"


def test_a_damaged_set_is_skipped_and_blocks_nothing(repo: Repo, tmp_path: Path) -> None:
    bare = _remote(repo, tmp_path)
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    assert repo.run("eval").code == 1
    assert repo.run("results", "push").code == 0
    first, second = sorted(r[0] for r in repo.sql("SELECT id FROM runs"))
    # Someone damages one run's results on the branch, and puts a foreign Parquet file in another set.
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "-b", "promptci-results", str(bare), str(work))
    results = work / f"runs/{first}/results.parquet"
    results.write_bytes(results.read_bytes()[: results.stat().st_size // 2])
    (work / "runs/intruder").mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 1 AS id, 'x' AS stolen) TO '{work}/runs/intruder/runs.parquet' (FORMAT parquet)")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "damage")
    git(work, "push", "-q", "origin", "promptci-results")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    cli = [sys.executable, "-m", "promptci", "-C", str(clone)]
    pulled = subprocess.run([*cli, "results", "pull"], capture_output=True, text=True, check=False)
    assert pulled.returncode == 0, pulled.stderr
    assert f"warning: origin/promptci-results: runs/{first}: " in pulled.stderr
    assert (
        "warning: origin/promptci-results: runs/intruder: " in pulled.stderr
        and "unknown columns stolen" in pulled.stderr
    )
    assert "1 runs" in pulled.stdout
    with duckdb.connect(str(clone / ".promptci/results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT id FROM runs").fetchall() == [(second,)]
    # and the damage blocks no push
    assert repo.run("eval").code == 1
    pushed = repo.run("results", "push")
    assert pushed.code == 0 and "1 runs" in pushed.out


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
    runs = [path for path in _tree(bare) if path.endswith("/runs.parquet")]
    assert len(runs) == 6  # every run once
    final = tmp_path / "final"
    git(tmp_path, "clone", "-q", str(bare), str(final))
    pulled = subprocess.run(
        [sys.executable, "-m", "promptci", "-C", str(final), "results", "pull"], capture_output=True, text=True
    )
    assert "6 runs" in pulled.stdout, pulled.stderr
    with duckdb.connect(str(final / ".promptci/results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT id), count(*) FROM runs").fetchone() == (6, 6)


def test_a_custom_results_branch_is_named_in_its_warnings(repo: Repo, tmp_path: Path) -> None:
    """The branch given with --branch, not the default one, is what messages name."""
    _remote(repo, tmp_path)
    _branch_with(repo, "team-results", {"results.duckdb": b"garbage"})
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    r = repo.run("results", "pull", "--branch", "team-results")
    assert r.code == 0 and "warning: team-results:results.duckdb at " in r.err
    assert "promptci-results" not in r.err

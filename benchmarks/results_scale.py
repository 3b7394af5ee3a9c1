"""Sharing results at team scale, side by side in one run: the whole-database snapshot that the
results branch used to hold against one Parquet set per run.

1. Pushes: ``--pushes`` times, a new run of ``--rows`` result rows is stored and pushed to a bare
   git remote, once as a snapshot commit of the whole ``results.duckdb`` (the old way) and once
   with ``promptci results push`` (Parquet sets). Reports the bytes each push added to the remote
   (its object store, as received) and the total after the last.
2. Pull into an empty clone: merging the snapshot against ``results pull`` of every set.
3. Compare over ``--compare-rows`` rows (``--compare-runs`` runs): ``promptci compare RUN_A RUN_B``
   on a local database holding them, against the same command in a project with no database,
   reading the published sets in place (``--results DIR``). Each side's first call (which checks
   every block of the local file once) is left out; the median of ``--repeats`` calls is reported.

Usage: python benchmarks/results_scale.py [--pushes 50] [--rows 1000] [--compare-rows 1000000]
       [--compare-runs 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promptci.git import Repo  # noqa: E402
from promptci.results import Branch, Folder, pull, push  # noqa: E402
from promptci.store import Store  # noqa: E402


def add_run(store: Store, run: str, rows: int, seed: int) -> None:
    """One finished run of ``rows`` results: 10 suites, an answer of about 60 characters each."""
    store.db.execute(
        "INSERT INTO runs (id, started_at, ended_at, command, config_hash, status, promptci_version)"
        " VALUES (?, now()::TIMESTAMP, now()::TIMESTAMP, 'bench', 'x', 'complete', 'bench')",
        [run],
    )
    store.db.execute(
        f"""
        INSERT INTO results BY NAME
        SELECT '{run}' AS run_id, 'suite' || (c % 10) AS suite, 'sh' AS suite_hash, 'prompt' || (c % 10) AS prompt,
               'ph-{run}' AS prompt_hash, 'case' || c AS case_id, 0 AS repeat_index, 'model' AS model_id,
               'params' AS params_hash, 'Question ' || c || ': how many items?' AS input, 'answer' AS expected,
               'The answer is ' || (hash(c + {seed}) % 97) || ', counting every item once.' AS output,
               CASE WHEN hash(c * 7 + {seed}) % 100 < 60 THEN 1.0 ELSE 0.0 END AS score,
               hash(c * 7 + {seed}) % 100 < 60 AS passed, 1.0 + (hash(c) % 100) AS latency_ms,
               10 AS tokens_in, 2 AS tokens_out, false AS cached, now()::TIMESTAMP AS created_at
        FROM range({rows}) t(c)
        """
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def stored_bytes(bare: Path) -> int:
    """What a bare repository's object store holds, loose objects and packs, as received."""
    return sum(p.stat().st_size for p in (bare / "objects").rglob("*") if p.is_file())


def new_project(base: Path, name: str, bare: Path) -> Path:
    project = base / name
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "promptci.yaml").write_text("db: .promptci/results.duckdb\n")
    (project / ".gitignore").write_text(".promptci/\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "project")
    git(project, "remote", "add", "origin", str(bare))
    git(project, "push", "-q", "origin", "main")
    return project


def snapshot_push(project: Path, db: Path) -> None:
    """The old push: a commit whose tree is the whole database, on top of the branch's tip."""
    repo = Repo(project)
    tip = repo.fetch_branch("origin", "promptci-results")
    with Store(db) as store:
        store.checkpoint()
    commit = repo.commit_files({"results.duckdb": db}, tip, "promptci results")
    assert repo.push("origin", commit, "promptci-results")


def pushes(base: Path, count: int, rows: int) -> dict[str, list[int]]:
    added: dict[str, list[int]] = {"snapshot": [], "parquet": []}
    for way in added:
        bare = base / f"{way}.git"
        git(base, "init", "-q", "--bare", str(bare))
        project = new_project(base, way, bare)
        db = project / ".promptci/results.duckdb"
        for k in range(count):
            with Store(db) as store:
                add_run(store, f"run-{k:04d}", rows, k)
            before = stored_bytes(bare)
            if way == "snapshot":
                snapshot_push(project, db)
            else:
                push(db, Branch(Repo(project), "origin", "promptci-results"))
            added[way].append(stored_bytes(bare) - before)
            print(f"  {way} push {k + 1}/{count}: +{added[way][-1]:,} bytes", flush=True)
    return added


def pulls(base: Path) -> dict[str, float]:
    took = {}
    for way in ("snapshot", "parquet"):
        clone = base / f"{way}-clone"
        git(base, "clone", "-q", str(base / f"{way}.git"), str(clone))
        db = clone / ".promptci/results.duckdb"
        start = time.perf_counter()
        if way == "snapshot":
            repo = Repo(clone)
            tip = repo.fetch_branch("origin", "promptci-results")
            assert tip is not None
            copy = base / "snapshot.duckdb"
            copy.write_bytes(repo.read_bytes(tip, "results.duckdb") or b"")
            with Store(db) as store:
                store.merge_from(copy)
        else:
            pull(db, Branch(Repo(clone), "origin", "promptci-results"))
        took[way] = time.perf_counter() - start
        with Store(db, read_only=True) as store:
            print(f"  {way} pull: {store.run_count()} runs in {took[way]:.2f} s", flush=True)
    return took


def compares(base: Path, total: int, runs: int, repeats: int) -> dict[str, float]:
    local = base / "local"
    local.mkdir()
    (local / "promptci.yaml").write_text("db: results.duckdb\n")
    db = local / "results.duckdb"
    start = time.perf_counter()
    with Store(db) as store:
        for k in range(runs):
            add_run(store, f"big-{k:04d}", total // runs, k)
    shared = base / "shared"
    push(db, Folder(str(shared)))
    print(f"  {total:,} rows in {runs} runs, stored and published in {time.perf_counter() - start:.0f} s", flush=True)
    remote = base / "remote"
    remote.mkdir()
    (remote / "promptci.yaml").write_text("db: results.duckdb\n")  # no database: everything is read in place
    a, b = f"big-{runs // 3:04d}", f"big-{2 * runs // 3:04d}"
    commands = {
        "local database": [sys.executable, "-m", "promptci", "-C", str(local), "compare", a, b, "--format", "json"],
        "Parquet sets in place": [
            *(sys.executable, "-m", "promptci", "-C", str(remote), "compare", a, b, "--format", "json"),
            *("--results", str(shared)),
        ],
    }
    took: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(repeats + 1):
        for name, cmd in commands.items():  # interleaved, so both see the same machine
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
            elapsed = time.perf_counter() - start
            assert done.returncode in (0, 1), done.stderr
            if i:
                took[name].append(elapsed)
    return {name: median(times) for name, times in took.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1000, help="result rows per pushed run")
    parser.add_argument("--compare-rows", type=int, default=1_000_000)
    parser.add_argument("--compare-runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        print(f"{args.pushes} pushes of {args.rows:,} rows each", flush=True)
        added = pushes(base, args.pushes, args.rows)
        pulled = pulls(base)
        print(f"compare over {args.compare_rows:,} rows", flush=True)
        compared = compares(base, args.compare_rows, args.compare_runs, args.repeats)

    snap, parq = added["snapshot"], added["parquet"]
    print(f"\n{args.pushes} pushes of one run of {args.rows:,} result rows each, to a bare git remote:\n")
    print("| | snapshot of the database | Parquet sets | ratio |")
    print("|---|---|---|---|")
    print(f"| bytes added by the first push | {snap[0]:,} | {parq[0]:,} | {snap[0] / parq[0]:.1f}x |")
    print(f"| bytes added by the last push | {snap[-1]:,} | {parq[-1]:,} | {snap[-1] / parq[-1]:.1f}x |")
    print(f"| total after {args.pushes} pushes | {sum(snap):,} | {sum(parq):,} | {sum(snap) / sum(parq):.1f}x |")
    print(
        f"| pull into an empty clone | {pulled['snapshot']:.2f} s | {pulled['parquet']:.2f} s"
        f" | {pulled['parquet'] / pulled['snapshot']:.1f}x |"
    )
    local, remote = compared["local database"], compared["Parquet sets in place"]
    print(f"\n`promptci compare` of two runs among {args.compare_rows:,} rows, median of {args.repeats}:\n")
    print("| local database | Parquet sets read in place | ratio |")
    print("|---|---|---|")
    print(f"| {local:.2f} s | {remote:.2f} s | {remote / local:.2f}x |")


if __name__ == "__main__":
    main()

"""Results across CI machines: a results branch that holds the DuckDB file.

Runs on the default branch ``push`` their results; pull-request runs ``pull`` them
so that the base commit's results are there without evaluating it again. The
branch holds one file, ``results.duckdb``, and every push is a commit whose parent
is the previous tip: an ordinary, fast-forward-only history. Pushing first merges
what the remote already has, so concurrent CI jobs lose nothing; a push that loses
the race fetches, merges and tries again. The working tree is never touched.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import GitError
from .git import Repo
from .merge import MergeCounts, merge_into
from .store import Store

FILE = "results.duckdb"
BRANCH = "promptci-results"


@dataclass(frozen=True)
class SyncResult:
    merged: MergeCounts | None  # what came from the remote
    commit: str | None  # what was pushed


def pull(repo: Repo, db: Path, remote: str = "origin", branch: str = BRANCH) -> SyncResult:
    """Merge the remote results branch's database into ``db``."""
    tip = repo.fetch_branch(remote, branch)
    if tip is None:
        return SyncResult(None, None)
    return SyncResult(_merge_remote(repo, db, tip), None)


def push(repo: Repo, db: Path, remote: str = "origin", branch: str = BRANCH, attempts: int = 3) -> SyncResult:
    """Merge the remote's results into ``db``, then publish ``db`` as a new commit on the branch."""
    merged = None
    for _ in range(attempts):
        tip = repo.fetch_branch(remote, branch)
        if tip is not None:
            merged = _merge_remote(repo, db, tip)
        with Store(db) as store:
            store.db.execute("CHECKPOINT")  # everything in the file, nothing left in the WAL
            runs = store.run_count()
        commit = repo.commit_blob(db, FILE, tip, f"promptci results: {runs} runs")
        if repo.push(remote, commit, branch):
            return SyncResult(merged, commit)
    raise GitError(f"could not push {branch}: the remote kept moving", hint="try again")


def _merge_remote(repo: Repo, db: Path, tip: str) -> MergeCounts:
    data = repo.read_bytes(tip, FILE)
    if data is None:
        raise GitError(f"{BRANCH} at {tip[:10]} has no {FILE}")
    with tempfile.TemporaryDirectory() as tmp:
        remote_db = Path(tmp) / FILE
        remote_db.write_bytes(data)
        with Store(db) as store:
            return merge_into(store, remote_db)

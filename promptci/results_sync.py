"""Results across CI machines: a results branch that holds the DuckDB file.

Runs on the default branch ``push`` their results; pull-request runs ``pull`` them
so that the base commit's results are there without evaluating it again. The
branch holds one file, ``results.duckdb``, and every push is a commit whose parent
is the previous tip: an ordinary, fast-forward-only history. Pushing first merges
what the remote already has, so concurrent CI jobs lose nothing; a push that loses
the race fetches, merges and tries again. The working tree is never touched.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import GitError, InputError
from .git import Repo
from .store import MergeCounts, Store

FILE = "results.duckdb"
BRANCH = "promptci-results"


@dataclass(frozen=True)
class SyncResult:
    merged: MergeCounts | None  # what came from the remote
    commit: str | None  # what was pushed
    warnings: tuple[str, ...] = ()  # e.g. a damaged database on the branch, skipped


def pull(repo: Repo, db: Path, remote: str = "origin", branch: str = BRANCH) -> SyncResult:
    """Merge the remote results branch's database into ``db``."""
    tip = repo.fetch_branch(remote, branch)
    if tip is None:
        return SyncResult(None, None)
    merged, warning = _merge_remote(repo, db, tip, branch)
    return SyncResult(merged, None, (warning,) if warning else ())


def push(
    repo: Repo, db: Path, remote: str = "origin", branch: str = BRANCH, attempts: int = 8, backoff: float = 0.5
) -> SyncResult:
    """Merge the remote's results into ``db``, then publish ``db`` as a new commit on the branch.

    A push that loses the race to another job waits (exponential backoff with full
    jitter, so that racing jobs spread out) and tries again, up to ``attempts`` times.
    """
    merged, warnings = None, []
    for attempt in range(attempts):
        tip = repo.fetch_branch(remote, branch)
        if tip is not None:
            merged, warning = _merge_remote(repo, db, tip, branch)
            if warning and warning not in warnings:
                warnings.append(warning)
        with Store(db) as store:
            store.checkpoint()
            runs = store.run_count()
        commit = repo.commit_blob(db, FILE, tip, f"promptci results: {runs} runs")
        if repo.push(remote, commit, branch):
            return SyncResult(merged, commit, tuple(warnings))
        time.sleep(random.uniform(0, min(10.0, backoff * 2**attempt)))
    raise GitError(f"could not push {branch}: the remote kept moving after {attempts} tries", hint="try again")


def _merge_remote(repo: Repo, db: Path, tip: str, branch: str) -> tuple[MergeCounts | None, str | None]:
    """Merge the branch's database into ``db``; a damaged or foreign one is skipped with a warning."""
    where = f"{branch}:{FILE} at {tip[:10]}"
    data = repo.read_bytes(tip, FILE)
    if data is None:
        return None, f"{where} does not exist; skipped"
    with tempfile.TemporaryDirectory() as tmp:
        remote_db = Path(tmp) / FILE
        remote_db.write_bytes(data)
        try:
            Store(remote_db, read_only=True).close()  # refuses foreign and damaged files
        except InputError as exc:
            return None, f"{where} is not a usable results database ({exc.message}); skipped, not merged"
        with Store(db) as store:
            return store.merge_from(remote_db), None

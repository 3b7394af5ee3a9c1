"""Property tests over the Parquet loader: whatever a published file holds (truncated, bit-flipped,
replaced by other bytes), a pull copies its set in whole or not at all, warns naming it, and never
fails or loses what the local database held."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb
from hypothesis import given
from hypothesis import strategies as st

from promptci.results import Folder, pull
from tests.conftest import Repo
from tests.hostile.conftest import FUZZ, fail_every_case

DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("replace"), st.binary(max_size=2048)),
)


def _damage(data: bytes, damage: tuple[str, object]) -> bytes:
    how, what = damage
    if how == "truncate":
        return data[: int(len(data) * float(what))]  # type: ignore[arg-type]
    if how == "flip":
        out = bytearray(data)
        for where, mask in what:  # type: ignore[attr-defined]
            out[min(int(where * len(out)), len(out) - 1)] ^= mask
        return bytes(out)
    return what  # type: ignore[return-value]


def _counts(db: Path) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM results)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_damaged_published_file_is_taken_whole_or_not_at_all(repo: Repo, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    assert repo.run("eval").code == 1
    assert repo.run("results", "push", "--url", str(shared)).code == 0
    first, _ = sorted(shared.glob("runs/*"))
    local = tmp_path / "local.duckdb"
    assert pull(local, Folder(str(shared))).runs == 2  # a database holding both runs already

    @FUZZ
    @given(table=st.sampled_from(["results", "runs"]), damage=DAMAGE)
    def run(table: str, damage: tuple[str, object]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "shared"
            shutil.copytree(shared, copy)
            target = copy / "runs" / first.name / f"{table}.parquet"
            target.write_bytes(_damage(target.read_bytes(), damage))
            db = Path(tmp) / "results.duckdb"
            got = pull(db, Folder(str(copy)))
            runs, results = _counts(db)
            assert (runs, results) in ((1, 6), (2, 12))  # the damaged set whole, or not at all
            if runs == 1:
                assert len(got.warnings) == 1 and f"runs/{first.name}" in got.warnings[0]
            # a database that already held the runs reads nothing of them, and keeps what it had
            assert pull(local, Folder(str(copy))).runs == 0
            assert _counts(local) == (2, 12)

    run()

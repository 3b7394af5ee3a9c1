"""The DuckDB store: migrations, refusal of foreign files, the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from promptci.errors import InputError
from promptci.store import CachedResponse, Store
from promptci.store.migrations import MIGRATIONS


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    with Store(db) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
    with Store(db) as store:
        rows = store.db.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert rows == [(v, n) for v, n, _ in MIGRATIONS]


def test_a_foreign_duckdb_file_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    before = _digest(db)
    with pytest.raises(InputError, match="not a promptci results database"):
        Store(db)
    with pytest.raises(InputError, match="not a promptci results database"):
        Store(db, read_only=True)
    assert _digest(db) == before


def test_read_only_needs_an_existing_database(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no results database"):
        Store(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_file_that_is_not_duckdb_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_bytes(b"these are my notes, not a database" * 100)
    before = _digest(db)
    with pytest.raises(InputError, match="not a DuckDB database"):
        Store(db)
    assert _digest(db) == before


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    with Store(db) as store:
        store.db.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    with pytest.raises(InputError, match="newer than this promptci knows"):
        Store(db)


def test_cache_round_trip_and_empty_answers_are_not_kept(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as store:
        store.cache_put(
            [
                ("k1", "m", CachedResponse("answer", 3, 1, None, 12.0)),
                ("k2", "m", CachedResponse("   ", 3, 0, None, 1.0)),
            ]
        )
        got = store.cache_get(["k1", "k2", "k3"])
        assert list(got) == ["k1"] and got["k1"].output == "answer"
        assert store.cache_info()["entries"] == 1
        assert store.cache_clear() == 1 and store.cache_get(["k1"]) == {}


def _version_1_database(path: Path) -> None:
    """A results database as the first release wrote it: migration 1 only, one run stored."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    con.execute(MIGRATIONS[0][2])
    con.execute("INSERT INTO schema_migrations VALUES (1, ?, now())", [MIGRATIONS[0][1]])
    con.execute(
        "INSERT INTO runs VALUES ('old-run', now(), NULL, NULL, NULL, NULL, 'promptci eval', 'h', 'complete', '0.1')"
    )
    con.close()


def test_an_older_database_is_migrated_in_place_and_merges_into_a_newer_one(tmp_path: Path) -> None:
    old, other = tmp_path / "old.duckdb", tmp_path / "other.duckdb"
    _version_1_database(old)
    _version_1_database(other)
    with Store(tmp_path / "new.duckdb") as target:
        counts = target.merge_from(other)  # an older source merges as it is, read-only
        assert counts.runs == 1 and target.run_count() == 1
        assert target.trajectory("x") == []
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (1,)
    with Store(old) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        assert store.run_count() == 1  # the stored run survives the migration
        assert store.optimization("anything") is None


def test_an_older_database_read_only_is_read_through_a_migrated_copy_and_left_as_it_was(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    _version_1_database(old)
    before = old.read_bytes()
    with Store(old, read_only=True) as store:
        assert store.schema_version() == MIGRATIONS[-1][0]
        assert store.run_count() == 1
        assert store.optimizations_page().rows == [] and store.optimization("anything") is None
    assert old.read_bytes() == before
    with duckdb.connect(str(old), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (1,)


def test_a_signal_during_a_write_waits_for_the_write(tmp_path: Path) -> None:
    """duckdb abandons a statement when a signal handler raises inside it; the store holds
    the signal until the write is done, so the caller sees KeyboardInterrupt and whole writes."""
    import os
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with Store(tmp_path / "r.duckdb") as store:
            for round_ in range(5):
                done = 0
                threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
                with pytest.raises(KeyboardInterrupt):
                    while True:
                        rows = [
                            (f"{round_}-{done}-{i}", "m", CachedResponse("x" * 200, 1, 1, 0.0, 1.0)) for i in range(400)
                        ]
                        store.cache_put(rows)
                        done += 1
                row = store.db.execute("SELECT count(*) FROM cache WHERE key LIKE ?", [f"{round_}-%"]).fetchone()
                assert row is not None and row[0] in (400 * done, 400 * (done + 1))
    finally:
        signal.signal(signal.SIGTERM, previous)

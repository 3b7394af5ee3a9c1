"""Merging results databases: CI shards into one, or the shared results branch into a local file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dbfile import refuse_foreign
from .errors import InputError
from .store import Store


@dataclass(frozen=True)
class MergeCounts:
    runs: int
    results: int
    cache: int


def merge_into(target: Store, source: Path) -> MergeCounts:
    """Copy the runs (with their results) and cache entries of ``source`` that ``target`` lacks.

    ``source`` is opened read-only and must be a promptci database at this schema version
    or an older one (migrations only add tables). Runs and optimizations already present
    are skipped, so merging twice changes nothing.
    """
    refuse_foreign(source)
    if not source.is_file():
        raise InputError("no such results database", path=source)
    quoted = str(source).replace("'", "''")
    db = target.db
    try:
        db.execute(f"ATTACH '{quoted}' AS src (READ_ONLY)")
    except Exception as exc:
        raise InputError(f"cannot open results database: {exc}", path=source) from None
    try:
        tables = {
            r[0]
            for r in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src'"
            ).fetchall()
        }
        if "schema_migrations" not in tables:
            raise InputError("not a promptci results database", path=source)
        row = db.execute("SELECT max(version) FROM src.schema_migrations").fetchone()
        if not row or row[0] is None or row[0] > target.schema_version():
            raise InputError(
                f"schema version {row[0] if row else None} is newer than {target.schema_version()}",
                path=source,
                hint="upgrade promptci",
            )
        db.execute("BEGIN TRANSACTION")
        try:
            new_runs = [
                r[0] for r in db.execute("SELECT id FROM src.runs WHERE id NOT IN (SELECT id FROM runs)").fetchall()
            ]
            db.execute("INSERT INTO runs BY NAME SELECT * FROM src.runs WHERE id IN (SELECT unnest(?))", [new_runs])
            before = _count(db, "results")
            db.execute("INSERT INTO results SELECT * FROM src.results WHERE run_id IN (SELECT unnest(?))", [new_runs])
            added_results = _count(db, "results") - before
            before = _count(db, "cache")
            db.execute("INSERT OR IGNORE INTO cache SELECT * FROM src.cache")
            added_cache = _count(db, "cache") - before
            if "optimizations" in tables:  # an older source has none
                db.execute(
                    "INSERT INTO trajectory SELECT * FROM src.trajectory"
                    " WHERE optimization_id NOT IN (SELECT id FROM optimizations)"
                )
                new = "WHERE id NOT IN (SELECT id FROM optimizations)"
                db.execute(f"INSERT INTO optimizations SELECT * FROM src.optimizations {new}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")  # all of a source or none of it
            raise
    finally:
        db.execute("DETACH src")
    return MergeCounts(len(new_runs), added_results, added_cache)


def _count(db: Any, table: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0

"""Merging results databases: CI shards into one, or the shared results branch into a local file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..interrupts import uninterrupted
from .catalog import check as check_catalog
from .catalog import expected
from .core import Core
from .dbfile import refuse_foreign

_COUNTS = {
    "results": "SELECT count(*) FROM results",
    "cache": "SELECT count(*) FROM cache",
}


@dataclass(frozen=True)
class MergeCounts:
    runs: int
    results: int
    cache: int


class MergeQueries(Core):
    @uninterrupted
    def merge_from(self, source: Path) -> MergeCounts:
        """Copy the runs (with their results) and cache entries of ``source`` that this database lacks.

        ``source`` is opened read-only and must be a promptci database at this schema version
        or an older one (migrations only add tables and columns). Runs and optimizations already
        present are skipped, so merging twice changes nothing. All of a source or none of it.
        """
        refuse_foreign(source)
        if not source.is_file():
            raise InputError("no such results database", path=source)
        db = self.db
        try:
            db.execute("ATTACH ? AS src (READ_ONLY)", [str(source)])
        except Exception as exc:
            raise InputError(f"cannot open results database: {exc}", path=source) from None
        try:
            version = check_catalog(db, "src", source)  # before any of its tables is read
            if version == 0:
                raise InputError("not a promptci results database (it is empty)", path=source)
            tables = {o.name for o in expected(version) if o.kind == "table"}
            return self._merge_attached("optimizations" in tables, "steps" in tables, "credit" in tables)
        finally:
            db.execute("DETACH src")

    def _merge_attached(self, has_optimizations: bool, has_steps: bool, has_credit: bool) -> MergeCounts:
        db = self.db
        db.execute("BEGIN TRANSACTION")
        try:
            new_runs = [
                r[0] for r in db.execute("SELECT id FROM src.runs WHERE id NOT IN (SELECT id FROM runs)").fetchall()
            ]
            db.execute("INSERT INTO runs BY NAME SELECT * FROM src.runs WHERE id IN (SELECT unnest(?))", [new_runs])
            before = self._count("results")
            db.execute(
                "INSERT INTO results BY NAME SELECT * FROM src.results WHERE run_id IN (SELECT unnest(?))", [new_runs]
            )
            added_results = self._count("results") - before
            if has_steps:  # an older source has none
                db.execute(
                    "INSERT INTO steps BY NAME SELECT * FROM src.steps WHERE run_id IN (SELECT unnest(?))", [new_runs]
                )
            before = self._count("cache")
            db.execute("INSERT OR IGNORE INTO cache BY NAME SELECT * FROM src.cache")
            added_cache = self._count("cache") - before
            if has_optimizations:  # an older source has none
                db.execute(
                    "INSERT INTO trajectory BY NAME SELECT * FROM src.trajectory"
                    " WHERE optimization_id NOT IN (SELECT id FROM optimizations)"
                )
                if has_credit:
                    db.execute(
                        "INSERT INTO credit BY NAME SELECT * FROM src.credit"
                        " WHERE optimization_id NOT IN (SELECT id FROM optimizations)"
                    )
                db.execute(
                    "INSERT INTO optimizations BY NAME SELECT * FROM src.optimizations"
                    " WHERE id NOT IN (SELECT id FROM optimizations)"
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return MergeCounts(len(new_runs), added_results, added_cache)

    def _count(self, table: str) -> int:
        row = self.db.execute(_COUNTS[table]).fetchone()
        return int(row[0]) if row else 0

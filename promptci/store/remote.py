"""Reading published Parquet sets in place, without copying them in.

Each table becomes a temp view of the same name: the local database's rows, then the rows of
the sets it lacks, read by ``read_parquet`` from wherever they are published. Every query of
the store (compare, history, report) then reads both unchanged, and duckdb reads from the
files only the row groups a query needs. The files' footers and columns are checked before a
view is made over them; one that fails is left out with a warning, and the rest are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from ..errors import InputError
from .catalog import connection_config
from .parquet import KEYS, MAX_FILE_BYTES, MAX_FILE_ROWS, ParquetQueries
from .records import Quoted, sql

# table: the table whose ids say which sets the local database already has
_OWNERS = {
    "runs": "runs",
    "results": "runs",
    "steps": "runs",
    "optimizations": "optimizations",
    "trajectory": "optimizations",
    "credit": "optimizations",
}

_R = TypeVar("_R", bound="RemoteQueries")


class RemoteQueries(ParquetQueries):
    @classmethod
    def empty(cls: type[_R]) -> _R:
        """A store in memory with the current schema and no rows, to lay published sets over."""
        import duckdb

        store = object.__new__(cls)
        store.path = Path(":memory:")
        store.read_only = True
        store._snapshot = None
        store.external = True
        store.db = duckdb.connect(config=connection_config(external=True))
        store._migrate()
        return store

    def overlay(self, files: Mapping[str, Sequence[tuple[str, int | None]]]) -> list[str]:
        """Lay ``files`` (table: [(location, size)]) over the local tables as temp views; the
        warnings for files left out."""
        row = self.db.execute("SELECT current_database()").fetchone()
        catalog = Quoted(row[0] if row else "memory")
        self.db.execute("SET enable_object_cache = true")  # each footer is read once
        warnings: list[str] = []
        view = (
            "CREATE OR REPLACE TEMP VIEW $t AS SELECT * FROM $db.main.$t"
            " UNION ALL BY NAME SELECT * FROM read_parquet($f, union_by_name = true)"
            " WHERE $k NOT IN (SELECT id FROM $db.main.$owner)"
        )
        for table, found in files.items():
            usable = self._usable(table, list(found), warnings)
            if usable:
                self.db.execute(sql(view, {"f": usable}, t=table, db=catalog, k=KEYS[table], owner=_OWNERS[table]))
        return warnings

    def _usable(self, table: str, found: list[tuple[str, int | None]], warnings: list[str]) -> list[str]:
        """The locations whose files can be read as ``table``: all of them, checked together,
        or where that fails, one by one."""
        if not found:
            return []
        known = self._columns(table)
        locations = [location for location, _ in found]
        try:
            columns = self._file_columns(locations)
            rows = self._one(sql("SELECT max(num_rows) FROM parquet_file_metadata($f)", {"f": locations}))
            oversized = rows > MAX_FILE_ROWS or any(size is not None and size > MAX_FILE_BYTES for _, size in found)
            if not oversized and set(columns) <= set(known):
                self._check_values(table, locations, columns)  # decoded sizes and values, all files in one scan
                return locations
        except Exception:  # a damaged, foreign or out-of-range file among them: find it
            pass
        usable = []
        for location, size in found:
            try:
                self.check_file(table, location, None, size)
            except InputError as exc:
                warnings.append(f"{location}: {exc.message}; skipped")
                continue
            usable.append(location)
        return usable

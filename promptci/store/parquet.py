"""Results as Parquet: one immutable file set per run and per optimization, and batches of
cached answers, written and read by duckdb itself.

A set is a folder of one file per table (:data:`SETS`); its marker table is written last, so a
set whose marker is missing is incomplete and never read. Every file read from elsewhere is
checked before a row of it is used: its size, row count and uncompressed size against limits,
its columns against the table's, and the ids in it against the set's name. Strings copied in
pass the redaction layer in SQL. A file that fails any check refuses its whole set, untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..interrupts import uninterrupted
from ..redact import rules
from .core import Core
from .dbfile import first_line
from .records import sql

# kind: its tables in the order they are written; the last is the marker.
SETS: dict[str, tuple[str, ...]] = {
    "runs": ("results", "steps", "runs"),
    "optimizations": ("trajectory", "credit", "optimizations"),
}
# table: the column that names the set its rows belong to
KEYS = {
    "runs": "id",
    "results": "run_id",
    "steps": "run_id",
    "optimizations": "id",
    "trajectory": "optimization_id",
    "credit": "optimization_id",
}
# Done: what may be published. A run or optimization still going is published by a later push.
_FINISHED = {
    "runs": "SELECT id FROM runs WHERE status != 'running' ORDER BY id",
    "optimizations": "SELECT id FROM optimizations WHERE status != 'running' ORDER BY id",
}
_PRESENT = {"runs": "SELECT id FROM runs", "optimizations": "SELECT id FROM optimizations"}

MAX_FILE_BYTES = 512 * 2**20  # one Parquet file as stored
MAX_FILE_ROWS = 5_000_000
MAX_UNCOMPRESSED_BYTES = 2 * 2**30  # what one file may expand to
MAX_VALUE_BYTES = 64 * 2**20  # one string in it
_UNIT = {"score", "train_score", "dev_score", "test_before", "test_after", "p_value"}  # in [0, 1]
_NON_NEGATIVE = {"latency_ms", "cost", "wall_s", "tokens_in", "tokens_out", "calls", "tokens", "repeat_index"}
_DIGESTS = {("cache", "key")}  # sha-256 hex digests
_NUMERIC = {"DOUBLE", "FLOAT", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT"}  # fmt: skip


class ParquetQueries(Core):
    def finished(self, kind: str) -> list[str]:
        """Ids of the runs or optimizations that are over, so may be published."""
        return [r[0] for r in self.db.execute(_FINISHED[kind]).fetchall()]

    def present(self, kind: str) -> set[str]:
        return {r[0] for r in self.db.execute(_PRESENT[kind]).fetchall()}

    def export_set(self, kind: str, set_id: str, directory: Path) -> list[Path]:
        """Write the set of run or optimization ``set_id`` into ``directory``; its files, marker last.
        A table with no rows for it (a run without pipeline steps) has no file."""
        directory.mkdir(parents=True, exist_ok=True)
        self.db.execute("SET VARIABLE promptci_set = ?", [set_id])
        written = []
        where = "FROM $t WHERE $k = getvariable('promptci_set')"
        for table in SETS[kind]:
            if not self._one(sql("SELECT count(*) " + where, t=table, k=KEYS[table])):
                continue
            path = directory / f"{table}.parquet"
            self._copy_out("SELECT * " + where + " ORDER BY ALL", path, t=table, k=KEYS[table])
            written.append(path)
        return written

    def export_cache(self, path: Path, present: Sequence[str] = ()) -> list[str]:
        """Write to ``path`` the cached answers that a destination holding the batches ``present``
        lacks (none pulled from one of them, nor published in one); their keys (none: no file)."""
        self.db.execute("SET VARIABLE promptci_present = ?::VARCHAR[]", [list(present)])
        lacking = (
            " FROM cache WHERE (origin IS NULL OR NOT list_contains(getvariable('promptci_present'), origin))"
            " AND key NOT IN (SELECT key FROM cache_batches"
            " WHERE list_contains(getvariable('promptci_present'), batch)) ORDER BY key"
        )
        keys = [r[0] for r in self.db.execute("SELECT key" + lacking).fetchall()]
        if keys:
            self._copy_out("SELECT * EXCLUDE (origin)" + lacking, path)
        return keys

    @uninterrupted
    def mark_published(self, keys: Sequence[str], batch: str) -> None:
        """Cached answers published in ``batch``: a destination that holds it is sent none of them again."""
        self.db.execute("BEGIN TRANSACTION")
        try:
            self.db.execute("INSERT INTO cache_batches SELECT ?, unnest(?) ON CONFLICT DO NOTHING", [batch, list(keys)])
            self.db.execute(
                "UPDATE cache SET origin = ? WHERE origin IS NULL AND key IN (SELECT unnest(?))", [batch, list(keys)]
            )
            self.db.execute("COMMIT")
        except Exception:
            self.db.execute("ROLLBACK")
            raise

    def cache_origins(self) -> set[str]:
        """The cache batches this database pulled or published: none of them is pulled again."""
        rows = self.db.execute(
            "SELECT DISTINCT origin FROM cache WHERE origin IS NOT NULL UNION SELECT DISTINCT batch FROM cache_batches"
        ).fetchall()
        return {r[0] for r in rows}

    def _copy_out(self, query: str, path: Path, **names: str) -> None:
        """The rows of ``query`` (a template of :func:`sql`) into a Parquet file at ``path``."""
        statement = "COPY (" + query + ") TO $path (FORMAT parquet, COMPRESSION zstd)"
        self.db.execute(sql(statement, {"path": str(path)}, **names))

    # reading

    def register_filesystem(self, fs: Any) -> None:
        """Read (and write) URLs of ``fs``'s protocol through it: an fsspec filesystem. duckdb's own
        extensions are never fetched for them."""
        self.db.execute("SET autoinstall_known_extensions = false")
        self.db.execute("SET autoload_known_extensions = false")
        self.db.register_filesystem(fs)

    def check_file(self, table: str, location: str, set_id: str | None, size: int | None) -> None:
        """Refuse (:class:`InputError` naming ``location``) a file that is too big, expands too far,
        is damaged, has columns ``table`` does not, or holds rows of another set than ``set_id``."""
        if size is not None and size > MAX_FILE_BYTES:
            raise InputError(f"{size} bytes, over the limit of {MAX_FILE_BYTES}", path=location)
        source: dict[str, str | list[str]] = {"f": location}
        try:
            rows, expanded = self.db.execute(
                sql(
                    "SELECT coalesce(max(num_rows), 0), coalesce(sum(total_uncompressed_size), 0)"
                    " FROM parquet_metadata($f), parquet_file_metadata($f)",
                    source,
                )
            ).fetchone() or (0, 0)
            columns = self._file_columns(location)
        except Exception as exc:
            raise InputError(f"not a readable Parquet file ({first_line(exc)})", path=location) from None
        if rows > MAX_FILE_ROWS or expanded > MAX_UNCOMPRESSED_BYTES:
            raise InputError(f"{rows} rows expanding to {expanded} bytes, over the limits", path=location)
        known = self._columns(table)
        foreign = sorted(set(columns) - set(known))
        if foreign:
            raise InputError(f"not a promptci {table} file: unknown columns {', '.join(foreign[:5])}", path=location)
        self._check_values(table, location, columns)
        key = KEYS.get(table)
        if key is not None and set_id is not None:
            if key not in columns:
                raise InputError(f"not a promptci {table} file: no {key} column", path=location)
            try:
                other = self.db.execute(
                    sql("SELECT count(*) FROM read_parquet($f) WHERE $k IS DISTINCT FROM ?", source, k=key), [set_id]
                ).fetchone()
            except Exception as exc:
                raise InputError(f"not a readable Parquet file ({first_line(exc)})", path=location) from None
            if other and other[0]:
                raise InputError(f"holds {other[0]} rows of sets other than {set_id}", path=location)

    def _check_values(self, table: str, location: str | list[str], columns: Mapping[str, str]) -> None:
        """Refuse a file whose strings decode to more than the limits (a dictionary page repeats one
        entry as often as it likes, whatever the file's metadata claims), or whose numbers are not
        finite, or out of their range: counted by decoding it, streamed, never held whole."""
        where = location if isinstance(location, str) else None
        texts = [c for c, kind in columns.items() if kind in ("VARCHAR", "BLOB")]
        numbers = [c for c, kind in columns.items() if kind in _NUMERIC or kind.startswith("DECIMAL")]
        names = {f"c{i}": c for i, c in enumerate(columns)}
        ref = {c: f"$c{i}" for i, c in enumerate(columns)}
        width = {c: ("octet_length" if columns[c] == "BLOB" else "strlen") + f"({ref[c]})" for c in texts}
        decoded = " + ".join(f"coalesce(sum({width[c]}), 0)" for c in texts) or "0"
        longest = "greatest(" + ", ".join(f"coalesce(max({width[c]}), 0)" for c in texts) + ")"
        bad = [f"NOT isfinite({ref[c]}::DOUBLE)" for c in numbers]
        bad += [f"{ref[c]} NOT BETWEEN 0 AND 1" for c in numbers if c in _UNIT]
        bad += [f"{ref[c]} < 0" for c in numbers if c in _NON_NEGATIVE]
        bad += [f"NOT regexp_full_match({ref[c]}, '[0-9a-f]{{64}}')" for c in texts if (table, c) in _DIGESTS]
        query = (
            "SELECT " + decoded + ", " + (longest if texts else "0") + ", "
            + ("count(*) FILTER (WHERE " + " OR ".join(bad) + ")" if bad else "0")
            + " FROM read_parquet($f, union_by_name = true)"
        )  # fmt: skip
        try:
            size, widest, wrong = self.db.execute(sql(query, {"f": location}, **names)).fetchone() or (0, 0, 0)
        except Exception as exc:
            raise InputError(f"not a readable Parquet file ({first_line(exc)})", path=where) from None
        if size > MAX_UNCOMPRESSED_BYTES or widest > MAX_VALUE_BYTES:
            raise InputError(f"its strings decode to {size} bytes (the longest {widest}), over the limits", path=where)
        if wrong:
            raise InputError(
                f"{wrong} rows hold values out of range"
                " (not finite, a score outside [0, 1], a negative count, a malformed key)",
                path=where,
            )

    def _columns(self, table: str) -> dict[str, str]:
        """A table's columns and types (the schema does not change while a store is open)."""
        known: dict[str, dict[str, str]] = self.__dict__.setdefault("_table_columns", {})
        if table not in known:
            known[table] = {r[0]: r[1] for r in self.db.execute(sql("DESCRIBE $t", t=table)).fetchall()}
        return known[table]

    def _file_columns(self, location: str | list[str]) -> dict[str, str]:
        """The columns of a Parquet file (read once), or of a list of them read together by name."""
        seen: dict[str, dict[str, str]] = self.__dict__.setdefault("_file_columns_seen", {})
        if isinstance(location, str) and location in seen:
            return seen[location]
        rows = self.db.execute(sql("DESCRIBE SELECT * FROM read_parquet($f, union_by_name = true)", {"f": location}))
        found = {r[0]: r[1] for r in rows.fetchall()}
        if isinstance(location, str):
            seen[location] = found
        return found

    def _redacted(self, table: str, present: set[str]) -> tuple[str, dict[str, str | list[str]], dict[str, str]]:
        """A query that reads ``table``'s columns found in a file (``$f``) with their strings
        redacted: a template of :func:`sql`, its literals (the patterns) and its names.

        The layer's patterns, as one, are run over each row's strings joined; only a row where one
        matches goes through the layer itself (:func:`promptci.redact.redact`), column by column.
        Most rows hold no secret, and only one pattern is compiled for the statement."""
        literals: dict[str, str | list[str]] = {"any": "|".join(f"(?:{pattern})" for pattern, _ in rules())}
        names, cells, strings = {}, [], []
        for i, (name, kind) in enumerate(self._columns(table).items()):
            if name not in present:
                continue
            names[f"c{i}"] = name
            cell = f"$c{i}"
            if kind == "VARCHAR":
                strings.append(cell)
                cell = f"CASE WHEN promptci_secret THEN promptci_redact($c{i}) ELSE $c{i} END"
            cells.append(f"{cell} AS $c{i}")
        joined = "concat_ws(chr(10), " + ", ".join(strings) + ")" if strings else "''"
        flagged = (
            "(SELECT *, regexp_matches(" + joined + ", $any) AS promptci_secret"
            " FROM read_parquet($f, union_by_name = true))"
        )
        return "SELECT " + ", ".join(cells) + " FROM " + flagged, literals, names

    @uninterrupted
    def import_set(self, kind: str, set_id: str, files: Mapping[str, tuple[str, int | None]]) -> int:
        """Copy a run's or optimization's set in, all of it or nothing: ``files`` maps each table to
        (location, size in bytes where known). Every file is checked first. The rows copied."""
        if set_id in self.present(kind):
            return 0
        self._check_set(kind, set_id, files)
        return self._copy_in([(t, [files[t][0]], "INSERT INTO", "") for t in SETS[kind] if t in files])

    @uninterrupted
    def import_sets(
        self, kind: str, sets: Mapping[str, Mapping[str, tuple[str, int | None]]]
    ) -> tuple[list[str], int, dict[str, str]]:
        """Copy in many sets of one kind: each is checked, and the good ones are copied together,
        one statement a table (or, where that fails, one set at a time, each whole or not at all).
        The sets copied, the rows, and why each refused set was refused."""
        refused: dict[str, str] = {}
        good: dict[str, Mapping[str, tuple[str, int | None]]] = {}
        have = self.present(kind)
        for set_id, files in sets.items():
            if set_id in have:
                continue
            try:
                self._check_set(kind, set_id, files)
            except InputError as exc:
                refused[set_id] = exc.message
                continue
            good[set_id] = files
        if not good:
            return [], 0, refused
        plan = [
            (table, [files[table][0] for files in good.values() if table in files], "INSERT INTO", "")
            for table in SETS[kind]
            if any(table in files for files in good.values())
        ]
        try:
            return list(good), self._copy_in(plan), refused
        except InputError:  # damage the checks could not see: find it, one set at a time
            pass
        copied, rows = [], 0
        for set_id, files in good.items():
            try:
                rows += self.import_set(kind, set_id, files)
            except InputError as exc:
                refused[set_id] = exc.message
                continue
            copied.append(set_id)
        return copied, rows, refused

    def _check_set(self, kind: str, set_id: str, files: Mapping[str, tuple[str, int | None]]) -> None:
        marker = SETS[kind][-1]
        if marker not in files:
            raise InputError(f"incomplete: no {marker}.parquet", path=set_id)
        unknown = set(files) - set(SETS[kind])
        if unknown:
            raise InputError(f"unexpected files {', '.join(sorted(unknown))}", path=set_id)
        for table, (location, size) in files.items():
            self.check_file(table, location, set_id, size)

    @uninterrupted
    def import_cache(self, origin: str, location: str, size: int | None) -> int:
        """Copy in the cached answers of one published batch that this database lacks."""
        self.check_file("cache", location, None, size)
        return self._copy_in([("cache", [location], "INSERT OR IGNORE INTO", origin)])

    def _copy_in(self, plan: list[tuple[str, list[str], str, str]]) -> int:
        """In one transaction, for each (table, files, verb, origin): the files' rows, redacted."""
        self._register_redaction()
        copied = 0
        self.db.execute("BEGIN TRANSACTION")
        try:
            for table, location, verb, origin in plan:
                select, literals, names = self._redacted(table, set(self._file_columns(location)))
                if origin:
                    select = "SELECT *, $origin AS origin FROM (" + select + ")"
                statement = verb + " $t BY NAME " + select
                inserted = self.db.execute(
                    sql(statement, {**literals, "f": location, "origin": origin}, t=table, **names)
                )
                copied += self._count_of(inserted)
            self.db.execute("COMMIT")
        except Exception as exc:
            self.db.execute("ROLLBACK")
            reason = f"cannot copy it in ({first_line(exc)}); nothing of it was kept"
            raise InputError(reason, path=plan[-1][1][0] if len(plan[-1][1]) == 1 else None) from None
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return copied

    @staticmethod
    def _count_of(cursor: Any) -> int:
        """The rows an ``INSERT`` added, as duckdb answers it."""
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _one(self, query: str) -> int:
        row = self.db.execute(query).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def digest(path: Path) -> str:
    """A published batch's name: the hash of its bytes (at most :data:`MAX_FILE_BYTES` are read)."""
    from ..files import open_regular

    found = hashlib.sha256()
    with open_regular(path, str(path), limit=MAX_FILE_BYTES, what="Parquet file") as fh:
        while chunk := fh.read(1 << 20):
            found.update(chunk)
    return found.hexdigest()[:32]

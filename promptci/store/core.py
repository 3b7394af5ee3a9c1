"""The results database: opening and checking it, runs, results, optimizations and the cache.

The schema changes only through the numbered migrations below, each recorded in
``schema_migrations`` when applied. A file that is not a promptci database is
refused and never modified.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError
from ..interrupts import uninterrupted
from ..redact import redact_any
from .catalog import check as check_catalog
from .catalog import connection_config
from .dbfile import (
    HOST,
    Busy,
    alive,
    damaged,
    file_state,
    first_line,
    is_corruption,
    is_lock_conflict,
    lock_holder,
    read_stamp,
    refuse_foreign,
    stamp_path,
    write_stamp,
)
from .migrations import INTEGRITY_QUERIES, MIGRATIONS, MIGRATIONS_TABLE, schema_version
from .records import (
    CREDIT_COLUMNS,
    OPTIMIZATION_UPDATABLE,
    RESULT_COLUMNS,
    STEP_COLUMNS,
    TRAJECTORY_COLUMNS,
    CachedResponse,
    CreditRow,
    ResultRow,
    StepRow,
    TrajectoryRow,
    now,
    placeholders,
    sql,
)

WRITER_WAIT_S = 10.0  # how long a writer waits for another process to let go of the database


_S = TypeVar("_S", bound="Core")


class Core:
    """An open results database: the connection, its checks, and the queries every command
    needs. :class:`promptci.store.Store` adds the comparison, history and merge queries."""

    def __init__(self, path: Path, *, read_only: bool = False, external: bool | None = None) -> None:
        """Open ``path``. A damaged or foreign file, or one that holds anything but promptci's
        tables, is refused before anything is written or any of its SQL runs.

        Read-only opens never wait for a writer: while another process holds the
        database (an eval in progress), they read a snapshot copy of it. Their SQL can reach no
        file and no network unless ``external`` (reading published Parquet sets) says so.
        """
        self.path = path
        self.read_only = read_only
        self.external = not read_only if external is None else external
        self._snapshot: Path | None = None
        if path.is_dir():
            raise InputError("the results database path is a directory", path=path, hint="set `db:` to a file")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise InputError(f"no results database at {path}", hint="run `promptci eval` first")
        refuse_foreign(path)
        if read_only:
            self.db = self._open_for_reading()
            if schema_version(self.db) < MIGRATIONS[-1][0]:
                self.db = self._migrated_copy()
        else:
            self.db = self._open_for_writing()
            self._migrate()
            self._mark_abandoned()

    def _open_for_writing(self) -> Any:
        """Check the file read-only, then open it for writing; while another process holds it
        (a concurrent eval), wait up to :data:`WRITER_WAIT_S` seconds for it to let go."""
        deadline = time.monotonic() + WRITER_WAIT_S
        delay = 0.05
        while True:
            try:
                if self.path.exists() and self.path.stat().st_size:
                    self._connect(self.path, read_only=True).close()  # checks integrity, writes nothing
                return self._connect(self.path, read_only=False)
            except Busy as exc:
                if time.monotonic() + delay > deadline:
                    raise InputError(
                        f"results database is in use by another process ({exc}); nothing was written",
                        path=self.path,
                        hint="run again when it has finished, or point `db:` elsewhere",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _connect(self, path: Path, *, read_only: bool) -> Any:
        import duckdb

        try:
            db = duckdb.connect(str(path), read_only=read_only, config=connection_config(external=self.external))
        except duckdb.Error as exc:
            if is_lock_conflict(exc):
                raise Busy(lock_holder(exc)) from None
            if is_corruption(exc):
                raise damaged(self.path, exc) from None
            raise InputError(f"cannot open results database: {first_line(exc)}", path=self.path) from None
        try:
            self._check_schema(db)
            if read_only:
                self._check_integrity(db, path)
        except BaseException:
            db.close()
            raise
        return db

    def _open_for_reading(self) -> Any:
        try:
            return self._connect(self.path, read_only=True)
        except Busy:
            pass
        import shutil
        import tempfile

        # A copy taken while the writer checkpoints can be torn: the check catches it, so try again.
        for attempt in range(3):
            directory = Path(tempfile.mkdtemp(prefix="promptci-snapshot-"))
            try:
                db = self._connect(_copy_with_wal(self.path, directory), read_only=True)
            except (InputError, Busy, OSError):
                shutil.rmtree(directory, ignore_errors=True)
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
                continue
            self._snapshot = directory
            return db
        raise AssertionError("unreachable")

    def _migrated_copy(self) -> Any:
        """A database from an older promptci, read through a copy brought up to this schema: the
        file itself is never written by a read."""
        import shutil
        import tempfile

        source = self._snapshot / self.path.name if self._snapshot is not None else self.path
        directory = Path(tempfile.mkdtemp(prefix="promptci-snapshot-"))
        self.db.close()
        try:
            self.db = self._connect(_copy_with_wal(source, directory), read_only=False)
            self._migrate()
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        finally:
            if self._snapshot is not None:
                shutil.rmtree(self._snapshot, ignore_errors=True)
        self._snapshot = directory
        return self.db

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()
        if not self.read_only:
            write_stamp(stamp_path(self.path), file_state(self.path))  # what we wrote is sound
        if self._snapshot is not None:
            import shutil

            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None

    def _check_integrity(self, db: Any, path: Path) -> None:
        """Read every block once (duckdb verifies each block's checksum as it reads it).

        A file this process left behind after its last write is trusted without a
        reread: the stamp beside it records its size and modification time.
        """
        stamp = stamp_path(self.path)
        state = file_state(path)
        if path == self.path and read_stamp(stamp) == state:
            return
        tables = {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        try:
            for table, query in INTEGRITY_QUERIES.items():
                if table in tables:
                    db.execute(query).fetchall()
        except Exception as exc:
            if is_corruption(exc) or "IO Error" in str(exc):
                raise damaged(self.path, exc) from None
            raise
        if path == self.path:
            write_stamp(stamp, state)

    def _check_schema(self, db: Any) -> None:
        """Refuse a DuckDB file that holds something else, a schema newer than ours, or anything
        beside promptci's own tables (a view, a macro: SQL that would run when read)."""
        check_catalog(db, db.execute("SELECT current_database()").fetchone()[0], self.path)

    @uninterrupted
    def _migrate(self) -> None:
        self.db.execute(MIGRATIONS_TABLE.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
        applied = {r[0] for r in self.db.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, script in MIGRATIONS:
            if version in applied:
                continue
            self.db.execute("BEGIN TRANSACTION")
            try:
                self.db.execute(script)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, now()])
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    def _register_redaction(self) -> None:
        """``promptci_redact(text)`` in SQL: the one redaction layer, for the rows that need it."""
        if self.__dict__.get("_redaction_registered"):
            return
        import duckdb

        from ..redact import redact

        self.db.execute("SELECT 1").fetchall()  # no result left pending: duckdb refuses a new function then
        self.db.create_function("promptci_redact", redact, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"))
        self.__dict__["_redaction_registered"] = True

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        """Every write: its strings pass the redaction layer first."""
        self.db.execute(sql, redact_any(list(params)))

    @uninterrupted
    def checkpoint(self) -> None:
        """Everything into the database file, nothing left in the write-ahead log."""
        self.db.execute("CHECKPOINT")

    def schema_version(self) -> int:
        return schema_version(self.db)

    # runs

    @uninterrupted
    def start_run(
        self,
        run_id: str,
        *,
        git_commit: str | None,
        branch: str | None,
        dirty: bool | None,
        command: str,
        config_hash: str,
    ) -> None:
        from ..version import __version__

        self._write(
            "INSERT INTO runs (id, started_at, git_commit, branch, dirty, command, config_hash, status,"
            " promptci_version, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            [run_id, now(), git_commit, branch, dirty, command, config_hash, __version__, os.getpid(), HOST],
        )

    @uninterrupted
    def _mark_abandoned(self) -> None:
        """Runs left ``running`` by a process on this machine that no longer exists (killed,
        or the machine restarted) become ``abandoned``."""
        rows = self.db.execute("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", [HOST]).fetchall()
        gone = [run_id for run_id, pid in rows if pid is None or not alive(int(pid))]
        if gone:
            self._write(
                "UPDATE runs SET status = 'abandoned' WHERE id IN (SELECT unnest(?))",
                [gone],
            )

    @uninterrupted
    def set_estimate(self, run_id: str, estimate: str) -> None:
        """The estimate (JSON) the run was started with."""
        self._write("UPDATE runs SET estimate = ? WHERE id = ?", [estimate, run_id])

    def finish_run(self, run_id: str, status: str) -> None:
        self._write("UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", [status, now(), run_id])

    def run_count(self) -> int:
        row = self.db.execute("SELECT count(*) FROM runs").fetchone()
        return int(row[0]) if row else 0

    # results

    @uninterrupted
    def add_results(self, rows: Sequence[ResultRow]) -> None:
        """Insert rows in one statement (duckdb's executemany runs row by row)."""
        for chunk in _chunks(rows, 500):
            params = [getattr(r, c) for r in chunk for c in RESULT_COLUMNS]
            self._write("INSERT INTO results VALUES " + placeholders(len(RESULT_COLUMNS), len(chunk)), params)

    @uninterrupted
    def add_steps(self, rows: Sequence[StepRow]) -> None:
        for chunk in _chunks(rows, 500):
            params = [getattr(r, c) for r in chunk for c in STEP_COLUMNS]
            self._write("INSERT INTO steps VALUES " + placeholders(len(STEP_COLUMNS), len(chunk)), params)

    @uninterrupted
    def record(
        self,
        rows: Sequence[ResultRow],
        cache: Sequence[tuple[str, str, CachedResponse]],
        steps: Sequence[StepRow] = (),
    ) -> None:
        """Results, their pipeline steps and the answers to cache for them, in one held-signal
        section, so that an interrupted run never keeps a result without its cached answer."""
        self.add_results(rows)
        self.add_steps(steps)
        self.cache_put(cache)

    def results_of(self, run_id: str) -> list[ResultRow]:
        """One run's result rows, by suite, prompt, case and repeat."""
        rows = self.db.execute(
            "SELECT " + ", ".join(RESULT_COLUMNS) + " FROM results WHERE run_id = ?"
            " ORDER BY suite, prompt, case_id, repeat_index",
            [run_id],
        ).fetchall()
        return [ResultRow(**dict(zip(RESULT_COLUMNS, r, strict=True))) for r in rows]

    def steps(self, run_id: str) -> list[StepRow]:
        """The pipeline steps stored for one run, by suite, pipeline, case, repeat and step."""
        rows = self.db.execute(
            "SELECT " + ", ".join(STEP_COLUMNS) + " FROM steps WHERE run_id = ?"
            " ORDER BY suite, prompt, case_id, repeat_index, step_index",
            [run_id],
        ).fetchall()
        return [StepRow(**dict(zip(STEP_COLUMNS, r, strict=True))) for r in rows]

    # optimizations

    @uninterrupted
    def start_optimization(
        self, opt_id: str, *, prompt: str, suite: str, method: str, base_commit: str, settings: str, initial: str
    ) -> None:
        self._write(
            "INSERT INTO optimizations (id, started_at, prompt, suite, method, base_commit, settings, status, initial)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            [opt_id, now(), prompt, suite, method, base_commit, settings, initial],
        )

    @uninterrupted
    def update_optimization(self, opt_id: str, **values: Any) -> None:
        unknown = set(values) - OPTIMIZATION_UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = ", ".join(sql("$column = ?", column=name) for name in values)
        self._write("UPDATE optimizations SET " + assignments + " WHERE id = ?", [*values.values(), opt_id])

    def optimization(self, opt_id: str) -> dict[str, Any] | None:
        """The optimization with this id, or with this unique id prefix."""
        cur = self.db.execute("SELECT * FROM optimizations WHERE starts_with(id, ?) ORDER BY id", [opt_id])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        exact = [r for r in rows if r[0] == opt_id]
        if len(rows) > 1 and not exact:
            raise InputError(f"optimization id '{opt_id}' is ambiguous", hint="give more of the id")
        chosen = exact or rows
        return dict(zip(names, chosen[0], strict=True)) if chosen else None

    @uninterrupted
    def add_trajectory(self, rows: Sequence[TrajectoryRow]) -> None:
        """Store one step's rows all together, so a stored step is always complete."""
        if not rows:
            return
        params = [getattr(r, c) for r in rows for c in TRAJECTORY_COLUMNS]
        self._write("INSERT INTO trajectory VALUES " + placeholders(len(TRAJECTORY_COLUMNS), len(rows)), params)

    @uninterrupted
    def set_dev_score(self, row: TrajectoryRow) -> None:
        self._write(
            "UPDATE trajectory SET dev_score = ?, dev_run = ?, calls = ?, tokens = ?, cost = ?, status = ?"
            " WHERE optimization_id = ? AND step = ? AND candidate = ?",
            [
                *(row.dev_score, row.dev_run, row.calls, row.tokens, row.cost, row.status),
                *(row.optimization_id, row.step, row.candidate),
            ],
        )

    @uninterrupted
    def add_credit(self, rows: Sequence[CreditRow]) -> None:
        for chunk in _chunks(rows, 500):
            params = [getattr(r, c) for r in chunk for c in CREDIT_COLUMNS]
            self._write("INSERT INTO credit VALUES " + placeholders(len(CREDIT_COLUMNS), len(chunk)), params)

    @uninterrupted
    def drop_credit_after(self, opt_id: str, step: int) -> None:
        """Forget the feedback of steps after ``step``, whose candidates were never stored."""
        self._write("DELETE FROM credit WHERE optimization_id = ? AND step > ?", [opt_id, step])

    def credit(self, opt_id: str) -> list[CreditRow]:
        rows = self.db.execute(
            "SELECT " + ", ".join(CREDIT_COLUMNS) + " FROM credit WHERE optimization_id = ?"
            " ORDER BY step, case_id, created_at",
            [opt_id],
        ).fetchall()
        return [CreditRow(**dict(zip(CREDIT_COLUMNS, r, strict=True))) for r in rows]

    def trajectory(self, opt_id: str) -> list[TrajectoryRow]:
        rows = self.db.execute(
            "SELECT " + ", ".join(TRAJECTORY_COLUMNS) + " FROM trajectory WHERE optimization_id = ?"
            " ORDER BY step, candidate",
            [opt_id],
        ).fetchall()
        return [TrajectoryRow(**dict(zip(TRAJECTORY_COLUMNS, r, strict=True))) for r in rows]

    # cache

    @uninterrupted
    def cache_get(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        keys = list(keys)
        if not keys:
            return {}
        rows = self.db.execute(
            "SELECT key, output, tokens_in, tokens_out, cost, latency_ms, logprobs FROM cache"
            " WHERE key IN (SELECT unnest(?))",
            [keys],
        ).fetchall()
        return {r[0]: CachedResponse(*r[1:]) for r in rows}

    @uninterrupted
    def cache_put(self, entries: Sequence[tuple[str, str, CachedResponse]]) -> None:
        """Store ``(key, model_id, response)``; empty outputs are never cached."""
        kept = [e for e in entries if e[2].output.strip()]
        for chunk in _chunks(kept, 500):
            params: list[Any] = []
            for key, model_id, r in chunk:
                params += [key, model_id, r.output, r.tokens_in, r.tokens_out, r.cost, r.latency_ms, now(), r.logprobs]
            self._write(
                "INSERT OR REPLACE INTO cache (key, model_id, output, tokens_in, tokens_out, cost, latency_ms,"
                " created_at, logprobs) VALUES " + placeholders(9, len(chunk)),
                params,
            )

    def cache_info(self) -> dict[str, Any]:
        total = self.db.execute("SELECT count(*), coalesce(sum(length(output)), 0) FROM cache").fetchone()
        models = self.db.execute("SELECT model_id, count(*) FROM cache GROUP BY 1 ORDER BY 2 DESC").fetchall()
        assert total is not None
        return {"path": str(self.path), "entries": total[0], "output_bytes": total[1], "models": dict(models)}

    @uninterrupted
    def cache_clear(self, model_id: str | None = None) -> int:
        where, params = (" WHERE model_id = ?", [model_id]) if model_id else ("", [])
        row = self.db.execute("SELECT count(*) FROM cache" + where, params).fetchone()
        self.db.execute("DELETE FROM cache" + where, params)
        return int(row[0]) if row else 0


def _copy_with_wal(path: Path, directory: Path) -> Path:
    """A copy of the database at ``path`` in ``directory``, with its write-ahead log if it has one."""
    import shutil

    copy = directory / path.name
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return copy


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]

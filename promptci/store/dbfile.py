"""The results file on disk, before duckdb opens it: foreign and damaged files, integrity
stamps, and whether the process that started a run still exists."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path

from ..errors import InputError

_DUCKDB_MAGIC = b"DUCK"


def refuse_foreign(path: Path) -> None:
    """Refuse a file that is not a DuckDB database before duckdb can touch it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        head = fh.read(16)
    if head[8:12] != _DUCKDB_MAGIC:
        raise InputError(
            "not a DuckDB database; refusing to open it",
            path=path,
            hint="point `db:` in promptci.yaml at another file",
        )


HOST = socket.gethostname()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class Busy(Exception):
    """Another process holds the database for writing."""


def lock_holder(exc: BaseException) -> str:
    """Who holds the lock, as duckdb's message names it: ``held by PID 1234``."""
    match = re.search(r"\(PID (\d+)\)", str(exc))
    return f"held by PID {match.group(1)}" if match else "locked"


def is_lock_conflict(exc: BaseException) -> bool:
    return "Could not set lock" in str(exc) or "Conflicting lock" in str(exc)


def is_corruption(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in ("Corrupt database", "checksum", "corrupt", "not a valid DuckDB", "Serialization"))


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def damaged(path: Path, exc: BaseException) -> InputError:
    return InputError(
        f"results database is damaged ({first_line(exc)}); refusing to use it, and it was not modified",
        path=path,
        hint="restore it from a backup or `promptci results pull`, or move it aside to start a new one",
    )


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".checked")


def file_state(path: Path) -> str:
    wal = path.with_name(path.name + ".wal")
    parts = [path, wal] if wal.exists() else [path]
    return ";".join(f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in parts)


def read_stamp(stamp: Path) -> str | None:
    try:
        return stamp.read_text(encoding="utf-8")
    except OSError:
        return None


def write_stamp(stamp: Path, state: str) -> None:
    with contextlib.suppress(OSError):  # an unwritable stamp only costs a reread next time
        stamp.write_text(state, encoding="utf-8")

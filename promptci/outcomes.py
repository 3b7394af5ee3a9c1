"""Outcome logs: what happened after a labelled prompt was used in production, one JSON line each.

``prompt.record(outcome)`` appends a line to a local log (``$PROMPTCI_OUTCOMES``, else
``promptci-outcomes.jsonl`` in the working directory) that the application ships wherever it
likes; ``promptci ab report`` reads the logs back. A line is written whole with one ``write`` to
a file opened for appending, so concurrent writers never interleave inside a line and a crash
leaves at most one torn last line, which the reader reports by file and line and skips.

Only the standard library is imported here: the runtime records outcomes without the CLI's
dependencies. The key a version was chosen by (a user id) is stored only as a hash.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator, Mapping

# json, math, datetime and threading are imported where used: loading a prompt (which makes a
# Release) must stay quick, recording is the first to need them.

LOG_ENV = "PROMPTCI_OUTCOMES"
DEFAULT_LOG = "promptci-outcomes.jsonl"
FORMAT = 1
MAX_LINE_BYTES = 16 * 1024  # a line longer than this is refused when read
MAX_METADATA_KEYS = 32
MAX_METADATA_TEXT = 1000
MAX_LOG_BYTES = 1 << 30  # one log file, when read

_locks: dict[str, threading.Lock] = {}


@dataclass(frozen=True)
class Release:
    """How a prompt was chosen for production: its label, and the hashed key of an A/B split."""

    label: str
    key_hash: str | None = None
    log: str | None = None  # where its outcomes go; None: $PROMPTCI_OUTCOMES, else the default


def key_hash(key: str | None) -> str | None:
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key is not None else None


def log_path(release: Release) -> Path:
    return Path(release.log or os.environ.get(LOG_ENV) or DEFAULT_LOG)


def record(
    release: Release, prompt: str, version: str, commit: str | None, outcome: float | bool, metadata: Mapping[str, Any]
) -> None:
    """Append one outcome of ``prompt`` at ``version``: a number or a bool, and optional metadata
    (at most 32 keys of strings, numbers, bools or None)."""
    import json
    import math
    from datetime import datetime, timezone

    if isinstance(outcome, bool):
        value: float | bool = outcome
    elif isinstance(outcome, (int, float)) and math.isfinite(outcome):
        value = float(outcome)
    else:
        raise InputError(f"an outcome is a finite number or a bool, not {outcome!r:.40}")
    line = {
        "v": FORMAT,
        "id": os.urandom(8).hex(),  # two outcomes alike in every field are still two
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "prompt": prompt,
        "label": release.label,
        "version": version,
        "commit": commit,
        "key": release.key_hash,
        "outcome": value,
        "metadata": _metadata(metadata),
    }
    data = (json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode()
    if len(data) > MAX_LINE_BYTES:
        raise InputError(f"an outcome line of {len(data)} bytes is over the limit of {MAX_LINE_BYTES}")
    _append(log_path(release), data)


def _metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    import math

    from .redact import redact

    if len(metadata) > MAX_METADATA_KEYS:
        raise InputError(f"at most {MAX_METADATA_KEYS} metadata keys, not {len(metadata)}")
    kept: dict[str, Any] = {}
    for name, value in metadata.items():
        if isinstance(value, str):
            kept[redact(str(name))] = redact(value[:MAX_METADATA_TEXT])
        elif value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
            kept[redact(str(name))] = value
        else:
            raise InputError(f"metadata '{name}' must be a string, number, bool or None, not {type(value).__name__}")
    return kept


def _append(path: Path, data: bytes) -> None:
    """``data`` at the end of ``path`` in one write, under a per-file lock for this process's threads."""
    import threading

    where = str(path.resolve())
    lock = _locks.setdefault(where, threading.Lock())  # setdefault is atomic under the GIL
    with lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a full disk: never leave half a line without its end
                os.write(fd, b"\n")
                raise OSError(f"could not write the whole outcome line to {path}")
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Outcome:
    """One line of an outcome log, read back."""

    log: str
    line: int
    ts: str
    prompt: str
    label: str
    version: str
    commit: str | None
    key: str | None
    outcome: float
    boolean: bool
    metadata: str  # JSON
    id: str  # the line's own id (else its hash): reading a log twice stores each outcome once


def read_log(path: Path) -> Iterator[Outcome | InputError]:
    """Each line of ``path`` as an :class:`Outcome`, or an :class:`InputError` naming the file and
    line of one that cannot be read (the rest are still read)."""
    shown = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        yield InputError(f"cannot read outcome log: {exc.strerror}", path=shown)
        return
    if size > MAX_LOG_BYTES:
        yield InputError(f"outcome log of {size} bytes is over the limit of {MAX_LOG_BYTES}", path=shown)
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield _parse(raw, shown, number)
            except InputError as exc:
                yield exc


def _parse(raw: bytes, path: str, number: int) -> Outcome:
    import json
    import math

    def bad(why: str) -> InputError:
        return InputError(f"not an outcome line: {why}", path=path, line=number)

    if len(raw) > MAX_LINE_BYTES:
        raise bad(f"{len(raw)} bytes, over the limit of {MAX_LINE_BYTES}")
    if not raw.endswith(b"\n"):
        raise bad("cut off (no end of line): a write that did not finish")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad(f"invalid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("v") != FORMAT:
        raise bad(f"not format {FORMAT}")
    text = {k: data.get(k) for k in ("ts", "prompt", "label", "version")}
    for name, value in text.items():
        if not isinstance(value, str) or not value or len(value) > 200:
            raise bad(f"'{name}' must be a non-empty string")
    outcome = data.get("outcome")
    is_bool = isinstance(outcome, bool)
    if not is_bool and (not isinstance(outcome, (int, float)) or not math.isfinite(outcome)):
        raise bad("'outcome' must be a finite number or a bool")
    commit, key = data.get("commit"), data.get("key")
    if not all(v is None or (isinstance(v, str) and len(v) <= 80) for v in (commit, key)):
        raise bad("'commit' and 'key' must be short strings or null")
    line_id = data.get("id")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad("'metadata' must be an object")
    return Outcome(
        log=path,
        line=number,
        ts=text["ts"],  # type: ignore[arg-type]
        prompt=text["prompt"],  # type: ignore[arg-type]
        label=text["label"],  # type: ignore[arg-type]
        version=text["version"],  # type: ignore[arg-type]
        commit=commit,
        key=key,
        outcome=float(outcome),  # type: ignore[arg-type]
        boolean=is_bool,
        metadata=json.dumps(metadata, sort_keys=True),
        id=line_id if isinstance(line_id, str) and 0 < len(line_id) <= 64 else hashlib.sha256(raw).hexdigest()[:32],
    )

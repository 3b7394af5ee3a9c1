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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import InputError

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

# json, math, datetime and threading are imported where used: loading a prompt (which makes a
# Release) must stay quick, recording is the first to need them.

LOG_ENV = "PROMPTCI_OUTCOMES"
DEFAULT_LOG = "promptci-outcomes.jsonl"
FORMAT = 1
MAX_LINE_BYTES = 16 * 1024  # a line longer than this is refused when read
MAX_METADATA_KEYS = 32
MAX_METADATA_TEXT = 1000
MAX_LOG_BYTES = 1 << 30  # one log file, when read
MAX_OUTCOME = 1e12  # the largest magnitude an outcome may have: sums and variances stay finite

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


@dataclass
class Framed:
    """What :func:`frame` made of one log: its lines, and the ones refused before parsing."""

    lines: int = 0  # lines read, blank ones included
    staged: int = 0  # written out for the database to parse
    problems: list[InputError] = field(default_factory=list)  # the first MAX_PROBLEMS
    refused: int = 0  # all of them

    def refuse(self, path: str, why: str, line: int | None = None) -> None:
        self.refused += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(InputError(f"not an outcome line: {why}", path=path, line=line or self.lines))


MAX_PROBLEMS = 20
_CHUNK = 8 << 20


def frame(path: Path, out: BinaryIO, progress: Callable[[int, int], None] | None = None) -> Framed:
    """Each line of the log at ``path`` as a JSON line ``{"n": LINE, "r": TEXT}`` on ``out``,
    for the database to parse and check (:meth:`promptci.store.Store.load_outcomes`).

    Only a regular file is read, and no more than :data:`MAX_LOG_BYTES` of it; a line over
    :data:`MAX_LINE_BYTES`, not UTF-8, or cut off at the end (a write that did not finish) is
    refused here by file and line. ``progress`` is called with the bytes read so far and the size.
    """
    from json.encoder import encode_basestring

    from .files import open_regular

    shown, framed = str(path), Framed()
    with open_regular(path, shown, limit=MAX_LOG_BYTES, what="outcome log") as fh:
        rest, done, skipping, size = b"", 0, False, os.fstat(fh.fileno()).st_size
        while chunk := fh.read(_CHUNK):
            done += len(chunk)
            if skipping:  # the rest of a line already refused as too long
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk, skipping = chunk[end + 1 :], False
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            staged = []
            for raw in lines:
                framed.lines += 1
                why = _framing(raw)
                if why is None:
                    staged.append(b'{"n":%d,"r":%s}\n' % (framed.lines, encode_basestring(raw.decode()).encode()))
                elif why:
                    framed.refuse(shown, why)
            if len(rest) > MAX_LINE_BYTES:  # a line with no end in sight: refuse it now, skip to its end
                framed.lines += 1
                framed.refuse(shown, _framing(rest) or "")
                rest, skipping = b"", True
            out.write(b"".join(staged))
            framed.staged += len(staged)
            if progress is not None:
                progress(done, size)
        if rest.strip():
            framed.lines += 1
            framed.refuse(shown, "cut off (no end of line): a write that did not finish")
    return framed


def _framing(raw: bytes) -> str | None:
    """Why a line is refused before parsing ('' for a blank line, skipped quietly), or None."""
    if len(raw) > MAX_LINE_BYTES:
        return f"over the limit of {MAX_LINE_BYTES} bytes"
    if not raw.strip():
        return ""
    try:
        raw.decode()
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start + 1})"
    return None

"""The one redaction layer: every string promptci stores, prints or publishes passes through here.

promptci runs in CI and publishes its results database, so a credential that reaches a
model id, a server's error message or a model's output must never reach disk, a log or
a PR comment. Redaction replaces what looks like a secret with ``***``:

- the user-info part of URLs (``https://user:sk-…@host``);
- credential query parameters (``?api_key=…``, ``token``, ``sig``, …);
- ``Authorization: Bearer …`` and ``api-key: …`` headers, as servers echo them;
- well-known token shapes (OpenAI ``sk-…``, GitHub ``ghp_…``, AWS access key ids);
- the values of environment variables whose names say they hold a secret
  (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``) and of the variables
  named by ``api_key_env`` settings, wherever they appear.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from pathlib import Path
from typing import Any, TextIO

MASK = "***"
_MIN_SECRET = 8  # shorter values would mask ordinary words

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(://)[^\s/@:]*(?::[^\s/@]*)?@"), r"\1" + MASK + "@"),
    (
        re.compile(
            r"(?i)([?&;](?:api[-_]?key|key|token|access[-_]?token|auth|secret|password|sig|signature|code)=)[^&#\s'\"]+"
        ),
        r"\1" + MASK,
    ),
    (  # the scheme word alone ("Authorization: Bearer {{ token }}") is no credential
        re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)[^\s\"',;}&]{8,}"),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)(\b(?:x-)?api[-_]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}&]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-" + MASK),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
]
_SECRET_NAME = re.compile(r"(?i)(api[-_]?key|token|secret|password|passwd|credential)")
_extra_names: set[str] = set()


def register_secret_variable(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret (an ``api_key_env``)."""
    _extra_names.add(name)


def _secrets() -> re.Pattern[str] | None:
    """One pattern for the secret values in the environment now, longest first."""
    values = tuple(
        sorted(
            {
                value
                for name, value in os.environ.items()
                if (name in _extra_names or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET
            },
            key=len,
            reverse=True,
        )
    )
    return _compile_values(values)


@functools.lru_cache(maxsize=8)
def _compile_values(values: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(_escape, values))) if values else None


def _escape(value: str) -> str:
    """``value`` as a literal pattern that Python's ``re`` and RE2 both read (``re.escape`` also
    escapes spaces and other characters that RE2 refuses to see escaped)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in value)


_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def redact(text: str) -> str:
    """``text`` with everything that looks like a credential replaced by ``***``."""
    return _redact(text, _secrets()) if text else text


def _redact(text: str, secrets: re.Pattern[str] | None) -> str:
    if secrets is not None:
        text = secrets.sub(MASK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def find_secret(text: str) -> tuple[int, int] | None:
    """The span of the first thing in ``text`` that the layer would mask, or None."""
    secrets = _secrets()
    spans = [m.span() for m in [secrets.search(text)] if m] if secrets is not None else []
    for pattern, _ in _PATTERNS:
        if match := pattern.search(text):
            spans.append((match.end(1) if match.re.groups else match.start(), match.end()))
    return min(spans) if spans else None


def rules() -> list[tuple[str, str]]:
    """The layer as (pattern, replacement) pairs in the syntax both Python's ``re`` and RE2 read,
    applied in order, so that SQL can redact in place (``regexp_replace``) what it copies in bulk."""
    secrets = _secrets()
    found = [(secrets.pattern, MASK)] if secrets is not None else []
    return found + [(p.pattern, r) for p, r in _PATTERNS]


def redact_any(value: Any) -> Any:
    """:func:`redact` applied to every string inside lists, tuples and dicts (a request payload,
    a statement's parameters), reading the environment's secrets once for all of them."""
    secrets = _secrets()

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _redact(item, secrets) if item else item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return type(item)(walk(v) for v in item)
        return item

    return walk(value)


def safe_host(base_url: str) -> str:
    """``base_url`` as it may appear in a model id: host, port and path, no credentials."""
    rest = base_url.split("://", 1)[-1]
    rest = rest.rsplit("@", 1)[-1] if "@" in rest.split("/", 1)[0] else rest
    return rest.split("?", 1)[0].split("#", 1)[0].rstrip("/")


def write(path: Path, text: str) -> None:
    """Write a report, export or PR body atomically, redacted."""
    from .yamlio import atomic_write

    atomic_write(path, redact(text))


def append_summary(path: str | Path, text: str) -> None:
    """Append to a GitHub job summary (``$GITHUB_STEP_SUMMARY``), redacted."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(redact(text))


# What a terminal would act on rather than show: C0 and C1 controls (escape sequences, carriage
# return, backspace), DEL, and the bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_STYLE = re.compile("\x1b\\[[0-9;]*m")  # colour and weight: what promptci's own output uses
_CURSOR = re.compile("\x1b\\[[0-9;?]*[A-Za-z]")  # and a live progress display, besides


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character :func:`inert` would write out (not a newline or a tab)."""
    return _CONTROL.search(text) is not None


def inert(text: str) -> str:
    """``text`` with every control character written out (``\\x1b``), newlines and tabs kept:
    a model's output or a file's text shown on a terminal cannot move the cursor, rewrite a
    line, set the title or hide what follows."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def clip(text: str, limit: int) -> str:
    """``text`` as a short display: redacted and made inert first, then cut to ``limit``
    characters with an ellipsis. Cutting first could leave a secret too short for its mask."""
    text = inert(redact(text))
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class RedactingStream:
    """A text stream that redacts what is written to it (the CLI's stdout and stderr), and
    makes it inert (:func:`inert`), on a terminal and off it. The escape sequences promptci
    styles its own output with pass: colour, and with ``live`` (a progress display) cursor moves.

    A reader that stops early (``promptci compare | head -2``) closes the pipe; what is
    written after that is dropped, so the command ends with its own exit code, not a
    broken pipe's.
    """

    def __init__(self, stream: TextIO, *, live: bool = False) -> None:
        self._stream = stream
        self._kept = _CURSOR if live else _STYLE
        self.closed_pipe = False

    def live(self) -> RedactingStream:
        """The same stream for a live progress display, whose cursor moves pass."""
        return RedactingStream(self._stream, live=True)

    def _inert(self, text: str) -> str:
        if "\x1b" not in text:
            return inert(text) if _CONTROL.search(text) else text
        parts, at = [], 0
        for kept in self._kept.finditer(text):
            parts += [inert(text[at : kept.start()]), kept.group()]
            at = kept.end()
        return "".join([*parts, inert(text[at:])])

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self._stream.write(self._inert(redact(text)))
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._closed()

    def _closed(self) -> None:
        self.closed_pipe = True
        # The interpreter flushes the real stream at exit: point it somewhere that takes it.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

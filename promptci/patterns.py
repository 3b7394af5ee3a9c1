"""Regular expressions written by users, run over model output in linear time.

A suite's ``regex`` scorer, a choice scorer's ``answer_pattern``, a pipeline step's ``parse:``
rule and ``--filter`` are all written by whoever wrote the pull request, and run over text that a
model wrote. Python's ``re`` backtracks: ``^(a+)+$`` over ``aaaa…!`` never returns. These
patterns run on RE2 instead, whose time is linear in the text; what RE2 cannot run
(backreferences, lookaround) is refused where the pattern is read, so lint reports it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_PATTERN = 1000  # characters
_MAX_PROGRAM = 8 << 20  # bytes of compiled automaton RE2 may build for one pattern


@lru_cache(maxsize=256)
def compile_user(pattern: str, ignore_case: bool = False) -> Any:
    """``pattern`` compiled by RE2 (it has ``search``, ``finditer``, ``groups`` and
    ``groupindex`` as :mod:`re` does); :class:`ValueError` saying why where RE2 cannot run it."""
    import re2

    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"a pattern is at most {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    options.max_mem = _MAX_PROGRAM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "invalid perl operator" in reason or "invalid escape sequence" in reason:
            reason += " (lookaround and backreferences cannot run in linear time)"
        raise ValueError(f"cannot run this pattern: {reason}") from None


def check(pattern: str) -> str:
    """``pattern`` where RE2 runs it; :class:`ValueError` otherwise (for pydantic validators)."""
    compile_user(pattern)
    return pattern

"""Scoring a reply that calls tools against the calls a case expects.

The reply is stored as :func:`promptci.providers.replies.encode` writes it. Arguments that do not
parse are a wrong answer with its reason, never an error of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..providers.replies import MAX_CALLS, Call, call_text, decode
from ..redact import clip


def expected_calls(expected: Any) -> list[tuple[str, dict[str, Any] | None]] | None:
    """A case's expected calls: ``{name, arguments}``, a list of them, or a bare tool name; None
    where the case expects no call."""
    if expected is None or expected == []:
        return None
    items = expected if isinstance(expected, list) else [expected]
    found: list[tuple[str, dict[str, Any] | None]] = []
    for item in items:
        if isinstance(item, str):
            found.append((item, None))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            arguments = item.get("arguments")
            found.append((item["name"], dict(arguments) if isinstance(arguments, Mapping) else None))
    return found or None


def score_calls(
    output: str | None, expected: Any, arguments: str, ordered: bool, checks: Mapping[str, Any]
) -> tuple[float, str | None]:
    """F1 over the calls ``output`` makes against those ``expected``, and why it is below 1."""
    reply = decode(output)
    calls = reply.calls if reply is not None else ()
    wanted = expected_calls(expected)
    if wanted is None:
        return (1.0, None) if not calls else (0.0, f"called {_names(calls)} where no call was expected")
    if not calls:
        return 0.0, "called no tool"
    got: list[tuple[str, dict[str, Any] | None]] = []
    reasons: list[str] = []
    for call in calls[:MAX_CALLS]:
        parsed, why = call.arguments()
        if why:
            reasons.append(why)
        got.append((call.name, parsed))
    matched = _matched(wanted, got, arguments, ordered, checks)
    precision, recall = matched / len(got), matched / len(wanted)
    f1 = 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)
    if f1 < 1.0:
        reasons.append(f"expected {_calls_text(wanted, '…')}; called {_calls_text(got, 'invalid arguments')}")
    return f1, "; ".join(reasons) or None


def _matched(
    wanted: list[tuple[str, dict[str, Any] | None]],
    got: list[tuple[str, dict[str, Any] | None]],
    arguments: str,
    ordered: bool,
    checks: Mapping[str, Any],
) -> int:
    if ordered:
        return sum(1 for w, g in zip(wanted, got, strict=False) if _same(w, g, arguments, checks))
    free = list(got)
    count = 0
    for w in wanted:
        hit = next((i for i, g in enumerate(free) if _same(w, g, arguments, checks)), None)
        if hit is not None:
            free.pop(hit)
            count += 1
    return count


def _same(
    want: tuple[str, dict[str, Any] | None],
    got: tuple[str, dict[str, Any] | None],
    mode: str,
    checks: Mapping[str, Any],
) -> bool:
    (name, expected), (called, given) = want, got
    if name != called:
        return False
    if mode == "ignore" or expected is None:
        return True
    if given is None:
        return False
    if mode == "exact" and set(given) != set(expected):
        return False
    return all(key in given and same_value(expected[key], given[key], checks.get(key)) for key in expected)


def same_value(expected: Any, given: Any, check: Any) -> bool:
    """Whether ``given`` matches ``expected``: within a check's ``tolerance``, containing it, or equal."""
    tolerance = getattr(check, "tolerance", None)
    if tolerance is not None:
        try:
            return bool(abs(float(given) - float(expected)) <= tolerance)
        except (TypeError, ValueError, OverflowError):
            return False
    if getattr(check, "contains", False):
        return str(expected).casefold() in str(given).casefold()
    return bool(given == expected)


def _names(calls: Sequence[Call]) -> str:
    return ", ".join(c.name for c in calls[:5]) + (f" and {len(calls) - 5} more" if len(calls) > 5 else "")


def _calls_text(calls: list[tuple[str, dict[str, Any] | None]], missing: str) -> str:
    return ", ".join(clip(call_text(name, arguments, missing), 100) for name, arguments in calls)

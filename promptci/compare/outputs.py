"""What changed between two outputs of one case, where they are structured: tool calls by name and
argument, JSON objects field by field. Plain text has no such diff (compare shows both sides)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..providers.replies import Call, decode
from ..redact import clip

MAX_PARTS = 6  # changes listed for one case; the rest are counted


def change(base: str | None, head: str | None) -> str | None:
    """``base`` → ``head`` in a line: ``set_timer: minutes 5 → 50``, ``get_weather → set_timer``,
    ``set_timer: arguments valid → not JSON``, ``city 'Oslo' → 'Bergen'; +zip``; None when
    neither side is a tool reply or a JSON object, or nothing structured differs."""
    calls = decode(base), decode(head)
    if calls[0] is not None or calls[1] is not None:
        before = calls[0].calls if calls[0] is not None else ()
        after = calls[1].calls if calls[1] is not None else ()
        return _calls(before, after)
    objects = _object(base), _object(head)
    if objects[0] is None or objects[1] is None:
        return None
    return _fields(objects[0], objects[1]) or None


def _calls(before: tuple[Call, ...], after: tuple[Call, ...]) -> str | None:
    if not before and not after:
        return None
    if not before:
        return "no call → " + ", ".join(c.name for c in after)
    if not after:
        return ", ".join(c.name for c in before) + " → no call"
    parts = []
    for i in range(max(len(before), len(after))):
        if i >= len(before) or i >= len(after):
            extra = after[i] if i < len(after) else before[i]
            parts.append(("+" if i < len(after) else "-") + extra.name)
            continue
        a, b = before[i], after[i]
        if a.name != b.name:
            parts.append(f"{a.name} → {b.name}")
            continue
        (old, _), (new, new_why) = a.arguments(), b.arguments()
        if old is None or new is None:
            if old is not None:
                why = (new_why or "").removeprefix(f"{a.name}: ")
                parts.append(f"{a.name}: arguments valid → invalid ({clip(why, 60)})")
            elif new is not None:
                parts.append(f"{a.name}: arguments invalid → valid")
            continue
        if diff := _fields(old, new):
            parts.append(f"{a.name}: {diff}")
    return "; ".join(parts) or None


def _fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The fields that differ: ``name old → new``, ``+added``, ``-removed``."""
    parts = []
    for key in list(old) + [k for k in new if k not in old]:
        name = clip(" ".join(str(key).split()) or repr(key), 40)
        if key not in new:
            parts.append(f"-{name}")
        elif key not in old:
            parts.append(f"+{name}={_value(new[key])}")
        elif old[key] != new[key] or type(old[key]) is not type(new[key]):
            parts.append(f"{name} {_value(old[key])} → {_value(new[key])}")
    if len(parts) > MAX_PARTS:
        parts = [*parts[:MAX_PARTS], f"{len(parts) - MAX_PARTS} more"]
    return ", ".join(parts)


def _value(value: Any) -> str:
    return clip(repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, ensure_ascii=False), 40)


def _object(text: str | None) -> dict[str, Any] | None:
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

"""What every registry shares: built-ins and plugins register alike, plugins through entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

K = TypeVar("K")
V = TypeVar("V")


def registrar(table: dict[K, V]) -> Callable[[K], Callable[[V], V]]:
    """``register = registrar(TABLE)``; then ``@register(key)`` puts what it decorates into ``TABLE``."""

    def register(key: K) -> Callable[[V], V]:
        def wrap(value: V) -> V:
            table[key] = value
            return value

        return wrap

    return register


def entry_points(group: str) -> dict[str, EntryPoint]:
    """The installed entry points of ``group``, by name; none is loaded."""
    from importlib.metadata import entry_points as installed

    return {ep.name: ep for ep in installed(group=group)}

"""How Ctrl-C and SIGTERM reach promptci.

Both become ``KeyboardInterrupt``, which the CLI maps to exit code 130 after the
running command has recorded what it finished. duckdb checks for signals while a
statement runs and abandons the statement ("Query interrupted") when a handler
raises, so the store's methods hold the signals until their statement is done.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM (a CI job cancelled, a container stopped) interrupts like
    Ctrl-C; then the handler that was there before is back, so that a host process, a test runner
    say, keeps its own way of stopping."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver the first one.

    Only the main thread receives signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[signal.Signals, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append((signal.Signals(signum), frame))

    previous = {s: signal.signal(s, hold) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            signum, frame = caught[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler != signal.SIG_IGN:
                os.kill(os.getpid(), signum)


def uninterrupted(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``method`` with the signals held (see ``signals_held``)."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with signals_held():
            return method(*args, **kwargs)

    return wrapper


def is_abandoned_query(exc: Exception) -> bool:
    """Whether ``exc`` is duckdb giving up a statement that a signal arrived in: a read
    outside the store's methods, which hold signals only around their own statements."""
    return type(exc).__name__ == "InterruptException" or (type(exc) is RuntimeError and str(exc) == "Query interrupted")

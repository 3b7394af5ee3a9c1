"""Live progress on stderr for evals and optimizations, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any


def _live(stream: Any) -> Any:
    """stderr as a live display may write it: still redacted, its control characters escaped, but
    for the cursor moves the display itself makes."""
    from ..redact import RedactingStream

    return stream.live() if isinstance(stream, RedactingStream) else stream


QUIET = [False]  # -q: no progress at all


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class _Bar:
    """A started rich progress bar (description, bar, n/total, then ``clock``) on a terminal, else nothing."""

    clock = "remaining"

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if sys.stderr.isatty() and not QUIET[0]:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            clock = TimeRemainingColumn() if self.clock == "remaining" else TimeElapsedColumn()
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                clock,
                console=Console(file=_live(sys.stderr)),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()


class EvalProgress(_Bar):
    """A live bar on a terminal; off one (CI), a plain line every ``every`` seconds: cases done,
    the rate and the time left. The rate is timed from the first case done, so loading the model
    does not count as slow cases."""

    def __init__(self, every: float = 10.0, clock: Callable[[], float] | None = None, note: str | None = None) -> None:
        import time

        super().__init__()
        self._note = note  # said once the run has started (its estimate), not before an early error
        self._every = every
        self._clock = clock or time.monotonic
        self._total = self._done = self._cached = self._first = 0
        self._started = self._last = 0.0
        self._timing = False

    def start(self, total: int, cached: int) -> None:
        if self._note and not QUIET[0]:
            print(self._note, file=sys.stderr, flush=True)
        self._total, self._cached, self._started = total, cached, self._clock()
        self._last = self._started
        if self._progress is not None:
            self._task = self._progress.add_task(f"eval ({cached} cached)", total=total)
        elif not QUIET[0]:
            print(f"eval: {total} cases to run ({cached} cached)", file=sys.stderr, flush=True)

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._task is not None:
            self._progress.advance(self._task, n)
            return
        now = self._clock()
        if not self._timing:  # the first cases done: the clock for the rate starts here
            self._timing, self._first, self._started = True, self._done, now
            return
        if self._progress is None and not QUIET[0] and now - self._last >= self._every and self._done < self._total:
            self._last = now
            rate = (self._done - self._first) / max(now - self._started, 1e-9)
            left = (self._total - self._done) / rate if rate else 0
            line = f"eval: {self._done} of {self._total} cases, {rate:.1f}/s, about {_duration(left)} left"
            print(line, file=sys.stderr, flush=True)

    def status(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=text)


class OptimizeProgress(_Bar):
    """The step, the best score so far and the budget used: a live bar on a terminal, else a line per step."""

    clock = "elapsed"

    def __init__(self, method: str, budget: dict[str, float]) -> None:
        super().__init__()
        self.method = method
        self.budget = budget

    def __enter__(self) -> OptimizeProgress:
        super().__enter__()
        if self._progress is not None:
            self._task = self._progress.add_task(f"{self.method}: scoring the initial instruction", total=None)
        return self

    def phase(self, text: str) -> None:
        """Work before the first step: loading the model, scoring the initial instruction."""
        line = f"{self.method}: {text}"
        if self._progress is not None:
            self._progress.update(self._task, description=line)
        elif not QUIET[0]:
            print(line, file=sys.stderr, flush=True)

    def step(self, step: int, total: int, best: float, usage: Any, note: str, split: str = "dev") -> None:
        used = f"{usage.calls} calls, {usage.tokens} tokens"
        if "calls" in self.budget:
            used = f"{usage.calls}/{self.budget['calls']:g} calls, {usage.tokens} tokens"
        elif "tokens" in self.budget:
            used = f"{usage.calls} calls, {usage.tokens}/{self.budget['tokens']:g} tokens"
        elif "cost" in self.budget:
            used = f"{usage.calls} calls, cost {usage.cost:.4f}/{self.budget['cost']:g}"
        text = f"{self.method} step {step}/{total} · best on {split} {best:.3f} · {used} · {note}"
        if self._progress is not None:
            self._progress.update(self._task, description=text, completed=step, total=total)
        elif not QUIET[0]:
            print(text, file=sys.stderr, flush=True)


class LoadProgress(_Bar):
    """Bytes read of each log being loaded; off a terminal, a plain line every few seconds."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__()
        self._tasks: dict[Any, Any] = {}
        self._every, self._last = every, 0.0

    def __call__(self, log: Any, done: int, total: int) -> None:
        import time

        from ..redact import inert

        if self._progress is not None:
            if log not in self._tasks:
                self._tasks[log] = self._progress.add_task(f"loading {inert(str(log))}", total=max(total, 1))
            self._progress.update(self._tasks[log], completed=min(done, total))
        elif not QUIET[0] and time.monotonic() - self._last >= self._every:
            self._last = time.monotonic()
            print(f"loading {log}: {done / 2**20:.0f} of {total / 2**20:.0f} MiB", file=sys.stderr, flush=True)

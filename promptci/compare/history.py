"""Score history of a prompt: one point per prompt version (content hash) per suite and model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..store import Store


@dataclass(frozen=True)
class Point:
    suite: str
    prompt: str
    prompt_hash: str
    commit: str | None
    model_id: str
    first_seen: datetime
    cases: int  # scored at their latest result
    score: float | None
    pass_rate: float | None
    errors: int = 0  # cases whose latest result is an error
    total: int = 0  # the most cases any version of this suite was run on

    @property
    def partial(self) -> bool:
        """Run on fewer of the suite's cases than another version was (a sample, a filter)."""
        return self.cases + self.errors < self.total


def history(store: Store, prompt: str | None = None, suite: str | None = None) -> list[Point]:
    """Mean score and pass rate of every stored prompt version, oldest first, per suite and model,
    each case at its latest result."""
    rows = store.history_rows(prompt, suite)
    return [Point(*row) for row in rows]


BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """Scores in [0, 1] as block characters; a missing score is a space."""
    return "".join(" " if v is None else BARS[min(len(BARS) - 1, int(v * len(BARS)))] for v in values)

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
    cases: int
    score: float | None
    pass_rate: float | None


def history(store: Store, prompt: str | None = None, suite: str | None = None) -> list[Point]:
    """Mean score and pass rate of every stored prompt version, oldest first, per suite and model."""
    where, params = ["error IS NULL"], []
    if prompt:
        where.append("prompt = ?")
        params.append(prompt)
    if suite:
        where.append("suite = ?")
        params.append(suite)
    rows = store.db.execute(
        f"""
        SELECT suite, prompt, prompt_hash, arg_min(prompt_commit, created_at), model_id, min(created_at),
               count(DISTINCT case_id), avg(score), avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END)
        FROM results WHERE {" AND ".join(where)}
        GROUP BY suite, prompt, prompt_hash, model_id
        ORDER BY suite, prompt, model_id, min(created_at)
        """,
        params,
    ).fetchall()
    return [Point(*row) for row in rows]


BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """Scores in [0, 1] as block characters; a missing score is a space."""
    return "".join(" " if v is None else BARS[min(len(BARS) - 1, int(v * len(BARS)))] for v in values)

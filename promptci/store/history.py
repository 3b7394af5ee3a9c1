"""Score history: one row per stored prompt version, suite and model."""

from __future__ import annotations

from typing import Any

from .core import Core

# Filters are bound as parameters; NULL means "any".
_HISTORY = """
SELECT suite, prompt, prompt_hash, arg_min(prompt_commit, created_at), model_id, min(created_at),
       count(DISTINCT case_id), avg(score), avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END)
FROM results
WHERE error IS NULL AND (prompt = $prompt OR $prompt IS NULL) AND (suite = $suite OR $suite IS NULL)
GROUP BY suite, prompt, prompt_hash, model_id
ORDER BY suite, prompt, model_id, min(created_at)
"""


class HistoryQueries(Core):
    def history_rows(self, prompt: str | None = None, suite: str | None = None) -> list[tuple[Any, ...]]:
        """(suite, prompt, prompt hash, first commit, model, first seen, cases, mean score, pass rate)
        for every stored prompt version, oldest first, per suite and model."""
        return list(self.db.execute(_HISTORY, {"prompt": prompt, "suite": suite}).fetchall())

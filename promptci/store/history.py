"""Score history: one row per stored prompt version, suite and model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..interrupts import uninterrupted
from .core import Core
from .records import now

# A version's score is over the latest result of each of its cases (each repeat), so that a later
# sampled or partial run never moves it; a case whose latest result is an error counts as an error.
# Filters are bound as parameters; NULL means "any".
_HISTORY = """
WITH rows AS (
    SELECT * FROM results WHERE (prompt = $prompt OR $prompt IS NULL) AND (suite = $suite OR $suite IS NULL)
), latest AS (
    SELECT suite, prompt, prompt_hash, model_id, case_id,
           arg_max(score, created_at) AS score, arg_max(passed, created_at) AS passed,
           arg_max(error IS NOT NULL, created_at) AS errored
    FROM rows GROUP BY suite, prompt, prompt_hash, model_id, case_id, repeat_index
), cases AS (
    SELECT suite, prompt, prompt_hash, model_id, case_id, avg(score) AS score,
           avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END) AS passed, bool_and(errored) AS errored
    FROM latest GROUP BY ALL
), versions AS (
    SELECT suite, prompt, prompt_hash, model_id,
           count(*) FILTER (WHERE NOT errored) AS cases, avg(score) FILTER (WHERE NOT errored) AS score,
           avg(passed) FILTER (WHERE NOT errored) AS pass_rate, count(*) FILTER (WHERE errored) AS errors,
           count(*) AS seen
    FROM cases GROUP BY ALL
), first AS (
    SELECT suite, prompt, prompt_hash, model_id, arg_min(prompt_commit, created_at) AS commit_sha,
           min(created_at) AS first_seen
    FROM rows GROUP BY ALL
)
SELECT v.suite, v.prompt, v.prompt_hash, f.commit_sha, v.model_id, f.first_seen, v.cases, v.score, v.pass_rate,
       v.errors, max(v.seen) OVER (PARTITION BY v.suite, v.model_id) AS total
FROM versions v JOIN first f USING (suite, prompt, prompt_hash, model_id)
ORDER BY v.suite, v.prompt, v.model_id, f.first_seen
"""


# Per stored prompt version of one suite: each case's majority pass and mean score over its latest
# scored repeats, and when the version was first seen; what sample-size planning pairs versions by.
_VERSION_CASES = """
WITH rows AS (
    SELECT * FROM results WHERE suite = $suite AND error IS NULL AND score IS NOT NULL
), latest AS (
    SELECT prompt, prompt_hash, model_id, case_id,
           arg_max(score, created_at) AS score, arg_max(passed, created_at) AS passed
    FROM rows GROUP BY prompt, prompt_hash, model_id, case_id, repeat_index
), cases AS (
    SELECT prompt, prompt_hash, model_id, case_id, avg(score) AS score,
           2 * count(*) FILTER (WHERE passed) >= count(*) AS passed
    FROM latest GROUP BY ALL
), first AS (
    SELECT prompt, prompt_hash, model_id, min(created_at) AS first_seen FROM rows GROUP BY ALL
)
SELECT c.prompt, c.model_id, c.prompt_hash, f.first_seen, c.case_id, c.score, c.passed
FROM cases c JOIN first f USING (prompt, prompt_hash, model_id)
ORDER BY c.prompt, c.model_id, f.first_seen, c.case_id
"""


class HistoryQueries(Core):
    def version_cases(self, suite: str) -> list[tuple[Any, ...]]:
        """(prompt, model, prompt hash, first seen, case id, score, passed) of every stored version of
        ``suite``'s prompts, oldest version first; each case at its latest scored repeats."""
        return list(self.db.execute(_VERSION_CASES, {"suite": suite}).fetchall())

    def history_rows(self, prompt: str | None = None, suite: str | None = None) -> list[tuple[Any, ...]]:
        """(suite, prompt, prompt hash, first commit, model, first seen, cases scored, mean score, pass
        rate, cases errored, the most cases any version of the suite has) for every stored prompt
        version, oldest first, per suite and model; each case counted at its latest result."""
        return list(self.db.execute(_HISTORY, {"prompt": prompt, "suite": suite}).fetchall())

    def newest_output(self, suite: str, case_id: str) -> str | None:
        """The newest answer stored for one case of ``suite`` (its first repeat), errors aside."""
        row = self.db.execute(
            "SELECT output FROM results WHERE suite = ? AND case_id = ? AND error IS NULL AND output IS NOT NULL"
            " ORDER BY created_at DESC, repeat_index LIMIT 1",
            [suite, case_id],
        ).fetchone()
        return None if row is None else str(row[0])

    @uninterrupted
    def add_judge_check(self, values: Sequence[Any]) -> None:
        """(suite, scorer, judge hash, grades hash, n, ordinal, κ, accuracy, self-agreement, repeats)."""
        self._write("INSERT INTO judge_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [*values, now()])

    def judge_checks(self) -> dict[str, tuple[Any, ...]]:
        """Per suite, its newest judge check: (scorer, judge hash, grades hash, n, κ, checked at)."""
        rows = self.db.execute(
            "SELECT suite, scorer, judge_hash, grades_hash, n, kappa, checked_at FROM judge_checks"
            " QUALIFY row_number() OVER (PARTITION BY suite ORDER BY checked_at DESC) = 1"
        ).fetchall()
        return {str(r[0]): tuple(r[1:]) for r in rows}

    def past_usage(
        self, suite: str, prompt: str, model_id: str, limit: int = 5_000
    ) -> tuple[list[int], list[tuple[float, int]]]:
        """The output tokens of the newest answers ``prompt`` gave on ``suite`` with ``model_id``
        (new calls only, not cached ones), and per past run that made new calls on that model,
        its seconds and its new calls."""
        outputs = self.db.execute(
            "SELECT tokens_out FROM results WHERE suite = ? AND prompt = ? AND model_id = ? AND NOT cached"
            " AND error IS NULL AND tokens_out IS NOT NULL ORDER BY created_at DESC LIMIT ?",
            [suite, prompt, model_id, limit],
        ).fetchall()
        runs = self.db.execute(
            "SELECT epoch(any_value(r.ended_at)) - epoch(any_value(r.started_at)), count(*) FROM results x"
            " JOIN runs r ON r.id = x.run_id WHERE x.model_id = ? AND NOT x.cached AND r.ended_at IS NOT NULL"
            " GROUP BY x.run_id ORDER BY any_value(r.started_at) DESC LIMIT 20",
            [model_id],
        ).fetchall()
        return [int(r[0]) for r in outputs], [(float(r[0]), int(r[1])) for r in runs if r[1] and r[0] is not None]

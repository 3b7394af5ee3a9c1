"""Paged reads for the viewer: runs, a run's cases with filters, a case's trace, optimizations.

Every query is bounded: a page is at most :data:`MAX_PAGE` rows, and counts come from the
same filters, so a page over a database of any size costs one indexed scan of the run asked
for, never a read of every result into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .core import Core
from .records import STEP_COLUMNS, StepRow

MAX_PAGE = 200
CASE_FILTERS = ("all", "failed", "errored", "passed")
Version = tuple[str, str, str, str]  # prompt, suite, model, prompt hash


@dataclass(frozen=True)
class Page:
    """Rows ``offset`` to ``offset + len(rows)`` of ``total``."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def _bounded(offset: int, limit: int) -> tuple[int, int]:
    return max(0, offset), max(1, min(limit, MAX_PAGE))


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


_RUN_FILTER = " FROM runs WHERE $prompt IS NULL OR id IN (SELECT run_id FROM results WHERE prompt = $prompt)"
_RUN_COUNT = "SELECT count(*)" + _RUN_FILTER
# The page of runs first, then only their results aggregated.
_RUNS = (
    "WITH page AS (SELECT *" + _RUN_FILTER + " ORDER BY started_at DESC, id LIMIT $limit OFFSET $offset)"
    " SELECT r.id, r.started_at, r.ended_at, r.git_commit, r.branch, r.dirty, r.command, r.status,"
    " count(x.case_id) AS results, count(x.error) AS errors, avg(x.score) AS score,"
    " string_agg(DISTINCT x.suite, ', ' ORDER BY x.suite) AS suites,"
    " string_agg(DISTINCT x.prompt, ', ' ORDER BY x.prompt) AS prompts"
    " FROM page r LEFT JOIN results x ON x.run_id = r.id GROUP BY ALL ORDER BY r.started_at DESC, r.id"
)

_CASE_WHERE = """
run_id = $run AND ($suite IS NULL OR suite = $suite) AND ($prompt IS NULL OR prompt = $prompt)
AND ($status = 'all' OR ($status = 'errored' AND error IS NOT NULL)
     OR ($status = 'failed' AND error IS NULL AND NOT coalesce(passed, false))
     OR ($status = 'passed' AND coalesce(passed, false)))
AND ($query IS NULL OR contains(lower(coalesce(case_name, '') || ' ' || coalesce(input, '') || ' '
     || coalesce(output, '') || ' ' || coalesce(expected, '') || ' ' || coalesce(error, '')), lower($query)))
"""


class BrowseQueries(Core):
    def runs_page(self, offset: int = 0, limit: int = 50, prompt: str | None = None) -> Page:
        """Runs, newest first, each with its result count, errors, mean score, suites and prompts."""
        offset, limit = _bounded(offset, limit)
        (total,) = self.db.execute(_RUN_COUNT, {"prompt": prompt}).fetchone()
        cursor = self.db.execute(_RUNS, {"prompt": prompt, "limit": limit, "offset": offset})
        return Page(_dicts(cursor), int(total), offset, limit)

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        cursor = self.db.execute(
            "SELECT id, started_at, ended_at, git_commit, branch, dirty, command, status, promptci_version, estimate"
            " FROM runs WHERE id = ?",
            [run_id],
        )
        rows = _dicts(cursor)
        return rows[0] if rows else None

    def run_totals(self, run_id: str) -> list[dict[str, Any]]:
        """Per suite, prompt and model of a run: results, scored, errored, passed, mean score."""
        cursor = self.db.execute(
            "SELECT suite, prompt, model_id, count(*) AS results, count(*) FILTER (WHERE error IS NULL) AS scored,"
            " count(error) AS errors, count(*) FILTER (WHERE passed) AS passed,"
            " avg(score) FILTER (WHERE error IS NULL) AS score, sum(tokens_in) AS tokens_in,"
            " sum(tokens_out) AS tokens_out, sum(cost) AS cost,"
            " sum(tokens_in) FILTER (WHERE NOT cached) AS new_tokens_in,"
            " sum(tokens_out) FILTER (WHERE NOT cached) AS new_tokens_out,"
            " count(*) FILTER (WHERE NOT cached AND tokens_in IS NOT NULL) AS new_calls,"
            " sum(cost) FILTER (WHERE NOT cached) AS new_cost"
            " FROM results WHERE run_id = ? GROUP BY ALL ORDER BY suite, prompt, model_id",
            [run_id],
        )
        return _dicts(cursor)

    def run_errors(self, run_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """A run's distinct error messages, most frequent first."""
        cursor = self.db.execute(
            "SELECT error, count(*) AS n FROM results WHERE run_id = ? AND error IS NOT NULL"
            " GROUP BY error ORDER BY n DESC, error LIMIT ?",
            [run_id, limit],
        )
        return _dicts(cursor)

    def case_page(
        self,
        run_id: str,
        *,
        offset: int = 0,
        limit: int = 50,
        status: str = "all",
        query: str | None = None,
        suite: str | None = None,
        prompt: str | None = None,
    ) -> Page:
        """One page of a run's results, in case order, with the filters applied before the count."""
        offset, limit = _bounded(offset, limit)
        params: dict[str, Any] = {
            "run": run_id,
            "suite": suite,
            "prompt": prompt,
            "status": status if status in CASE_FILTERS else "all",
            "query": query or None,
        }
        (total,) = self.db.execute("SELECT count(*) FROM results WHERE " + _CASE_WHERE, params).fetchone()
        cursor = self.db.execute(
            "SELECT suite, prompt, case_id, case_name, repeat_index, model_id, input, expected, output, score,"
            " passed, error, note, latency_ms, tokens_in, tokens_out, cached,"
            " EXISTS (SELECT 1 FROM steps s WHERE s.run_id = results.run_id AND s.case_id = results.case_id"
            "   AND s.suite = results.suite AND s.prompt = results.prompt) AS traced"
            " FROM results WHERE "
            + _CASE_WHERE
            + " ORDER BY suite, prompt, case_name NULLS LAST, case_id, repeat_index LIMIT $limit OFFSET $offset",
            {**params, "limit": limit, "offset": offset},
        )
        return Page(_dicts(cursor), int(total), offset, limit)

    def case_trace(self, run_id: str, suite: str, prompt: str, case_id: str) -> list[StepRow]:
        """A pipeline case's steps in one run, every repeat, in order."""
        rows = self.db.execute(
            "SELECT " + ", ".join(STEP_COLUMNS) + " FROM steps"
            " WHERE run_id = ? AND suite = ? AND prompt = ? AND case_id = ? ORDER BY repeat_index, step_index",
            [run_id, suite, prompt, case_id],
        ).fetchall()
        return [StepRow(**dict(zip(STEP_COLUMNS, r, strict=True))) for r in rows]

    def case_result(self, run_id: str, suite: str, prompt: str, case_id: str) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            "SELECT case_id, case_name, repeat_index, model_id, input, expected, output, score, passed, error, note"
            " FROM results WHERE run_id = ? AND suite = ? AND prompt = ? AND case_id = ? ORDER BY repeat_index",
            [run_id, suite, prompt, case_id],
        )
        return _dicts(cursor)

    def version_errors(self, prompt: str | None = None, limit: int = 5) -> dict[Version, list[dict[str, Any]]]:
        """Per (prompt, suite, model, prompt version): the error messages of cases whose latest
        result is an error, most frequent first (as the history counts them)."""
        rows = self.db.execute(
            "WITH latest AS (SELECT prompt, suite, model_id, prompt_hash, arg_max(error, created_at) AS error"
            "  FROM results WHERE $prompt IS NULL OR prompt = $prompt"
            "  GROUP BY prompt, suite, model_id, prompt_hash, case_id, repeat_index)"
            " SELECT prompt, suite, model_id, prompt_hash, error, count(*) AS n FROM latest WHERE error IS NOT NULL"
            " GROUP BY ALL ORDER BY n DESC, error",
            {"prompt": prompt},
        ).fetchall()
        found: dict[Version, list[dict[str, Any]]] = {}
        for prompt_, suite, model, version, error, n in rows:
            listed = found.setdefault((prompt_, suite, model, version), [])
            if len(listed) < limit:
                listed.append({"error": error, "n": n})
        return found

    def dev_frontier(self, opt_id: str) -> list[dict[str, Any]]:
        """Each pool member of an optimization (accepted, scored on dev): its dev score, the dev
        cases it is best on and those it alone is best on; best first."""
        cursor = self.db.execute(
            "WITH c AS (SELECT t.step, t.candidate, any_value(t.text) AS text, any_value(t.dev_score) AS dev,"
            "   r.case_id, avg(r.score) AS s"
            "   FROM trajectory t JOIN results r ON r.run_id = t.dev_run"
            "   WHERE t.optimization_id = ? AND t.accepted AND r.error IS NULL"
            "   GROUP BY t.step, t.candidate, r.case_id),"
            " m AS (SELECT case_id, max(s) AS top FROM c GROUP BY case_id),"
            " n AS (SELECT c.case_id, count(*) AS at_top FROM c JOIN m USING (case_id) WHERE c.s >= m.top GROUP BY 1)"
            " SELECT c.step, c.candidate, any_value(c.text) AS text, any_value(c.dev) AS dev,"
            "   count(*) FILTER (WHERE c.s >= m.top) AS best_on,"
            "   count(*) FILTER (WHERE c.s >= m.top AND n.at_top = 1) AS alone, count(*) AS cases"
            " FROM c JOIN m USING (case_id) JOIN n USING (case_id)"
            " GROUP BY c.step, c.candidate ORDER BY dev DESC NULLS LAST, c.step, c.candidate",
            [opt_id],
        )
        return _dicts(cursor)

    def prompt_runs(self) -> list[dict[str, Any]]:
        """Per stored prompt (or pipeline): its suites, runs, results and the last time it ran."""
        cursor = self.db.execute(
            "SELECT prompt, string_agg(DISTINCT suite, ', ' ORDER BY suite) AS suites,"
            " count(DISTINCT run_id) AS runs, count(*) AS results, max(created_at) AS last_run"
            " FROM results GROUP BY prompt ORDER BY prompt"
        )
        return _dicts(cursor)

    def optimizations_page(self, offset: int = 0, limit: int = 50, prompt: str | None = None) -> Page:
        offset, limit = _bounded(offset, limit)
        params = {"prompt": prompt}
        where = " FROM optimizations WHERE $prompt IS NULL OR prompt = $prompt"
        (total,) = self.db.execute("SELECT count(*)" + where, params).fetchone()
        cursor = self.db.execute(
            "SELECT id, started_at, ended_at, prompt, suite, method, status, test_before, test_after, p_value,"
            " calls, branch, pr_url, best IS NOT NULL AND best <> initial AS changed"
            + where
            + " ORDER BY started_at DESC, id LIMIT $limit OFFSET $offset",
            {**params, "limit": limit, "offset": offset},
        )
        return Page(_dicts(cursor), int(total), offset, limit)

"""The comparison's SQL: each side's results in a temp table of the connection, then the two
sides paired case by case. :mod:`promptci.compare` judges what these queries return.

Side tables are named by the caller (``side_0``, ``side_1_held``); :func:`.core.sql` checks that a
name is a plain identifier before it goes into a statement, and every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core import Core
from .records import placeholders, sql

SIDE_COLUMNS = (
    "suite",
    "prompt",
    "prompt_hash",
    "case_id",
    "case_name",
    "repeat_index",
    "model_id",
    "params_hash",
    "suite_hash",
    "score",
    "passed",
    "error",
    "output",
    "run_id",
)
_COLS = ", ".join(SIDE_COLUMNS)

# Per side, one row per case: the mean of scored repeats, passed when most scored repeats
# pass (NULL when none was scored), and the number of repeats.
_SIDE = """
SELECT suite, prompt, case_id, any_value(case_name) AS name,
       avg(score) FILTER (WHERE error IS NULL AND score IS NOT NULL) AS score,
       CASE WHEN count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL) = 0 THEN NULL
            ELSE 2 * count(*) FILTER (WHERE error IS NULL AND passed) >=
                 count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL) END AS passed,
       count(*) AS reps,
       count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL AND passed) AS passes,
       count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL) AS scored
FROM $table GROUP BY suite, prompt, case_id
"""
# A case is flaky when its scored repeats on one side disagree on pass/fail.
FLAKY = "((b_passes > 0 AND b_passes < b_scored) OR (h_passes > 0 AND h_passes < h_scored))"
_PAIR = (
    "CREATE OR REPLACE TEMP TABLE cmp AS WITH b AS ("
    + _SIDE.replace("$table", "$base")
    + "), h AS ("
    + _SIDE.replace("$table", "$head")
    + ") SELECT suite, prompt, case_id, coalesce(b.name, h.name) AS name, b.score AS bs, h.score AS hs,"
    " b.passed AS bp, h.passed AS hp, b.reps AS b_reps, h.reps AS h_reps,"
    " b.passes AS b_passes, b.scored AS b_scored, h.passes AS h_passes, h.scored AS h_scored,"
    " b.case_id IS NOT NULL AS in_b, h.case_id IS NOT NULL AS in_h"
    " FROM b FULL JOIN h USING (suite, prompt, case_id)"
)
# What must match between the sides, per suite × prompt (and the prompt hash, for the report).
_IDENTITY = """
SELECT suite, prompt, '$side', list(DISTINCT model_id ORDER BY model_id),
       list(DISTINCT params_hash ORDER BY params_hash), list(DISTINCT suite_hash ORDER BY suite_hash),
       list(DISTINCT prompt_hash ORDER BY prompt_hash)
FROM $table GROUP BY suite, prompt
"""
_FLIPS = (
    """
WITH f AS (SELECT suite, prompt, case_id, name, bs, bp, hs, hp, b_reps, h_reps FROM cmp
           WHERE bp != hp AND NOT coalesce("""
    + FLAKY
    + """, false)),
bo AS (SELECT suite, prompt, case_id, arg_min(output, repeat_index) AS output FROM $base
       SEMI JOIN f USING (suite, prompt, case_id) WHERE error IS NULL GROUP BY ALL),
ho AS (SELECT suite, prompt, case_id, arg_min(output, repeat_index) AS output,
              arg_min(run_id, repeat_index) AS run_id, min(repeat_index) AS repeat_index FROM $head
       SEMI JOIN f USING (suite, prompt, case_id) WHERE error IS NULL GROUP BY ALL),
hi AS (SELECT ho.*, r.input AS rendered FROM ho
       LEFT JOIN results r USING (run_id, suite, prompt, case_id, repeat_index))
SELECT f.suite, f.prompt, f.case_id, coalesce(f.name, f.case_id), f.bs, f.bp, bo.output, f.b_reps,
       f.hs, f.hp, hi.output, f.h_reps, hi.rendered
FROM f LEFT JOIN bo USING (suite, prompt, case_id) LEFT JOIN hi USING (suite, prompt, case_id)
ORDER BY 1, 2, 4
"""
)

# For pipelines: each step's output on both sides, for the first repeat of every case both have.
_STEPS = """
WITH both_sides AS (SELECT suite, prompt, case_id FROM cmp WHERE in_b AND in_h),
b AS (SELECT st.suite, st.prompt, st.case_id, st.step_id, st.step_index, st.output, st.error
      FROM $base s JOIN steps st USING (run_id, suite, prompt, case_id, repeat_index)
      WHERE s.repeat_index = 0 AND (s.suite, s.prompt, s.case_id) IN (SELECT * FROM both_sides)),
h AS (SELECT st.suite, st.prompt, st.case_id, st.step_id, st.step_index, st.output, st.error
      FROM $head s JOIN steps st USING (run_id, suite, prompt, case_id, repeat_index)
      WHERE s.repeat_index = 0 AND (s.suite, s.prompt, s.case_id) IN (SELECT * FROM both_sides))
SELECT suite, prompt, case_id, step_id, coalesce(h.step_index, b.step_index) AS step_at,
       b.step_id IS NOT NULL, h.step_id IS NOT NULL, b.output, h.output, b.error, h.error
FROM b FULL JOIN h USING (suite, prompt, case_id, step_id)
ORDER BY suite, prompt, case_id, step_at
"""


class CompareQueries(Core):
    def _insert(self, table: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
        """Rows into a temp table, a thousand to a statement (duckdb's executemany runs row by row)."""
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            text = sql("INSERT INTO $t VALUES ", t=table) + placeholders(width, len(chunk))
            self.db.execute(text, [v for row in chunk for v in row])

    def run_exists(self, run_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is not None

    def side_from_run(self, table: str, run_id: str) -> None:
        """``table``: a view of one run's results (a view, not a copy: the comparison reads it once)."""
        self.db.execute(sql("SET VARIABLE ${t}_run = ?", t=table), [run_id])
        view = (
            "CREATE OR REPLACE TEMP VIEW $t AS SELECT " + _COLS + " FROM results WHERE run_id = getvariable('${t}_run')"
        )
        self.db.execute(sql(view, t=table))

    def side_from_items(self, table: str, keys: Sequence[tuple[str, str, str, str, int, str, str, str]]) -> set[Any]:
        """``table``: the newest stored row (rows without errors first) for each of ``keys``
        (suite, prompt, prompt hash, case id, repeat, model id, params hash, suite hash: all
        that decides a score, the scorers' configuration included); returns the
        (suite, prompt, case id, repeat) found."""
        self.db.execute(
            "CREATE OR REPLACE TEMP TABLE want (suite VARCHAR, prompt VARCHAR, prompt_hash VARCHAR, case_id VARCHAR,"
            " repeat_index INTEGER, model_id VARCHAR, params_hash VARCHAR, suite_hash VARCHAR)"
        )
        self._insert("want", 8, keys)
        self.db.execute(
            sql("CREATE OR REPLACE TEMP TABLE $t AS SELECT ", t=table)
            + ", ".join("r." + c for c in SIDE_COLUMNS)
            + " FROM results r JOIN want w USING (suite, prompt, prompt_hash, case_id, repeat_index, model_id,"
            " params_hash, suite_hash) QUALIFY row_number() OVER (PARTITION BY"
            " r.suite, r.prompt, r.case_id, r.repeat_index ORDER BY r.error IS NULL DESC, r.created_at DESC) = 1"
        )
        rows = self.db.execute(sql("SELECT suite, prompt, case_id, repeat_index FROM $t", t=table)).fetchall()
        return {(r[0], r[1], r[2], int(r[3])) for r in rows}

    def restrict_side(self, source: str, target: str, suite: str, prompt: str, case_ids: Sequence[str]) -> None:
        """``target``: the rows of side table ``source`` for one suite, prompt and set of cases."""
        self.db.execute("CREATE OR REPLACE TEMP TABLE held_out (case_id VARCHAR)")
        self._insert("held_out", 1, [(i,) for i in case_ids])
        self.db.execute(
            sql(
                "CREATE OR REPLACE TEMP TABLE $t AS SELECT * FROM $s"
                " WHERE suite = ? AND prompt = ? AND case_id IN (SELECT case_id FROM held_out)",
                t=target,
                s=source,
            ),
            [suite, prompt],
        )

    def keep_suites(self, table: str, suites: Sequence[str]) -> None:
        """Drop the rows of side table ``table`` whose suite is not one of ``suites``."""
        self.db.execute(sql("DELETE FROM $t WHERE suite NOT IN (SELECT unnest(?::VARCHAR[]))", t=table), [list(suites)])

    def side_runs(self, table: str) -> list[str]:
        """The runs a side's results come from, oldest first."""
        return [
            str(r[0]) for r in self.db.execute(sql("SELECT DISTINCT run_id FROM $t ORDER BY 1", t=table)).fetchall()
        ]

    def side_identities(self, base: str, head: str) -> list[tuple[Any, ...]]:
        """Per side, suite and prompt: the model ids, parameter hashes, suite hashes and prompt hashes."""
        text = " UNION ALL ".join(sql(_IDENTITY, table=t, side=n) for t, n in ((base, "base"), (head, "head")))
        return list(self.db.execute(text).fetchall())

    def pair_cases(self, base: str, head: str, groups: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Pair the sides case by case (temp table ``cmp``); returns the scored pairs as numpy
        columns ``gid, bs, hs, bp, hp``, ordered by ``gid``, the index of (suite, prompt) in ``groups``."""
        self.db.execute(sql(_PAIR, base=base, head=head))
        self.db.execute("CREATE OR REPLACE TEMP TABLE groups (gid INTEGER, suite VARCHAR, prompt VARCHAR)")
        self._insert("groups", 3, [(i, s, p) for i, (s, p) in enumerate(groups)])
        pairs: dict[str, Any] = self.db.execute(
            "SELECT gid, bs, hs, bp, hp, greatest(b_scored, h_scored) AS reps, " + FLAKY + " AS flaky"
            " FROM cmp JOIN groups USING (suite, prompt)"
            " WHERE bs IS NOT NULL AND hs IS NOT NULL ORDER BY gid, case_id"
        ).fetchnumpy()
        return pairs

    def flaky_cases(self) -> list[tuple[str, str, str, str, int, int, int, int]]:
        """(suite, prompt, case id, name, passes and scored repeats on base, on head) of the paired
        cases whose repeats disagree on pass/fail on either side (after :meth:`pair_cases`)."""
        return list(
            self.db.execute(
                "SELECT suite, prompt, case_id, coalesce(name, case_id), b_passes, b_scored, h_passes, h_scored"
                " FROM cmp WHERE bs IS NOT NULL AND hs IS NOT NULL AND " + FLAKY + " ORDER BY 1, 2, 4"
            ).fetchall()
        )

    def unpaired_cases(self) -> list[tuple[str, str, str, bool]]:
        """(suite, prompt, case name, on the base side) of cases only one side has, by name."""
        return list(
            self.db.execute(
                "SELECT suite, prompt, coalesce(name, case_id), in_b FROM cmp WHERE NOT (in_b AND in_h) ORDER BY 3"
            ).fetchall()
        )

    def errored_counts(self) -> list[tuple[str, str, int, int]]:
        """(suite, prompt, cases errored on base, on head) among the cases both sides have."""
        return list(
            self.db.execute(
                "SELECT suite, prompt, count(*) FILTER (WHERE bs IS NULL), count(*) FILTER (WHERE hs IS NULL)"
                " FROM cmp WHERE in_b AND in_h GROUP BY ALL"
            ).fetchall()
        )

    def error_reasons(self, table: str) -> dict[tuple[str, str], tuple[str, int]]:
        """Per suite and prompt of side table ``table``: its commonest error, and how many cases
        errored in all."""
        rows = self.db.execute(
            sql("SELECT suite, prompt, mode(error), count(*) FROM $t WHERE error IS NOT NULL GROUP BY ALL", t=table)
        ).fetchall()
        return {(r[0], r[1]): (str(r[2]), int(r[3])) for r in rows}

    def step_pairs(self, base: str, head: str) -> list[tuple[Any, ...]]:
        """For pipelines, per case both sides have (after :meth:`pair_cases`) and step, in run order:
        (suite, prompt, case id, step id, index, on base, on head, base output, head output,
        base error, head error). Empty when no side holds pipeline steps."""
        return list(self.db.execute(sql(_STEPS, base=base, head=head)).fetchall())

    def flipped_cases(self, base: str, head: str) -> list[tuple[Any, ...]]:
        """Cases whose pass/fail differs, with each side's first answer (fetched for these cases only)."""
        return list(self.db.execute(sql(_FLIPS, base=base, head=head)).fetchall())

"""Pairing two sides case by case, checking they are comparable, and the gate's verdict.

Gate policy, per suite × prompt, with ``max_drop`` and ``alpha`` from promptci.yaml
(``gate.suites.NAME`` overrides them for one suite):

- **regressed**: the mean score dropped by more than ``max_drop`` and the paired test
  gives p < alpha. The only verdict that fails the gate (exit 1).
- **improved**: the mean rose and p < alpha.
- **inconclusive**: p >= alpha, but the 95% CI still allows a drop larger than
  ``max_drop``: more cases or repeats are needed to rule a regression out.
- **unchanged**: otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import GateConfig
from ..store import Store
from .sides import SideResults
from .stats import PairedResult, paired

VERDICT_ORDER = ("regressed", "inconclusive", "improved", "unchanged")


@dataclass(frozen=True)
class CaseSide:
    score: float | None
    passed: bool | None
    output: str | None
    error: str | None
    repeats: int


@dataclass(frozen=True)
class Flip:
    case_id: str
    name: str
    base: CaseSide
    head: CaseSide

    @property
    def direction(self) -> str:
        return "pass→fail" if self.base.passed else "fail→pass"


@dataclass
class SuiteComparison:
    suite: str
    prompt: str
    stats: PairedResult
    verdict: str
    max_drop: float
    alpha: float
    base_hash: str | None
    head_hash: str | None
    flips: list[Flip] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # case names only on the head side
    removed: list[str] = field(default_factory=list)
    errors: tuple[int, int] = (0, 0)
    mismatches: list[str] = field(default_factory=list)
    prompt_file: str | None = None


@dataclass
class Comparison:
    base: str
    head: str
    suites: list[SuiteComparison]

    @property
    def verdict(self) -> str:
        verdicts = {s.verdict for s in self.suites}
        return next((v for v in VERDICT_ORDER if v in verdicts), "unchanged")

    @property
    def mismatches(self) -> list[str]:
        return [f"{s.suite} × {s.prompt}: {m}" for s in self.suites for m in s.mismatches]


def compare(store: Store, base: SideResults, head: SideResults, gate: GateConfig) -> Comparison:
    """Pair the two sides' cases per suite × prompt, in DuckDB, and judge each pair of distributions."""
    db = store.db
    identity_sql = " UNION ALL ".join(
        _IDENTITY.format(table=t, side=n) for t, n in ((base.table, "base"), (head.table, "head"))
    )
    identity = {(r[0], r[1], r[2]): r[3:] for r in db.execute(identity_sql).fetchall()}
    keys = sorted({(s, p) for s, p, _ in identity})
    db.execute(_PAIR.format(base=base.table, head=head.table))
    db.execute("CREATE OR REPLACE TEMP TABLE groups (gid INTEGER, suite VARCHAR, prompt VARCHAR)")
    if keys:
        values = ", ".join(["(?, ?, ?)"] * len(keys))
        db.execute(f"INSERT INTO groups VALUES {values}", [v for i, (s, p) in enumerate(keys) for v in (i, s, p)])
    pairs = db.execute(
        "SELECT gid, bs, hs, bp, hp FROM cmp JOIN groups USING (suite, prompt)"
        " WHERE bs IS NOT NULL AND hs IS NOT NULL ORDER BY gid"
    ).fetchnumpy()
    flips = _flips(db, base.table, head.table)
    only: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for suite, prompt, name, in_base in db.execute(
        "SELECT suite, prompt, coalesce(name, case_id), in_b FROM cmp WHERE NOT (in_b AND in_h) ORDER BY 3"
    ).fetchall():
        only[(suite, prompt)][1 if in_base else 0].append(name)
    errors = {
        (r[0], r[1]): (r[2], r[3])
        for r in db.execute(
            "SELECT suite, prompt, count(*) FILTER (WHERE bs IS NULL), count(*) FILTER (WHERE hs IS NULL)"
            " FROM cmp WHERE in_b AND in_h GROUP BY ALL"
        ).fetchall()
    }
    gids = pairs["gid"]
    suites = []
    for gid, (suite, prompt) in enumerate(keys):
        lo, hi = int(np.searchsorted(gids, gid, "left")), int(np.searchsorted(gids, gid, "right"))
        b_id, h_id = identity.get((suite, prompt, "base")), identity.get((suite, prompt, "head"))
        max_drop, alpha = gate.for_suite(suite)
        bs, hs = pairs["bs"][lo:hi].astype(float), pairs["hs"][lo:hi].astype(float)
        bp, hp = pairs["bp"][lo:hi].astype(bool), pairs["hp"][lo:hi].astype(bool)
        binary = bool(np.all(np.isin(bs, (0.0, 1.0))) and np.all(np.isin(hs, (0.0, 1.0))))
        result = paired(bs, hs, bp, hp, binary=binary)
        added, removed = only.get((suite, prompt), ([], []))
        suites.append(
            SuiteComparison(
                suite,
                prompt,
                result,
                _verdict(result, max_drop, alpha) if hi > lo else "inconclusive",
                max_drop,
                alpha,
                _first(b_id, 3),
                _first(h_id, 3),
                flips.get((suite, prompt), []),
                added,
                removed,
                errors.get((suite, prompt), (0, 0)),
                _mismatches(b_id, h_id),
                head.prompt_files.get(prompt) or base.prompt_files.get(prompt),
            )
        )
    return Comparison(base.side.label, head.side.label, suites)


def _flips(db: Any, base: str, head: str) -> dict[tuple[str, str], list[Flip]]:
    """Cases whose pass/fail differs, with each side's first answer (fetched for these cases only)."""
    found: dict[tuple[str, str], list[Flip]] = defaultdict(list)
    rows = db.execute(
        f"""
        WITH f AS (SELECT suite, prompt, case_id, name, bs, bp, hs, hp, b_reps, h_reps FROM cmp WHERE bp != hp),
        bo AS (SELECT suite, prompt, case_id, arg_min(output, repeat_index) AS output FROM {base}
               SEMI JOIN f USING (suite, prompt, case_id) WHERE error IS NULL GROUP BY ALL),
        ho AS (SELECT suite, prompt, case_id, arg_min(output, repeat_index) AS output FROM {head}
               SEMI JOIN f USING (suite, prompt, case_id) WHERE error IS NULL GROUP BY ALL)
        SELECT f.suite, f.prompt, f.case_id, coalesce(f.name, f.case_id), f.bs, f.bp, bo.output, f.b_reps,
               f.hs, f.hp, ho.output, f.h_reps
        FROM f LEFT JOIN bo USING (suite, prompt, case_id) LEFT JOIN ho USING (suite, prompt, case_id)
        ORDER BY 1, 2, 4
        """
    ).fetchall()
    for r in rows:
        found[(r[0], r[1])].append(
            Flip(r[2], r[3], CaseSide(r[4], r[5], r[6], None, r[7]), CaseSide(r[8], r[9], r[10], None, r[11]))
        )
    return found


# One row per case on either side. Per side: the mean of scored repeats, passed when most scored
# repeats pass (NULL when none was scored), and the number of repeats.
_SIDE = """
SELECT suite, prompt, case_id, any_value(case_name) AS name,
       avg(score) FILTER (WHERE error IS NULL AND score IS NOT NULL) AS score,
       CASE WHEN count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL) = 0 THEN NULL
            ELSE 2 * count(*) FILTER (WHERE error IS NULL AND passed) >=
                 count(*) FILTER (WHERE error IS NULL AND score IS NOT NULL) END AS passed,
       count(*) AS reps
FROM {table} GROUP BY suite, prompt, case_id
"""
_PAIR = (
    "CREATE OR REPLACE TEMP TABLE cmp AS WITH b AS ("
    + _SIDE.format(table="{base}")
    + "), h AS ("
    + _SIDE.format(table="{head}")
    + ") SELECT suite, prompt, case_id, coalesce(b.name, h.name) AS name, b.score AS bs, h.score AS hs,"
    " b.passed AS bp, h.passed AS hp, b.reps AS b_reps, h.reps AS h_reps,"
    " b.case_id IS NOT NULL AS in_b, h.case_id IS NOT NULL AS in_h"
    " FROM b FULL JOIN h USING (suite, prompt, case_id)"
)


# What must match between the sides, per suite × prompt (and the prompt hash, for the report).
_IDENTITY = """
SELECT suite, prompt, '{side}', list(DISTINCT model_id ORDER BY model_id),
       list(DISTINCT params_hash ORDER BY params_hash), list(DISTINCT suite_hash ORDER BY suite_hash),
       list(DISTINCT prompt_hash ORDER BY prompt_hash)
FROM {table} GROUP BY suite, prompt
"""


def _first(identity: tuple[Any, ...] | None, index: int) -> str | None:
    values = identity[index] if identity else None
    return str(values[0]) if values else None


def _mismatches(base: tuple[Any, ...] | None, head: tuple[Any, ...] | None) -> list[str]:
    if base is None:
        return ["no results on the base side (a new suite or prompt)"]
    if head is None:
        return ["no results on the head side (a removed suite or prompt)"]
    found = []
    for i, what in enumerate(("model", "generation parameters", "scorers or thresholds")):
        if list(base[i]) != list(head[i]):
            found.append(f"{what} differ: {', '.join(map(str, base[i]))} vs {', '.join(map(str, head[i]))}")
    return found


def _verdict(r: PairedResult, max_drop: float, alpha: float) -> str:
    significant = r.p_value < alpha
    if significant and r.delta < -max_drop:
        return "regressed"
    if significant and r.delta > 0:
        return "improved"
    if not significant and r.ci_low < -max_drop - 1e-12:
        return "inconclusive"
    return "unchanged"

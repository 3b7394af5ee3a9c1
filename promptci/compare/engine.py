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


def compare(base: SideResults, head: SideResults, gate: GateConfig) -> Comparison:
    """Pair the two sides' cases per suite × prompt and judge each pair of distributions."""
    base_groups, head_groups = _group(base.rows), _group(head.rows)
    suites = []
    for key in sorted(set(base_groups) | set(head_groups)):
        suite, prompt = key
        b, h = base_groups.get(key, {}), head_groups.get(key, {})
        max_drop, alpha = gate.for_suite(suite)
        suites.append(
            _compare_one(
                suite, prompt, b, h, max_drop, alpha, head.prompt_files.get(prompt) or base.prompt_files.get(prompt)
            )
        )
    return Comparison(base.side.label, head.side.label, suites)


def _group(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[(row["suite"], row["prompt"])][row["case_id"]].append(row)
    return groups


def _case(rows: list[dict[str, Any]]) -> CaseSide:
    scored = [r for r in rows if r["error"] is None and r["score"] is not None]
    if not scored:
        return CaseSide(None, None, rows[0]["output"], rows[0]["error"], len(rows))
    score = sum(r["score"] for r in scored) / len(scored)
    # A case passes when most of its scored repeats pass.
    passed = sum(bool(r["passed"]) for r in scored) * 2 >= len(scored)
    first = min(scored, key=lambda r: r["repeat_index"])
    return CaseSide(score, passed, first["output"], None, len(rows))


def _identity(cases: dict[str, list[dict[str, Any]]], column: str) -> set[str]:
    return {str(r[column]) for rows in cases.values() for r in rows}


def _compare_one(
    suite: str,
    prompt: str,
    base: dict[str, list[dict[str, Any]]],
    head: dict[str, list[dict[str, Any]]],
    max_drop: float,
    alpha: float,
    prompt_file: str | None,
) -> SuiteComparison:
    mismatches = []
    if base and head:
        for column, what in (
            ("model_id", "model"),
            ("params_hash", "generation parameters"),
            ("suite_hash", "scorers or thresholds"),
        ):
            b, h = _identity(base, column), _identity(head, column)
            if b != h:
                mismatches.append(f"{what} differ: {', '.join(sorted(b))} vs {', '.join(sorted(h))}")
    elif not base:
        mismatches.append("no results on the base side (a new suite or prompt)")
    else:
        mismatches.append("no results on the head side (a removed suite or prompt)")
    shared = sorted(set(base) & set(head))
    names = {cid: rows[0]["case_name"] or cid for side in (base, head) for cid, rows in side.items()}
    pairs = [(cid, _case(base[cid]), _case(head[cid])) for cid in shared]
    scored = [(cid, b, h) for cid, b, h in pairs if b.score is not None and h.score is not None]
    bs = np.array([b.score for _, b, _ in scored], dtype=float)
    hs = np.array([h.score for _, _, h in scored], dtype=float)
    bp = np.array([bool(b.passed) for _, b, _ in scored], dtype=bool)
    hp = np.array([bool(h.passed) for _, _, h in scored], dtype=bool)
    binary = bool(np.all(np.isin(bs, (0.0, 1.0))) and np.all(np.isin(hs, (0.0, 1.0))))
    result = paired(bs, hs, bp, hp, binary=binary)
    flips = [Flip(cid, names[cid], b, h) for cid, b, h in scored if b.passed != h.passed]
    hashes = [{str(r["prompt_hash"]) for rows in side.values() for r in rows} for side in (base, head)]
    return SuiteComparison(
        suite,
        prompt,
        result,
        _verdict(result, max_drop, alpha) if scored else "inconclusive",
        max_drop,
        alpha,
        next(iter(hashes[0]), None),
        next(iter(hashes[1]), None),
        flips,
        sorted(names[c] for c in set(head) - set(base)),
        sorted(names[c] for c in set(base) - set(head)),
        (sum(b.score is None for _, b, _ in pairs), sum(h.score is None for _, _, h in pairs)),
        mismatches,
        prompt_file,
    )


def _verdict(r: PairedResult, max_drop: float, alpha: float) -> str:
    significant = r.p_value < alpha
    if significant and r.delta < -max_drop:
        return "regressed"
    if significant and r.delta > 0:
        return "improved"
    if not significant and r.ci_low < -max_drop - 1e-12:
        return "inconclusive"
    return "unchanged"

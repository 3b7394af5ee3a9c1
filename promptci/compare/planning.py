"""How many cases a suite needs: ``promptci plan SUITE --drop 0.05``.

From the store: the suite's pass rate (its newest prompt version), and how often answers flipped
between successive versions of its prompt (the discordance a future change is likely to have).
With those, :mod:`.power` gives the cases that detect ``drop`` at each power, and the drop the
suite detects now. Where the store holds no pair of versions, it assumes that a change redraws
every answer independently (discordance ``2p(1 − p)``, an upper bound), and says so.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from ..store import Store
from .power import cases_needed, detectable_drop

THIN = 3  # fewer pairs of versions than this, and the flip rate is said to rest on little


@dataclass(frozen=True)
class SuitePlan:
    suite: str
    prompt: str
    cases: int  # the suite's cases now
    pass_rate: float | None  # the newest stored version's (scored suites: its mean score)
    binary: bool  # pass/fail scores: the exact McNemar test; else the permutation test
    spread: float  # the discordance between versions (binary), or the sd of score differences
    pairs: int  # the pairs of successive versions the spread was measured on
    detects: float | None  # the smallest drop the suite detects at its present size, at the first power
    needed: dict[float, int | None] = field(default_factory=dict)  # power -> cases (None: past the limit)
    assumed: list[str] = field(default_factory=list)  # what was assumed, where history is thin


def plan_suite(
    store: Store | None,
    suite: str,
    prompt: str,
    cases: int,
    *,
    drop: float,
    alpha: float,
    powers: tuple[float, ...] = (0.8, 0.9),
) -> SuitePlan:
    """The cases ``suite`` × ``prompt`` needs to detect ``drop``, from what the store has seen."""
    versions = _versions(store, suite, prompt)
    assumed: list[str] = []
    latest = versions[-1] if versions else {}
    scores = np.array([score for score, _ in latest.values()], dtype=float)
    binary = bool(len(scores) == 0 or np.all(np.isin(scores, (0.0, 1.0))))
    if len(scores):
        rate = float(np.mean([passed for _, passed in latest.values()])) if binary else float(scores.mean())
    else:
        rate = 0.5
        assumed.append("no stored results: pass rate 0.5 assumed (run `promptci eval` for the real one)")
    spreads, pairs = _between_versions(versions, binary)
    if pairs:
        spread = float(np.mean(spreads))
        if pairs < THIN:
            assumed.append(f"flip rate from only {pairs} pair(s) of prompt versions")
    elif binary:
        spread = 2 * rate * (1 - rate)
        assumed.append(
            "no two stored versions to measure flips: assumed a change redraws every answer"
            f" (ψ = 2p(1−p) = {spread:.2f})"
        )
    else:
        spread = float(scores.std(ddof=1) * np.sqrt(2)) if len(scores) > 1 else 0.5
        assumed.append(f"no two stored versions: assumed independent scores (sd of differences {spread:.2f})")
    if binary and spread < drop:
        assumed.append(f"flip rate {spread:.3f} is below the drop: a drop of {drop:g} flips at least that many")
    first = powers[0]
    now = detectable_drop(cases, binary=binary, discordance=spread, alpha=alpha, power=first).drop if cases else None
    needed = {p: cases_needed(drop, binary=binary, discordance=spread, alpha=alpha, power=p) for p in powers}
    return SuitePlan(suite, prompt, cases, rate if len(scores) else None, binary, spread, pairs, now, needed, assumed)


def _versions(store: Store | None, suite: str, prompt: str) -> list[dict[str, tuple[float, bool]]]:
    """Each stored version of ``prompt`` on ``suite`` (its newest model's), oldest first: case -> (score, passed)."""
    if store is None:
        return []
    by_model: dict[str, dict[str, dict[str, tuple[float, bool]]]] = defaultdict(dict)
    order: dict[str, list[str]] = defaultdict(list)
    last_seen: dict[str, Any] = {}
    for name, model, version, seen, case, score, passed in store.version_cases(suite):
        if name != prompt:
            continue
        if version not in by_model[model]:
            by_model[model][version] = {}
            order[model].append(version)
        by_model[model][version][case] = (float(score), bool(passed))
        last_seen[model] = max(last_seen.get(model, seen), seen)
    if not last_seen:
        return []
    model = max(last_seen, key=lambda m: last_seen[m])
    return [by_model[model][v] for v in order[model]]


def _between_versions(versions: list[dict[str, tuple[float, bool]]], binary: bool) -> tuple[list[float], int]:
    """Per pair of successive versions with cases in common: the share of those cases whose pass/fail
    flipped (binary), or the sd of their score differences."""
    found = []
    for before, after in pairwise(versions):
        common = sorted(set(before) & set(after))
        if len(common) < 2:
            continue
        if binary:
            found.append(float(np.mean([before[c][1] != after[c][1] for c in common])))
        else:
            found.append(float(np.std([after[c][0] - before[c][0] for c in common], ddof=1)))
    return found, len(found)

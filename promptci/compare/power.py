"""How sure the gate is: the smallest drop a suite detects, and the cases a drop needs.

Pass/fail suites are tested by exact McNemar on the discordant pairs, so their power is computed
exactly for that test: the number of discordant cases ``D`` is binomial in ``n`` with the
discordance rate ``ψ``; given ``D = d``, the pass→fail count is binomial in ``d`` with
``q = (ψ + δ) / 2ψ`` for a true drop ``δ``; the gate declares a regression when that count
reaches McNemar's critical value at ``alpha`` and the observed drop exceeds ``max_drop``. Power is
the sum of those probabilities, so it holds at any size, however few the discordant pairs.

Scored suites (the sign-flip permutation test) use the normal limit of a one-sample test on the
per-case differences: ``δ = (z₁₋α/₂ + z_power) · sd / √n``, with the tail on the other side added,
as statsmodels' ``NormalIndPower`` does.

A drop needs at least ``δ`` of the cases to change, so where fewer changed than the drop in
question (``ψ < δ``), the drop's own discordance is assumed: every changed case a pass→fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import sqrt
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()
EXACT_UP_TO = 5_000  # paired cases: beyond, McNemar's power takes its normal limit (within 2% of exact)
_BISECT = 40  # halvings of the bracket: far below 1e-9


@dataclass(frozen=True)
class Detectable:
    """The smallest drop a suite detects at ``alpha`` with ``power``, as a fraction of the score
    scale (None: no drop, however large, reaches that power at this size)."""

    drop: float | None
    power: float
    alpha: float
    discordance: float  # the rate of cases that changed (binary), or the sd of the differences (scored)
    binary: bool


_TABLE = np.zeros(1)


def _log_factorials(n: int) -> np.ndarray:
    """log k! for k in 0..n at least: one table, grown by doubling, shared by every call."""
    global _TABLE
    if len(_TABLE) <= n:
        size = max(n + 1, 2 * len(_TABLE))
        _TABLE = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, size, dtype=float)))))
    return _TABLE


def _binomial_pmf(k: np.ndarray, n: np.ndarray, p: float, lf: np.ndarray) -> np.ndarray:
    """P(X = k) for X ~ Binomial(n, p), elementwise, with the edges p = 0 and p = 1 exact."""
    if p <= 0.0:
        return np.asarray(k == 0, dtype=float)
    if p >= 1.0:
        return np.asarray(k == n, dtype=float)
    logs = lf[n] - lf[k] - lf[n - k] + k * np.log(p) + (n - k) * np.log1p(-p)
    return np.asarray(np.exp(logs), dtype=float)


@lru_cache(maxsize=65_536)
def mcnemar_critical(d: int, alpha: float) -> int:
    """The least pass→fail count among ``d`` discordant pairs that the exact two-sided McNemar
    test calls significant at ``alpha`` (``d + 1`` where none is)."""
    lf = _log_factorials(d)
    k = np.arange(d // 2, d + 1)
    tail = np.cumsum(_binomial_pmf(k, np.full(len(k), d), 0.5, lf)[::-1])[::-1]  # P(X >= k)
    ok = np.nonzero((k > d / 2) & (2 * tail < alpha))[0]
    return int(k[ok[0]]) if len(ok) else d + 1


def mcnemar_power(n: int, drop: float, discordance: float, alpha: float, max_drop: float = 0.0) -> float:
    """The chance the gate calls a pass/fail suite of ``n`` cases regressed when the true drop is
    ``drop`` and ``discordance`` of its cases change (``drop <= discordance``)."""
    psi = min(max(discordance, drop), 1.0)
    if n <= 0 or drop <= 0 or psi <= 0:
        return 0.0
    if n > EXACT_UP_TO:
        z = _NORMAL.inv_cdf(1 - alpha / 2)
        spread = sqrt(max(psi - drop * drop, 1e-12))
        return _NORMAL.cdf((sqrt(n) * (drop - max_drop) - z * sqrt(psi)) / spread)
    lf = _log_factorials(n)
    d = np.arange(n + 1)
    weight = _binomial_pmf(d, np.full(n + 1, n), psi, lf)
    keep = weight > 1e-16 * weight.max()
    q = (psi + drop) / (2 * psi)
    ds = np.nonzero(keep)[0]
    # per discordant count: the least pass→fail count both significant and a drop beyond max_drop
    least = np.array([max(mcnemar_critical(int(x), alpha), int(np.floor((x + n * max_drop) / 2)) + 1) for x in ds])
    ds, least = ds[least <= ds], least[least <= ds]
    if len(ds) == 0:
        return 0.0
    k = np.arange(int(least.min()), int(ds.max()) + 1)
    inside = (k[None, :] >= least[:, None]) & (k[None, :] <= ds[:, None])
    rest = np.where(inside, ds[:, None] - k[None, :], 0)
    logs = lf[ds][:, None] - lf[np.where(inside, k[None, :], 0)] - lf[rest]
    logs = logs + k[None, :] * np.log(q) + rest * np.log1p(-q) if 0 < q < 1 else logs
    if q >= 1:  # every discordant pair a pass→fail: only k = d has mass
        mass = np.where(inside & (k[None, :] == ds[:, None]), 1.0, 0.0)
    else:
        mass = np.exp(np.where(inside, logs, -np.inf))
    return min(float((weight[ds] * mass.sum(axis=1)).sum()), 1.0)


def normal_power(n: int, drop: float, sd: float, alpha: float, max_drop: float = 0.0) -> float:
    """The chance a scored suite's paired test finds a mean drop of ``drop`` (two-sided, normal
    limit, both tails as statsmodels counts them), beyond ``max_drop``."""
    if n <= 1 or drop <= 0:
        return 0.0
    if sd <= 0:
        return 1.0 if drop > max_drop else 0.0
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    effect = (drop - max_drop) * sqrt(n) / sd
    return _NORMAL.cdf(effect - z) + _NORMAL.cdf(-effect - z)


def detectable_drop(
    n: int,
    *,
    binary: bool,
    discordance: float,
    alpha: float,
    power: float = 0.8,
    max_drop: float = 0.0,
) -> Detectable:
    """The least drop detected with ``power``: ``discordance`` is the rate of cases whose pass/fail
    changed (binary), or the sd of the per-case differences (scored)."""
    if binary:

        def reach(drop: float) -> float:
            return mcnemar_power(n, drop, discordance, alpha, max_drop)

        spread = discordance
    else:
        # No case moved: assume the spread of a drop that moves each case by a pass/fail step.
        def reach(drop: float) -> float:
            sd = discordance if discordance > 0 else sqrt(drop * (1 - drop))
            return normal_power(n, drop, sd, alpha, max_drop)

        spread = discordance
    high = 1.0
    if n <= 0 or reach(high) < power:
        return Detectable(None, power, alpha, spread, binary)
    low = max_drop
    guess = max_drop + (_NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)) * sqrt(max(spread, 1e-6) / n)
    for bound in (guess / 2, guess * 2):  # bracket the normal limit's answer, where it holds
        if low < bound < high:
            if reach(bound) >= power:
                high = bound
            else:
                low = bound
    for _ in range(_BISECT):
        mid = (low + high) / 2
        if reach(mid) >= power:
            high = mid
        else:
            low = mid
    return Detectable(high, power, alpha, spread, binary)


def cases_needed(
    drop: float, *, binary: bool, discordance: float, alpha: float, power: float, max_n: int = 100_000
) -> int | None:
    """The fewest paired cases that detect ``drop`` with ``power`` (None: more than ``max_n``).

    McNemar's exact power is not monotone in n (its critical values step), so the answer is the
    least n from which every larger size up to twice it also reaches ``power``."""
    if drop <= 0:
        return None
    if not binary:
        sd = discordance if discordance > 0 else sqrt(drop * (1 - drop))
        z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
        n = max(2, int(np.ceil((z * sd / drop) ** 2)))
        while normal_power(n, drop, sd, alpha) < power:
            n += 1
        return n if n <= max_n else None

    def reaches(n: int) -> bool:
        return mcnemar_power(n, drop, discordance, alpha) >= power

    high = 8
    while not reaches(high):
        high *= 2
        if high > max_n:
            return None
    low = high // 2
    while high - low > 1:  # the first size that reaches it, then step on past any dip
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    n = high
    while not all(reaches(m) for m in range(n, min(2 * n, max_n) + 1, max(1, n // 50))):
        n += 1
    return n


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for rank, i in enumerate(order):
        running = min(running, m * p_values[i] / (m - rank))
        adjusted[i] = min(1.0, running)
    return adjusted


def uncorrected(p_values: list[float]) -> list[float]:
    return list(p_values)


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg, "none": uncorrected}

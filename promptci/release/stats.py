"""Unpaired tests for A/B releases, and the alpha each look at a running test may spend.

Two versions serve different users, so nothing pairs: pass/fail outcomes get the two-proportion
z-test (Fisher's exact test where an expected count is under 5), numbers get Welch's t-test.
The standard library's ``math`` is enough: the t distribution comes from the regularized
incomplete beta function by its continued fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import erfc, exp, lgamma, log, sqrt

Z_975 = 1.959963984540054


@dataclass(frozen=True)
class Unpaired:
    delta: float  # the version's mean minus the control's
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # "two-proportion-z", "fisher-exact", "welch-t" or "none"


def normal_sf(z: float) -> float:
    return 0.5 * erfc(z / sqrt(2))


def normal_ppf(q: float) -> float:
    """The z with ``P(Z <= z) = q``, by bisection (fine for the handful of calls a report makes)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1 - normal_sf(mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1 - tail


def t_ppf(q: float, df: float) -> float:
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1 - t_sf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def proportions(x0: int, n0: int, x1: int, n1: int) -> Unpaired:
    """Version (``x1`` passes of ``n1``) against control (``x0`` of ``n0``)."""
    p0, p1 = x0 / n0, x1 / n1
    delta = p1 - p0
    half = Z_975 * sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    total, passes = n0 + n1, x0 + x1
    expected = min(passes * n0, passes * n1, (total - passes) * n0, (total - passes) * n1) / total
    if expected < 5:
        return Unpaired(delta, delta - half, delta + half, fisher_exact(x0, n0, x1, n1), "fisher-exact")
    pooled = passes / total
    se = sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    p = 1.0 if se == 0 else erfc(abs(delta) / se / sqrt(2))
    return Unpaired(delta, delta - half, delta + half, p, "two-proportion-z")


def fisher_exact(x0: int, n0: int, x1: int, n1: int) -> float:
    """Two-sided Fisher's exact test of the 2x2 table: the tables with the same margins that are
    no more likely than the one observed."""
    passes, total = x0 + x1, n0 + n1

    def log_p(k: int) -> float:  # k passes on the control side
        return _log_comb(n0, k) + _log_comb(n1, passes - k) - _log_comb(total, passes)

    observed = log_p(x0)
    low, high = max(0, passes - n1), min(n0, passes)
    p = sum(exp(log_p(k)) for k in range(low, high + 1) if log_p(k) <= observed + 1e-7)
    return min(1.0, p)


def _log_comb(n: int, k: int) -> float:
    return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)


def welch(mean0: float, var0: float, n0: int, mean1: float, var1: float, n1: int) -> Unpaired:
    """Version (mean, sample variance, n) against control, by Welch's t-test."""
    delta = mean1 - mean0
    se2 = var0 / n0 + var1 / n1
    if se2 <= 0 or n0 < 2 or n1 < 2:
        return Unpaired(delta, delta, delta, 1.0 if delta == 0 or n0 < 2 or n1 < 2 else 0.0, "none")
    df = se2**2 / ((var0 / n0) ** 2 / (n0 - 1) + (var1 / n1) ** 2 / (n1 - 1))
    t = delta / sqrt(se2)
    p = min(1.0, 2 * t_sf(abs(t), df))
    half = t_ppf(0.975, df) * sqrt(se2)
    return Unpaired(delta, delta - half, delta + half, p, "welch-t")


def spent(alpha: float, look: int, fraction: float | None, before: float | None) -> float:
    """The alpha look ``look`` (1, 2, …) may test at, so that all looks together keep the false
    positive rate under ``alpha`` however often a team peeks.

    With a planned sample size, ``fraction`` is the share of it reached now and ``before`` at the
    previous look: the increment of O'Brien-Fleming's spending function 2 - 2Φ(z/√t), which
    keeps early looks strict and leaves nearly all of alpha for the planned end. Without a plan,
    look k spends alpha / 2^k. Either way the increments sum to at most alpha, which bounds the
    overall false positive rate (a union bound; conservative, as the looks are correlated)."""
    if fraction is None:
        return alpha * 0.5**look

    def obf(t: float) -> float:
        return 0.0 if t <= 0 else 2 * normal_sf(normal_ppf(1 - alpha / 2) / sqrt(min(t, 1.0)))

    return max(0.0, obf(fraction) - obf(before or 0.0))

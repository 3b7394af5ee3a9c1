"""Paired statistics for one suite × prompt: bootstrap CI, exact McNemar, sign-flip permutation.

Every test pairs cases: each case's score on the base side against the same case's
score on the head side. Repeats are averaged per case first, so a case with five
repeats counts once, and its pass/fail is the aggregated verdict.

Above ``LARGE`` paired cases the bootstrap and sign-flip distributions are replaced
by their normal limits (mean ± z·sd/√n, and z = Σd/√Σd²), which they match to well
under the resampling noise at that size and which keep a compare of a million rows
under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb, erfc, sqrt

import numpy as np

LARGE = 2000
Z_975 = 1.959963984540054


@dataclass(frozen=True)
class PairedResult:
    n: int
    base_mean: float
    head_mean: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # "mcnemar-exact", "permutation" or "none"
    discordant: tuple[int, int] = (0, 0)  # (pass -> fail, fail -> pass) for McNemar


def bootstrap_ci(diffs: np.ndarray, *, resamples: int = 5_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap CI of the mean paired difference, resampling cases."""
    if len(diffs) == 0:
        return (0.0, 0.0)
    if len(diffs) > LARGE:
        half = Z_975 * float(diffs.std(ddof=1)) / sqrt(len(diffs))
        return float(diffs.mean()) - half, float(diffs.mean()) + half
    rng = np.random.default_rng(seed)
    n = len(diffs)
    # In blocks, so memory stays small for large suites.
    means = np.empty(resamples)
    block = max(1, 2_000_000 // n)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diffs[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def mcnemar_exact(pass_to_fail: int, fail_to_pass: int) -> float:
    """Two-sided exact McNemar test: a binomial test on the discordant pairs."""
    n = pass_to_fail + fail_to_pass
    if n == 0:
        return 1.0
    k = min(pass_to_fail, fail_to_pass)
    tail: float = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def permutation_p(diffs: np.ndarray, *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired permutation test by random sign flips; exact up to 16 nonzero pairs."""
    nonzero = diffs[diffs != 0]
    n = len(nonzero)
    if n == 0:
        return 1.0
    observed = abs(float(nonzero.sum())) - 1e-12
    if n > LARGE:
        z = observed / sqrt(float(np.sum(nonzero**2)))
        return float(erfc(z / sqrt(2)))
    if n <= 16:  # every one of the 2^n sign patterns
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        return float(np.mean(np.abs(signs @ nonzero) >= observed))
    signs = np.random.default_rng(seed).choice((-1, 1), size=(resamples, n))
    hits = int(np.sum(np.abs(signs @ nonzero) >= observed))
    return (hits + 1) / (resamples + 1)


def paired(
    base: np.ndarray, head: np.ndarray, base_pass: np.ndarray, head_pass: np.ndarray, *, binary: bool, seed: int = 0
) -> PairedResult:
    """Compare paired case scores. ``binary`` picks McNemar on pass/fail, else the permutation test."""
    n = len(base)
    if n == 0:
        return PairedResult(0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, "none")
    diffs = head - base
    low, high = bootstrap_ci(diffs, seed=seed)
    if binary:
        p_to_f = int(np.sum(base_pass & ~head_pass))
        f_to_p = int(np.sum(~base_pass & head_pass))
        p_value, test, discordant = mcnemar_exact(p_to_f, f_to_p), "mcnemar-exact", (p_to_f, f_to_p)
    else:
        p_value, test, discordant = permutation_p(diffs, seed=seed), "permutation", (0, 0)
    return PairedResult(
        n, float(base.mean()), float(head.mean()), float(diffs.mean()), low, high, p_value, test, discordant
    )

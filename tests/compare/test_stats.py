"""The paired statistics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from promptci.compare.stats import LARGE, bootstrap_ci, mcnemar_exact, paired, permutation_p


def test_mcnemar_exact_matches_the_binomial() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)  # two-sided: 2 * 0.5^6
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)


def test_permutation_is_exact_for_few_pairs() -> None:
    # 3 nonzero differences, all positive: only 2 of 8 sign patterns reach |sum| = 0.6.
    assert permutation_p(np.array([0.2, 0.2, 0.2, 0.0])) == pytest.approx(2 / 8)
    assert permutation_p(np.zeros(5)) == 1.0


def test_permutation_large_sample_limit_is_consistent() -> None:
    rng = np.random.default_rng(3)
    diffs = rng.normal(0.02, 0.3, LARGE + 1)
    monte_carlo = permutation_p(diffs[:LARGE])  # resampled
    normal = permutation_p(diffs)  # normal limit
    assert abs(monte_carlo - normal) < 0.05


def test_bootstrap_ci_covers_the_mean() -> None:
    diffs = np.array([1.0] * 8 + [0.0] * 20)
    low, high = bootstrap_ci(diffs)
    assert low < diffs.mean() < high and low > 0
    assert bootstrap_ci(np.zeros(10)) == (0.0, 0.0)


def test_paired_picks_the_test() -> None:
    base = np.array([1.0, 1.0, 1.0, 0.0])
    head = np.array([0.0, 0.0, 1.0, 0.0])
    r = paired(base, head, base == 1, head == 1, binary=True)
    assert (r.test, r.discordant, r.delta) == ("mcnemar-exact", (2, 0), -0.5)
    c = paired(base * 0.5, head * 0.5 + 0.1, base == 1, head == 1, binary=False)
    assert c.test == "permutation" and c.n == 4

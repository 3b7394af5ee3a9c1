"""The gate's power, detectable drop, sample size and multiple-testing correction, each against a
reference implementation (scipy, statsmodels) on fixed inputs, and the verdicts they lead to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom, binomtest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from promptci.compare.engine import _verdict
from promptci.compare.power import (
    Detectable,
    benjamini_hochberg,
    cases_needed,
    detectable_drop,
    holm,
    mcnemar_critical,
    mcnemar_power,
    normal_power,
)
from promptci.compare.stats import PairedResult, mcnemar_exact
from promptci.config import GateConfig

from .test_engine import row, run_compare


def reference_mcnemar_power(n: int, drop: float, psi: float, alpha: float, max_drop: float) -> float:
    """Every (discordant, pass→fail) outcome weighed by scipy's binomial, tested by scipy's binomtest."""
    psi = max(psi, drop)
    q = (psi + drop) / (2 * psi)
    total = 0.0
    for d in range(1, n + 1):
        for k in range(d + 1):
            if binomtest(k, d, 0.5).pvalue < alpha and 2 * k - d > n * max_drop:
                total += binom.pmf(d, n, psi) * binom.pmf(k, d, q)
    return total


@pytest.mark.parametrize(
    ("n", "drop", "psi", "alpha", "max_drop"),
    [(24, 0.1, 0.2, 0.05, 0.0), (40, 0.15, 0.3, 0.05, 0.02), (30, 0.2, 0.1, 0.01, 0.0), (60, 0.05, 0.5, 0.1, 0.0)],
)
def test_mcnemar_power_matches_scipy(n: int, drop: float, psi: float, alpha: float, max_drop: float) -> None:
    assert mcnemar_power(n, drop, psi, alpha, max_drop) == pytest.approx(
        reference_mcnemar_power(n, drop, psi, alpha, max_drop), abs=1e-9
    )


def test_mcnemar_critical_values_and_the_exact_test_match_scipy() -> None:
    assert mcnemar_critical(0, 0.05) == 1
    for d in range(1, 60):
        k = mcnemar_critical(d, 0.05)
        significant = [j for j in range(d + 1) if j > d / 2 and binomtest(j, d, 0.5).pvalue < 0.05]
        assert k == (significant[0] if significant else d + 1)
        for j in range(d + 1):
            assert mcnemar_exact(j, d - j) == pytest.approx(binomtest(j, d, 0.5).pvalue, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "sd", "alpha", "power"), [(50, 0.3, 0.05, 0.8), (200, 0.5, 0.01, 0.9), (12, 0.2, 0.05, 0.8)]
)
def test_scored_power_and_detectable_drop_match_statsmodels(n: int, sd: float, alpha: float, power: float) -> None:
    reference = NormalIndPower()  # ratio=0: the one-sample test on the per-case differences
    assert normal_power(n, 0.1, sd, alpha) == pytest.approx(
        reference.power(0.1 / sd, nobs1=n, alpha=alpha, ratio=0), abs=1e-9
    )
    found = detectable_drop(n, binary=False, discordance=sd, alpha=alpha, power=power)
    expected = reference.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=0) * sd
    assert found.drop == pytest.approx(expected, abs=1e-6)
    needed = cases_needed(0.05, binary=False, discordance=sd, alpha=alpha, power=power)
    assert needed == int(np.ceil(reference.solve_power(0.05 / sd, nobs1=None, alpha=alpha, power=power, ratio=0)))


def test_a_detectable_drop_is_detected_with_the_stated_power() -> None:
    found = detectable_drop(100, binary=True, discordance=0.2, alpha=0.05, power=0.8)
    assert found.drop is not None and 0.1 < found.drop < 0.2
    assert mcnemar_power(100, found.drop, 0.2, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert mcnemar_power(100, found.drop * 0.9, 0.2, 0.05) < 0.8  # the least such drop
    assert detectable_drop(3, binary=True, discordance=0.33, alpha=0.05).drop is None  # 3 cases detect nothing
    # more cases detect smaller drops
    drops = [detectable_drop(n, binary=True, discordance=0.2, alpha=0.05).drop for n in (50, 200, 800)]
    assert drops[0] > drops[1] > drops[2]  # type: ignore[operator]


def test_cases_needed_reach_the_power_from_there_on() -> None:
    n = cases_needed(0.1, binary=True, discordance=0.2, alpha=0.05, power=0.8)
    assert n is not None
    assert all(mcnemar_power(m, 0.1, 0.2, 0.05) >= 0.8 for m in range(n, n + 40))
    assert mcnemar_power(n - 10, 0.1, 0.2, 0.05) < 0.8
    more = cases_needed(0.1, binary=True, discordance=0.2, alpha=0.05, power=0.9)
    assert more is not None and more > n


def test_holm_and_benjamini_hochberg_match_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 20):
        p = list(rng.uniform(0, 0.2, size))
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)
        assert benjamini_hochberg(p) == pytest.approx(list(multipletests(p, method="fdr_bh")[1]), abs=1e-12)


def result(delta: float, ci: tuple[float, float], p: float) -> PairedResult:
    return PairedResult(100, 0.8, 0.8 + delta, delta, ci[0], ci[1], p, "mcnemar-exact")


def test_the_verdicts_between_significance_and_power() -> None:
    weak, strong = Detectable(0.2, 0.8, 0.05, 0.2, True), Detectable(0.03, 0.8, 0.05, 0.2, True)
    # not significant, and the interval holds drops the suite is meant to catch but cannot resolve
    assert _verdict(result(-0.1, (-0.25, 0.05), 0.2), 0.2, 0.02, 0.05, weak) == "underpowered"
    # a powered suite: the interval allows a drop beyond max_drop, more cases would settle it
    assert _verdict(result(-0.02, (-0.05, 0.01), 0.2), 0.2, 0.04, 0.05, strong) == "inconclusive"
    # the interval rules out the drops the suite detects, but not max_drop: inconclusive, not underpowered
    assert _verdict(result(-0.02, (-0.1, 0.06), 0.5), 0.5, 0.02, 0.05, weak) == "inconclusive"
    assert _verdict(result(-0.15, (-0.25, -0.05), 0.01), 0.01, 0.02, 0.05, weak) == "regressed"
    assert _verdict(result(0.0, (0.0, 0.0), 1.0), 1.0, 0.0, 0.05, weak) == "unchanged"


def test_many_rows_are_judged_after_holm(tmp_path: Path) -> None:
    cases = [str(i) for i in range(30)]
    base = [row("base", c, 1.0, suite=s) for s in "abc" for c in cases]
    down = {"a": 10, "b": 6, "c": 0}  # p = 0.002, 0.031 and 1 on their own
    head = [row("head", c, 0.0 if int(c) < down[s] else 1.0, suite=s) for s in "abc" for c in cases]
    corrected = run_compare(tmp_path / "holm", base, head)
    verdicts = {s.suite: s.verdict for s in corrected.suites}
    assert corrected.correction == "holm" and verdicts["a"] == "regressed" and verdicts["b"] != "regressed"
    b = next(s for s in corrected.suites if s.suite == "b")
    assert b.stats.p_value < 0.05 and b.p == pytest.approx(2 * b.stats.p_value)
    plain = run_compare(tmp_path / "none", base, head, GateConfig(correction="none"))
    assert {s.suite: s.verdict for s in plain.suites}["b"] == "regressed" and plain.correction == "none"
    fdr = run_compare(tmp_path / "bh", base, head, GateConfig(correction="bh"))
    assert fdr.correction == "bh" and {s.suite: s.verdict for s in fdr.suites}["b"] == "regressed"
    # a drop in one row alone is tested at alpha / 3: the corrected suite detects only larger drops
    assert b.detectable and plain.suites[1].detectable
    assert b.detectable.drop > plain.suites[1].detectable.drop  # type: ignore[operator]


def flaky_sides(k: int) -> tuple[list, list]:  # type: ignore[type-arg]
    """30 steady cases, 20 of them down on head, and 10 cases whose repeats pass half the time."""
    steady = [str(i) for i in range(30)]
    base = [row("base", c, 1.0, repeat=r) for c in steady for r in range(k)]
    head = [row("head", c, 0.0 if int(c) < 20 else 1.0, repeat=r) for c in steady for r in range(k)]
    for c in (f"f{i}" for i in range(10)):
        base += [row("base", c, float(r % 2), repeat=r) for r in range(k)]
        head += [row("head", c, float((r + 1) % 2), repeat=r) for r in range(k)]
    return base, head


def test_flaky_cases_under_each_policy(tmp_path: Path) -> None:
    base, head = flaky_sides(4)
    report = run_compare(tmp_path / "r", base, head)
    (s,) = report.suites
    assert len(s.flaky) == 10 and {f.name for f in s.flaky} == {f"case f{i}" for i in range(10)}
    assert all(f.name.startswith("case f") is False for f in s.flips) and s.stats.n == 40
    assert s.verdict == "regressed" and report.fails
    ignore = run_compare(tmp_path / "i", base, head, GateConfig(flaky="ignore"))
    assert ignore.suites[0].stats.n == 30 and len(ignore.suites[0].flaky) == 10
    steady_base, steady_head = base[:120], head[:120]  # no regression, only flaky cases: fail fails the gate
    calm = [row("head", c, 1.0, repeat=r) for c in map(str, range(30)) for r in range(4)]
    failing = run_compare(tmp_path / "f", steady_base + base[120:], calm + head[120:], GateConfig(flaky="fail"))
    assert failing.verdict != "regressed" and failing.fails and failing.flaky == 10
    reporting = run_compare(tmp_path / "p", steady_base + base[120:], calm + head[120:])
    assert not reporting.fails and reporting.flaky == 10
    del steady_head


def test_the_comment_the_html_report_and_the_json_show_the_detectable_drop_and_the_flaky_cases(tmp_path: Path) -> None:
    from promptci.compare import report
    from promptci.report.html import render

    base, head = flaky_sides(4)
    c = run_compare(tmp_path, base, head)
    (s,) = c.suites
    assert s.detectable is not None and s.detectable.drop is not None
    pts = report.points(s.detectable.drop)
    comment = report.markdown(c)
    assert f"this suite detects drops of {pts} points or more (80% power, α 0.05)" in comment
    assert "10 flaky case(s): their repeats disagree, listed apart from regressions" in comment
    assert "| case f3 | 1/4 |" not in comment and "| case f3 | 2/4 | 2/4 |" in comment
    data = report.as_dict(c)
    assert data["suites"][0]["detectable_drop"] == s.detectable.drop and len(data["suites"][0]["flaky"]) == 10
    page = render([], data)
    assert f"&ge; {s.detectable.drop * 100:.1f} pts" in page and "Flaky cases" in page and "case f3" in page
    assert "verdict-regressed" in page

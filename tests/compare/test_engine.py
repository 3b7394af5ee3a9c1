"""The comparison engine and gate policy, on rows written straight into a real DuckDB store."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptci.compare.engine import Comparison, compare
from promptci.compare.sides import Side, load
from promptci.config import Config, GateConfig, GatePolicy
from promptci.project import Project
from promptci.store import ResultRow, Store, now


def row(
    run: str,
    case: str,
    score: float | None,
    *,
    repeat: int = 0,
    suite: str = "s",
    model: str = "m",
    params: str = "p",
    error: str | None = None,
) -> ResultRow:
    return ResultRow(
        run_id=run,
        suite=suite,
        suite_hash="sh",
        prompt="pr",
        prompt_hash="hash-" + run,
        prompt_commit=None,
        case_id=case,
        case_name=f"case {case}",
        repeat_index=repeat,
        model_id=model,
        params_hash=params,
        input="",
        expected="",
        output=None if error else f"answer {case}",
        scores=None,
        score=score,
        passed=None if score is None else score >= 1.0,
        error=error,
        latency_ms=1.0,
        tokens_in=1,
        tokens_out=1,
        cost=None,
        cached=False,
        created_at=now(),
    )


def run_compare(
    tmp_path: Path, base: list[ResultRow], head: list[ResultRow], gate: GateConfig | None = None
) -> Comparison:
    project = Project(tmp_path, Config())
    with Store(tmp_path / "r.duckdb") as store:
        for run in ("base", "head"):
            store.start_run(run, git_commit=None, branch=None, dirty=None, command="", config_hash="")
        store.add_results(base + head)
        sides = [load(project, store, Side(r, "run", run_id=r), f"t_{r}") for r in ("base", "head")]
        return compare(store, sides[0], sides[1], gate or GateConfig())


def test_added_removed_and_errored_cases_are_listed_not_paired(tmp_path: Path) -> None:
    base = [row("base", c, 1.0) for c in "abcd"] + [row("base", "x", 1.0)]
    head = [row("head", c, 1.0) for c in "abc"] + [row("head", "d", None, error="HTTP 500"), row("head", "y", 0.0)]
    (s,) = run_compare(tmp_path, base, head).suites
    assert s.stats.n == 3 and s.added == ["case y"] and s.removed == ["case x"] and s.errors == (0, 1)
    assert s.verdict == "unchanged" and s.flips == []


def test_repeats_are_averaged_per_case(tmp_path: Path) -> None:
    base = [row("base", c, 1.0, repeat=r) for c in "ab" for r in range(3)]
    head = [row("head", "a", v, repeat=r) for r, v in enumerate((1.0, 0.0, 1.0))]
    head += [row("head", "b", v, repeat=r) for r, v in enumerate((0.0, 0.0, 1.0))]
    (s,) = run_compare(tmp_path, base, head).suites
    assert s.stats.n == 2 and s.stats.head_mean == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert s.stats.test == "permutation" and s.repeats == 3  # per-case means, never McNemar on one draw
    # both head cases' repeats disagree: flaky, listed apart, not flips
    assert [(f.name, f.base, f.head) for f in s.flaky] == [("case a", (3, 3), (2, 3)), ("case b", (3, 3), (1, 3))]
    assert s.flips == []


def test_verdicts_follow_the_policy(tmp_path: Path) -> None:
    cases = [str(i) for i in range(30)]
    improved = run_compare(tmp_path / "i", [row("base", c, 0.0) for c in cases], [row("head", c, 1.0) for c in cases])
    assert improved.verdict == "improved"
    few = run_compare(
        tmp_path / "f",
        [row("base", c, 1.0) for c in "abc"],
        [row("head", "a", 0.0)] + [row("head", c, 1.0) for c in "bc"],
    )
    # one flip in three cases: a drop cannot be ruled out, and no drop could be detected at this size
    assert few.verdict == "underpowered" and few.suites[0].detectable.drop is None  # type: ignore[union-attr]
    tolerated = run_compare(
        tmp_path / "t",
        [row("base", c, 1.0) for c in cases],
        [row("head", c, 0.0 if int(c) < 10 else 1.0) for c in cases],
        GateConfig(suites={"s": GatePolicy(max_drop=0.5)}),
    )
    assert tolerated.suites[0].verdict != "regressed" and tolerated.suites[0].max_drop == 0.5
    strict = run_compare(
        tmp_path / "s",
        [row("base", c, 1.0) for c in cases],
        [row("head", c, 0.0 if int(c) < 10 else 1.0) for c in cases],
    )
    assert strict.verdict == "regressed" and strict.suites[0].stats.p_value < 0.05


def test_mismatched_models_and_parameters_are_reported(tmp_path: Path) -> None:
    c = run_compare(tmp_path, [row("base", "a", 1.0)], [row("head", "a", 1.0, model="other", params="q")])
    assert c.mismatches == ["s × pr: model differ: m vs other", "s × pr: generation parameters differ: p vs q"]


def test_a_suite_on_one_side_only(tmp_path: Path) -> None:
    c = run_compare(tmp_path, [row("base", "a", 1.0)], [row("head", "a", 1.0), row("head", "a", 1.0, suite="new")])
    new = next(s for s in c.suites if s.suite == "new")
    assert new.mismatches == ["no results on the base side (a new suite or prompt)"]


def test_gate_overrides() -> None:
    gate = GateConfig(max_drop=0.01, alpha=0.05, suites={"noisy": GatePolicy(alpha=0.01)})
    assert gate.for_suite("noisy") == (0.01, 0.01) and gate.for_suite("other") == (0.01, 0.05)

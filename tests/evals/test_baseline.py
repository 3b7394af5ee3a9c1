"""The best constant answer, on the shipped suites, computed by their own scorers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from promptci.evals.baseline import answer_key, best_constant, collapsed, expected_text
from promptci.evals.plan import Task, build_plan, suite_files
from promptci.evals.scoring import make_scorer
from promptci.project import Project

ROOT = Path(__file__).resolve().parents[2]


def task(name: str) -> tuple[Project, Task]:
    project = Project.discover(ROOT)
    (found,) = build_plan(project, suite_files(project, (str(ROOT / f"evals/{name}.yaml"),))).tasks
    return project, found


@pytest.mark.parametrize("name", ["sports_understanding", "navigate", "causal_judgment", "object_counting"])
def test_the_best_constant_is_the_majority_answer(name: str) -> None:
    project, t = task(name)
    constant = best_constant(t.suite, make_scorer(t, project), t.cases)
    assert constant is not None and constant.n == len(t.cases)
    value, count = Counter(expected_text(c) for c in t.cases).most_common(1)[0]
    assert constant.score == pytest.approx(count / len(t.cases))
    assert constant.label == f'"{value}"'


def test_per_case_options_are_tried_by_position() -> None:
    project, t = task("date_understanding")
    scorer = make_scorer(t, project)
    constant = best_constant(t.suite, scorer, t.cases)
    assert constant is not None
    positions = Counter(c.data["choices"].index(c.expected) for c in t.cases if c.expected in c.data["choices"])
    _, count = positions.most_common(1)[0]
    assert constant.score >= count / len(t.cases)
    # The shipped copy has shuffled options: no position is a free lunch.
    assert constant.score < 0.5
    # The same suite with the gold answer always first would give it away.
    first = [c for c in t.cases if c.data["choices"][0] == c.expected]
    assert first and best_constant(t.suite, scorer, first).label == "always option 1"  # type: ignore[union-attr]


def test_collapse_is_one_answer_for_varied_gold() -> None:
    gold = ["yes", "no"] * 5
    assert collapsed(["yes"] * 10, gold)
    assert not collapsed(["yes", "no"] * 5, gold)
    assert not collapsed(["yes"] * 10, ["yes"] * 10)  # the gold answer is one value too
    assert not collapsed([""] * 10, gold)  # no answers at all is not one answer
    assert not collapsed(["yes"] * 4, gold[:4])  # too few to tell
    # Non-answers are left out of the count, not counted against the collapse.
    assert collapsed(["(b)"] * 17 + [""] * 3, ["(a)", "(b)"] * 10)
    assert not collapsed(["(b)"] * 4 + [""] * 16, ["(a)", "(b)"] * 10)  # four answers are too few
    assert not collapsed(["(b)"] * 15 + ["(a)"] * 3 + [""] * 2, ["(a)", "(b)"] * 10)  # 15 of 18


def test_answer_key_reads_the_choice() -> None:
    _, t = task("sports_understanding")
    case = t.cases[0]
    assert answer_key(t.suite, "No, the sentence is not plausible.", case) == "implausible"
    assert answer_key(t.suite, "Plausible!", case) == "plausible"
    assert answer_key(t.suite, "I cannot say", case) == ""

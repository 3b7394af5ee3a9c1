"""Lint's warnings about a suite's data, read once per lint: a gold answer that a constant
would score (``answer-balance``), and rows that repeat an earlier case (``duplicate-rows``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..diagnostics import Facts
from ..errors import PromptciError
from ..files import read_text
from ..project import Project
from ..yamlio import parse_yaml

if TYPE_CHECKING:
    from ..evals.dataset import EvalCase
    from ..evals.suite import Suite


def dataset_warnings(project: Project, f: Facts) -> list[tuple[str, str]]:
    """What a suite's data says about the suite, read once: a gold answer a constant would score
    (``answer-balance``), and rows that repeat an earlier case (``duplicate-rows``)."""
    from ..evals.dataset import distinct, read_rows, repeated_rows
    from ..evals.suite import Suite

    path = project.root / f.path
    try:
        suite = Suite.model_validate(
            parse_yaml(read_text(path, f.path), f.path).data, context={"schemas_checked": True}
        )
        if suite.dataset is None:
            return []
        limit = suite.dataset.limit
        rows = read_rows(
            project, path, suite.model_copy(update={"dataset": suite.dataset.model_copy(update={"limit": None})})
        )
    except (PromptciError, ValueError):
        return []  # reported elsewhere
    written = rows[: len(suite.cases) + limit] if limit else rows  # what eval reads
    found = [("answer-balance", m) for m in _answer_balance(suite, distinct(rows))]
    return found + [("duplicate-rows", m) for m in _repeats(repeated_rows(written))]


def _repeats(repeats: list[tuple[EvalCase, EvalCase]]) -> list[str]:
    """Rows that repeat an earlier case (the same variables and expected answer): one case, counted once."""
    if not repeats:
        return []
    again, first = repeats[0]
    return [
        f"{len(repeats)} row(s) repeat an earlier case (same variables and expected answer), e.g. {again.name}"
        f" repeats {first.name}; each case is evaluated and counted once"
    ]


def _answer_balance(suite: Suite, cases: list[EvalCase]) -> list[str]:
    """Where a choice suite's gold answer sits on one label or one option position far above chance
    (over 60% of 50 or more rows): a constant answer would score that much."""
    from collections import Counter

    from ..evals.suite import ChoiceScorer

    scorer = next((s for s in suite.scorers if isinstance(s, ChoiceScorer)), None)
    if scorer is None:
        return []
    labels: Counter[str] = Counter()
    positions: Counter[int] = Counter()
    width = 0
    for case in cases:
        choices = scorer.choices if scorer.choices is not None else case.data.get(scorer.choices_from or "")
        if case.expected is None or not isinstance(choices, list) or not choices:
            continue
        gold = str(case.expected).strip().casefold()
        labels[str(case.expected)] += 1
        folded = [str(c).strip().casefold() for c in choices]
        if gold in folded:
            positions[folded.index(gold)] += 1
            width = max(width, len(folded))
    n = sum(labels.values())
    if n < 50:
        return []
    found = []
    label, count = labels.most_common(1)[0] if labels else ("", 0)
    if count / n > 0.6:
        share = f"{count} of {n} rows ({count / n:.0%})"
        found.append(f"the gold answer is '{label}' in {share}: always answering it scores that")
    if scorer.choices_from and positions:
        at, count = positions.most_common(1)[0]
        if count / n > 0.6 and count / n > 1 / max(width, 1):
            ordinal = ["first", "second", "third", "fourth", "fifth"][at] if at < 5 else f"#{at + 1}"
            found.append(
                f"the gold answer is the {ordinal} option in {count} of {n} rows ({count / n:.0%}):"
                " always picking that position scores that; shuffle the options"
            )
    return found

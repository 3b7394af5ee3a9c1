"""Scoring instruction variants through the eval engine, on the real SmolLM2."""

from __future__ import annotations

import pytest

from promptci.evals.plan import build_plan, suite_files
from promptci.optimize.evaluate import Evaluator
from promptci.project import Project

from ..conftest import Repo

pytestmark = pytest.mark.slow


def test_variants_are_scored_stored_and_cached(repo: Repo) -> None:
    suite = (repo.path / "evals/sentiment.yaml").read_text().replace("threshold: 0.7\n", "model: {max_tokens: 4}\n")
    repo.write("evals/sentiment.yaml", suite)
    project = Project.discover(repo.path)
    (task,) = build_plan(project, suite_files(project)).tasks
    evaluator = Evaluator(project, task)
    assert evaluator.initial.startswith("You label product reviews.")
    cases = task.cases[:3]

    first = evaluator.score(evaluator.initial, cases)
    assert first.calls == 3 and set(first.per_case) == {c.id for c in cases} and first.errors == 0
    variant = evaluator.variant("Reply with positive or negative only.")
    assert variant.content_hash != task.prompt.content_hash
    assert variant.spec.messages and variant.spec.messages[0].content == "Reply with positive or negative only."
    second = evaluator.score("Reply with positive or negative only.", cases)
    assert second.calls == 3 and second.run_id != first.run_id
    again = evaluator.score(evaluator.initial, cases)
    assert again.calls == 0 and again.per_case == first.per_case  # served from the cache

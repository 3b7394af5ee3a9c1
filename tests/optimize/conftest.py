"""A repository holding one shared BIG-bench task, for optimizer tests."""

from __future__ import annotations

import shutil

import pytest

from ..conftest import REPO_ROOT, Repo

BANANA = "Always reply with the single word banana."


@pytest.fixture
def navigate(repo: Repo) -> Repo:
    """The dogfooded navigate prompt and suite (``limit`` cases), started from a bad instruction."""
    shutil.copy(REPO_ROOT / "evals/data/bigbench/navigate.jsonl", repo.path / "evals/navigate.jsonl")
    prompt = (REPO_ROOT / "prompts/navigate.yaml").read_text()
    original = "You track positions on a grid. Answer with one word, True or False."
    assert original in prompt
    repo.write("prompts/navigate.yaml", "# Owned by the grid team.\n" + prompt.replace(original, BANANA))
    suite = (REPO_ROOT / "evals/navigate.yaml").read_text()
    repo.write("evals/navigate.yaml", suite.replace("data/bigbench/navigate.jsonl", "navigate.jsonl"))
    repo.commit("navigate")
    return repo


def set_limit(repo: Repo, limit: int) -> None:
    suite = (repo.path / "evals/navigate.yaml").read_text().replace("limit: 40", f"limit: {limit}")
    repo.write("evals/navigate.yaml", suite)

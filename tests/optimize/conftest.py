"""Repositories holding one shared BIG-bench task, as dogfooded in this project, for optimizer tests."""

from __future__ import annotations

import re
import shutil

import pytest

from ..conftest import REPO_ROOT, Repo


def add_task(repo: Repo, task: str, limit: int) -> None:
    """Copy the task's prompt, suite (first ``limit`` cases) and data; commit them."""
    shutil.copy(REPO_ROOT / f"evals/data/bigbench/{task}.jsonl", repo.path / f"evals/{task}.jsonl")
    repo.write(
        f"prompts/{task}.yaml", "# Owned by the evals team.\n" + (REPO_ROOT / f"prompts/{task}.yaml").read_text()
    )
    suite = (REPO_ROOT / f"evals/{task}.yaml").read_text()
    suite = suite.replace(f"data/bigbench/{task}.jsonl", f"{task}.jsonl").replace("limit: 40", f"limit: {limit}")
    repo.write(f"evals/{task}.yaml", suite)
    repo.commit(task)


@pytest.fixture
def navigate(repo: Repo) -> Repo:
    add_task(repo, "navigate", 40)
    return repo


@pytest.fixture
def sports(repo: Repo) -> Repo:
    """sports_understanding, where SmolLM2 answers "not plausible" and so scores near zero."""
    add_task(repo, "sports_understanding", 20)
    return repo


def set_limit(repo: Repo, task: str, limit: int) -> None:
    path = repo.path / f"evals/{task}.yaml"
    path.write_text(re.sub(r"limit: \d+", f"limit: {limit}", path.read_text()))

"""The hooks in .pre-commit-hooks.yaml, run by the real pre-commit framework."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import INIT_TEMPLATES, REPO_ROOT, Katan, git

pytestmark = pytest.mark.slow

BAD_PROMPT = "name: sentiment\ntemplate: 'Review: {{ review }'\nvariables: {review: string}\n"


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hook environment for the module: pre-commit installs promptci into it once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def _pre_commit(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    shutil.copytree(INIT_TEMPLATES / "prompts", path / "prompts")
    shutil.copy(INIT_TEMPLATES / "promptci.yaml", path / "promptci.yaml")
    git(path, "init", "-q", "-b", "main")
    return path


def test_try_repo_refuses_a_broken_prompt(project: Path, pre_commit_home: Path) -> None:
    git(project, "add", "-A")
    ok = _pre_commit(project, pre_commit_home, "try-repo", str(REPO_ROOT), "promptci-lint", "--all-files")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "promptci lint" in ok.stdout and "Passed" in ok.stdout

    (project / "prompts" / "sentiment.yaml").write_text(BAD_PROMPT)
    git(project, "add", "-A")
    bad = _pre_commit(project, pre_commit_home, "try-repo", str(REPO_ROOT), "promptci-lint", "--all-files")
    assert bad.returncode == 1
    assert "Failed" in bad.stdout
    assert "prompts/sentiment.yaml:2:11: error: template syntax" in bad.stdout


def test_installed_hook_makes_a_bad_commit_fail(project: Path, pre_commit_home: Path) -> None:
    rev = git(REPO_ROOT, "rev-parse", "HEAD")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {REPO_ROOT}\n    rev: {rev}\n    hooks:\n      - id: promptci-lint\n"
    )
    installed = _pre_commit(project, pre_commit_home, "install")
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PRE_COMMIT_HOME": str(pre_commit_home), "PRE_COMMIT_COLOR": "never"}

    def commit(message: str) -> subprocess.CompletedProcess[str]:
        git(project, "add", "-A")
        return subprocess.run(["git", "commit", "-m", message], cwd=project, env=env, capture_output=True, text=True)

    assert commit("good prompts").returncode == 0
    (project / "prompts" / "sentiment.yaml").write_text(BAD_PROMPT)
    refused = commit("break the prompt")
    assert refused.returncode != 0
    assert "prompts/sentiment.yaml:2:11: error: template syntax" in refused.stdout + refused.stderr
    assert git(project, "log", "--format=%s") == "good prompts"


def test_pre_push_hook_runs_the_changed_suites(
    project: Path, pre_commit_home: Path, katan: Callable[..., Katan]
) -> None:
    server = katan("-b", "echo")
    (project / "promptci.yaml").write_text(
        f"model: {{provider: openai, model: echo-model, params: {{base_url: '{server.base_url}'}}}}\n"
    )
    (project / "evals").mkdir()
    (project / "evals" / "echo.yaml").write_text(
        "prompts: [sentiment]\nscorers: [{type: contains, value: 'Review:'}]\nthreshold: 1.0\n"
        "cases: [{vars: {review: great}}, {vars: {review: awful}}]\n"
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    git(project, "checkout", "-q", "-b", "feature")
    args = ("try-repo", str(REPO_ROOT), "promptci-eval", "--hook-stage", "pre-push", "--all-files", "--verbose")
    unchanged = _pre_commit(project, pre_commit_home, *args)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "--changed: 0 suite(s) affected" in unchanged.stdout

    prompt = project / "prompts" / "sentiment.yaml"
    prompt.write_text(prompt.read_text().replace("Review: {{ review }}", "Text: {{ review }}"))
    git(project, "add", "-A")
    broken = _pre_commit(project, pre_commit_home, *args)
    assert broken.returncode == 1
    assert "--changed: 1 suite(s) affected" in broken.stdout and "FAIL" in broken.stdout

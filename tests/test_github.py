"""The GitHub files are valid, checked offline against the bundled schemas."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_the_github_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-actions",
            str(REPO_ROOT / "action.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_action_runs_the_documented_commands() -> None:
    import yaml

    steps = yaml.safe_load((REPO_ROOT / "action.yml").read_text())["runs"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    for command in (
        "promptci results pull",
        "promptci eval --changed",
        "promptci compare",
        "--run-missing",
        "promptci github comment",
        "promptci results push",
        "promptci bundle -o promptci-bundle.json",
        'promptci optimize "${select[@]}" --plan',
        'promptci optimize "$PROMPT" --push',
    ):
        assert command in script


def test_no_input_or_event_text_is_written_into_a_script() -> None:
    """Inputs and event fields reach the action's scripts through env:, as data; a branch named
    `$(curl …)` or an input holding a quote must never become script text."""
    import yaml

    steps = yaml.safe_load((REPO_ROOT / "action.yml").read_text())["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step.get("name")


TEMPLATES = sorted((REPO_ROOT / "promptci" / "templates" / "github").glob("*.yml"))


@pytest.mark.parametrize("workflow", WORKFLOWS + TEMPLATES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_job_has_the_least_permissions_it_needs(workflow: object) -> None:
    from pathlib import Path

    import yaml

    doc = yaml.safe_load(Path(str(workflow)).read_text())
    top = doc.get("permissions")
    assert top in ({}, {"contents": "read"}), "the workflow grants nothing (or read) by default"
    for name, job in doc["jobs"].items():
        granted = {**(top or {}), **(job.get("permissions") or {})}
        writes = {scope for scope, level in granted.items() if level == "write"}
        condition = str(job.get("if", ""))
        if "pull_request'" in condition and "==" in condition and "push" not in condition:
            assert "contents" not in writes, f"{name}: a PR job never pushes"
        if writes:
            assert job.get("permissions"), f"{name}: write access is asked for by the job that needs it"


@pytest.mark.parametrize("workflow", [p for p in WORKFLOWS + TEMPLATES if "optimize" in p.name], ids=lambda p: p.name)
def test_a_labeled_pr_from_a_fork_is_not_optimized(workflow: object) -> None:
    from pathlib import Path

    import yaml

    plan = yaml.safe_load(Path(str(workflow)).read_text())["jobs"]["plan"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in plan["if"]


def test_the_schema_check_can_fail(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1

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
        "promptci optimize $select --plan",
        'promptci optimize "${{ inputs.prompt }}" --push',
    ):
        assert command in script


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

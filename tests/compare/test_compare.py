"""`promptci compare` on real SmolLM2 outputs across two commits of a BIG-bench suite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from promptci.errors import ExitCode

from ..conftest import REPO_ROOT, Repo

pytestmark = pytest.mark.slow


@pytest.fixture
def navigate(repo: Repo) -> Repo:
    """The dogfood navigate prompt and a 20-case suite over the shipped BIG-bench data, committed."""
    shutil.copy(REPO_ROOT / "prompts/navigate.yaml", repo.path / "prompts/navigate.yaml")
    (repo.path / "evals/data").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "evals/data/bigbench/navigate.jsonl", repo.path / "evals/data/navigate.jsonl")
    suite = (REPO_ROOT / "evals/navigate.yaml").read_text()
    suite = suite.replace("data/bigbench/navigate.jsonl", "data/navigate.jsonl").replace("limit: 40", "limit: 20")
    repo.write("evals/navigate.yaml", suite)
    (repo.path / "evals/sentiment.yaml").unlink()
    repo.commit("navigate suite")
    assert repo.run("eval").code == ExitCode.OK  # the shipped prompt passes its threshold
    return repo


def worse(repo: Repo) -> None:
    text = (repo.path / "prompts/navigate.yaml").read_text()
    repo.write(
        "prompts/navigate.yaml", text.replace("Answer with one word, True or False.", "Answer with one word, Maybe.")
    )


def test_a_clear_regression_fails_the_gate_with_evidence(navigate: Repo) -> None:
    worse(navigate)
    navigate.commit("make navigate worse")
    out = {ext: navigate.path / f"report{ext}" for ext in (".json", ".md", ".xml")}
    args = [a for p in out.values() for a in ("-o", str(p))]
    missing = navigate.run("compare", "HEAD~1", "HEAD")
    assert missing.code == ExitCode.USAGE and "--run-missing" in missing.err

    result = navigate.run("compare", "HEAD~1", "HEAD", "--run-missing", *args)
    assert result.code == ExitCode.FAILED, result.out + result.err
    report = json.loads(out[".json"].read_text())
    (suite,) = report["suites"]
    assert report["verdict"] == suite["verdict"] == "regressed"
    assert suite["test"] == "mcnemar-exact" and suite["p_value"] < 0.05 and suite["delta"] < 0
    flips = suite["flips"]
    assert flips and all(f["direction"] == "pass→fail" for f in flips)
    assert all(f["base"]["output"] and f["head"]["output"] for f in flips)
    # Each flip shows the case's own question (its last user turn), clipped: not the instruction.
    assert all(f["input"] and len(f["input"]) <= 200 and "Maybe" not in f["input"] for f in flips)
    md = out[".md"].read_text()
    assert md.startswith("<!-- promptci-compare -->") and "**regressed**" in md and "pass→fail" in md
    assert f"{len(flips)} flipped case(s)" in md and "| case | input | flip |" in md
    assert flips[0]["input"][:40] in md
    junit = ET.parse(out[".xml"]).getroot()
    assert junit.find("testsuite/testcase[@name='gate']/failure") is not None
    assert "regressed" in result.out
    page = navigate.path / "report.html"
    assert navigate.run("report", "--html", str(page), "--compare", str(out[".json"])).code == 0
    html = page.read_text()
    assert 'Latest comparison: <span class="verdict-regressed">regressed</span>' in html
    assert f"{len(flips)} flipped case(s)" in html and html.count('class="point"') == 2
    assert "<th>input</th>" in html


def test_a_harmless_change_passes(navigate: Repo) -> None:
    text = (navigate.path / "prompts/navigate.yaml").read_text()
    navigate.write("prompts/navigate.yaml", text.replace("description: Decide", "description: Work out"))
    result = navigate.run("compare", "HEAD", "--run-missing", "--format", "json")
    assert result.code == ExitCode.OK, result.err
    (suite,) = json.loads(result.out)["suites"]
    assert suite["verdict"] == "unchanged" and suite["flips"] == [] and suite["p_value"] == 1.0
    assert suite["base_prompt_hash"] != suite["head_prompt_hash"]


def test_run_ids_as_sides_and_the_github_outputs(
    navigate: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    navigate.run("eval", "-o", str(tmp_path / "a.json"))
    first = json.loads((tmp_path / "a.json").read_text())["run_id"]
    worse(navigate)
    navigate.run("eval", "-o", str(tmp_path / "b.json"))
    second = json.loads((tmp_path / "b.json").read_text())["run_id"]
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = navigate.run("compare", first, second)
    assert result.code == ExitCode.FAILED
    assert "### promptci: **regressed**" in summary.read_text()
    line = next(
        i
        for i, text in enumerate((navigate.path / "prompts/navigate.yaml").read_text().splitlines(), 1)
        if text.startswith("messages:")
    )
    assert f"::error file=prompts/navigate.yaml,line={line},title=promptci regressed::navigate: regressed" in result.out


def test_mismatched_sides_are_refused(navigate: Repo, tmp_path: Path) -> None:
    navigate.run("eval", "-o", str(tmp_path / "a.json"))
    first = json.loads((tmp_path / "a.json").read_text())["run_id"]
    text = (navigate.path / "prompts/navigate.yaml").read_text()
    navigate.write("prompts/navigate.yaml", text.replace("max_tokens: 8", "max_tokens: 6"))
    navigate.run("eval", "-o", str(tmp_path / "b.json"))
    second = json.loads((tmp_path / "b.json").read_text())["run_id"]
    refused = navigate.run("compare", first, second)
    assert refused.code == ExitCode.USAGE and "generation parameters differ" in refused.err
    allowed = navigate.run("compare", first, second, "--allow-mismatch", "--format", "json")
    assert allowed.code == ExitCode.OK, allowed.err  # the same answers but for length: no regression
    (suite,) = json.loads(allowed.out)["suites"]
    assert any("generation parameters differ" in m for m in suite["mismatches"])  # compared, and flagged


def test_corrupt_database_is_refused_untouched(navigate: Repo) -> None:
    db = navigate.path / ".promptci/results.duckdb"
    db.write_bytes(b"garbage" * 1000)
    result = navigate.run("compare", "HEAD", "HEAD")
    assert result.code == ExitCode.USAGE and "not a DuckDB database" in result.err
    assert db.read_bytes() == b"garbage" * 1000

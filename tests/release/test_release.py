"""Prompts in production, end to end in a real repository: label two versions, split the traffic,
bundle, deploy without git, record outcomes keyed by user, and report the A/B test."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from promptci.cli import main
from promptci.errors import ExitCode

from ..conftest import Repo

APP = r"""
import json, sys, zlib
import promptci

for user in range(2000):
    prompt = promptci.load("sentiment", label="production", key=f"user-{user}", bundle="bundle.json")
    messages = prompt.render(review="It broke after a day.")
    assert messages[-1]["content"].startswith(("Review:", "Customer review:")), messages
    # the new wording does better: 80% of its users are satisfied, against 60%
    rate = 80 if prompt.render(review="x")[-1]["content"].startswith("Customer") else 60
    prompt.record(zlib.crc32(f"u{user}".encode()) % 100 < rate, channel="web")
heavy = {"click", "git", "duckdb", "openai", "torch", "rich", "pydantic", "transformers"} & set(sys.modules)
print(json.dumps(sorted(heavy)))
"""


def _two_versions(repo: Repo) -> tuple[str, str]:
    old = repo.git("rev-parse", "HEAD")
    path = repo.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text().replace("Review: {{ review }}", "Customer review: {{ review }}"))
    new = repo.commit("say whose review it is")
    return old, new


def test_a_split_release_from_bundle_to_ab_report(repo: Repo, tmp_path: Path) -> None:
    old, new = _two_versions(repo)
    assert repo.run("label", "set", "sentiment", "production", old).code == 0
    split = repo.run("label", "split", "sentiment", "production", f"{old}=0.9", "HEAD=0.1")
    assert split.code == 0, split.err
    assert f"{old[:10]} 90% / " in split.out
    assert repo.run("bundle", "-o", "bundle.json").code == 0
    bundle = json.loads((repo.path / "bundle.json").read_text())
    shares = bundle["prompts"]["sentiment"]["labels"]["production"]
    assert [(s["commit"], s["weight"]) for s in shares] == [(old, 0.9), (new, 0.1)]

    # Deployed as `git archive` leaves it: no .git, only the files and the bundle.
    app = tmp_path / "app"
    app.mkdir()
    archive = tmp_path / "app.tar"
    repo.git("archive", "-o", str(archive), "HEAD")
    with tarfile.open(archive) as tar:
        tar.extractall(app, filter="data")
    (app / "bundle.json").write_bytes((repo.path / "bundle.json").read_bytes())
    assert not (app / ".git").exists()
    ran = subprocess.run([sys.executable, "-c", APP], cwd=app, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == []  # none of the CLI's dependencies was imported

    log = app / "promptci-outcomes.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2000 and {line["label"] for line in lines} == {"production"}
    per_version: dict[str, int] = {}
    for line in lines:
        per_version[line["version"]] = per_version.get(line["version"], 0) + 1
    assert sorted(per_version.values())[0] in range(150, 251)  # about 10% of 2000 users

    report = repo.run("ab", "report", str(log), "--format", "json")
    assert report.code == 0, report.err
    (group,) = json.loads(report.out)
    main_version, other = group["versions"]
    assert main_version["control"] and main_version["commit"] == old and main_version["n"] > 1700
    assert other["commit"] == new and other["test"] == "two-proportion-z"
    assert other["delta"] > 0.1 and other["p_value"] < 0.001 and other["verdict"] == "improved"
    assert other["look"] == 1 and other["alpha"] == pytest.approx(0.025)
    again = repo.run("ab", "report", str(log), "--format", "json")  # the same outcomes: no new look
    assert "loaded 0 new outcomes (2000 already stored" in again.err
    assert json.loads(again.out)[0]["versions"][1]["look"] == 1
    text = repo.run("ab", "report", str(log))
    assert "sentiment@production" in text.out and "improved (two-proportion-z)" in text.out
    flipped = json.loads(repo.run("ab", "report", str(log), "--control", new[:8], "--format", "json").out)
    assert flipped[0]["versions"][0]["commit"] == new and flipped[0]["versions"][1]["verdict"] == "regressed"
    nothing = repo.run("ab", "report", str(log), "--control", "0000000")
    assert (
        nothing.code == ExitCode.USAGE and "--control 0000000 matches no version of sentiment@production" in nothing.err
    )
    page = tmp_path / "report.html"
    assert repo.run("report", "--html", str(page)).code == 0
    html = page.read_text()
    assert "A/B releases" in html and "sentiment@production" in html and 'class="verdict-improved"' in html


def test_the_same_key_gets_the_same_version_through_git_and_bundle(repo: Repo) -> None:
    import promptci

    old, new = _two_versions(repo)
    assert repo.run("label", "split", "sentiment", "production", f"{old}=0.5", f"{new}=0.5").code == 0
    assert repo.run("bundle", "-o", "bundle.json").code == 0
    bundle = repo.path / "bundle.json"
    for user in ("ada", "bob", "cy", "dee", "eve", "fay"):
        via_git = promptci.load("sentiment", label="production", key=user, root=repo.path)
        via_bundle = promptci.load("sentiment", label="production", key=user, bundle=bundle)
        assert via_git.version.commit == via_bundle.version.commit
        assert via_git.content_hash == via_bundle.content_hash
        assert via_git.render(review="ok") == via_bundle.render(review="ok")
        again = promptci.load("sentiment", label="production", key=user, bundle=bundle)
        assert again.version.commit == via_bundle.version.commit


def test_a_bundle_is_deterministic_and_refused_when_damaged(repo: Repo, tmp_path: Path) -> None:
    import promptci
    from promptci.errors import PromptciError

    old, _ = _two_versions(repo)
    assert repo.run("label", "set", "sentiment", "production", old).code == 0
    assert repo.run("bundle", "-o", "a.json").code == 0
    assert repo.run("bundle", "-o", "b.json").code == 0
    first = (repo.path / "a.json").read_bytes()
    assert first == (repo.path / "b.json").read_bytes()
    assert promptci.load("sentiment", bundle=repo.path / "a.json").version.commit == old
    body = json.loads(first)
    cases = {
        "truncated.json": first[: len(first) // 2],
        "tampered.json": first.replace(b"Answer with one word", b"Answer with two words"),
        "newer.json": json.dumps({**body, "version": 99}).encode(),
        "other.json": b'{"hello": "world"}',
    }
    expected = {
        "truncated.json": "not valid JSON",
        "tampered.json": "digest does not match",
        "newer.json": "newer than this promptci reads",
        "other.json": "not a promptci bundle",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PromptciError, match=expected[name]):
            promptci.load("sentiment", label="production", bundle=tmp_path / name)
    with pytest.raises(PromptciError, match="has no label 'staging'"):
        promptci.load("sentiment", label="staging", bundle=repo.path / "a.json")
    with pytest.raises(PromptciError, match="no prompt named 'nope'"):
        promptci.load("nope", bundle=repo.path / "a.json")


def test_bad_bundle_and_split_requests_exit_2(repo: Repo) -> None:
    old, new = _two_versions(repo)
    assert repo.run("label", "set", "sentiment", "production", old).code == 0
    unknown = repo.run("bundle", "--label", "staging")
    assert unknown.code == ExitCode.USAGE and "no prompt or pipeline has the label 'staging'" in unknown.err
    nobody = repo.run("bundle", "nope")
    assert nobody.code == ExitCode.USAGE and "no prompt or pipeline named 'nope'" in nobody.err
    weights = repo.run("label", "split", "sentiment", "production", f"{old}=0.9", f"{new}=0.2")
    assert weights.code == ExitCode.USAGE and "weights must sum to 1, not 1.1" in weights.err
    unreadable = repo.run("label", "split", "sentiment", "production", f"{old}=most", f"{new}=0.1")
    assert unreadable.code == ExitCode.USAGE and "cannot read" in unreadable.err
    same = repo.run("label", "split", "sentiment", "production", f"{old}=0.5", f"{old}=0.5")
    assert same.code == ExitCode.USAGE
    assert "production: '" + old + "'" in (repo.path / "labels.yaml").read_text()  # nothing moved


def test_a_rollback_is_a_label_move_that_history_names(repo: Repo) -> None:
    old, new = _two_versions(repo)
    assert repo.run("label", "set", "sentiment", "production", old).code == 0
    assert repo.run("label", "set", "sentiment", "production", new).code == 0
    assert repo.run("label", "set", "sentiment", "production", old).code == 0  # the rollback
    history = json.loads(repo.run("label", "history", "--format", "json").out)
    assert [m["kind"] for m in history] == ["rollback", "forward", "new"]
    assert repo.run("bundle", "-o", "bundle.json").code == 0
    bundle = json.loads((repo.path / "bundle.json").read_text())
    assert bundle["prompts"]["sentiment"]["labels"]["production"][0]["commit"] == old


def test_bad_outcome_lines_are_reported_and_the_rest_loaded(repo: Repo, tmp_path: Path) -> None:
    import promptci

    old, _ = _two_versions(repo)
    assert repo.run("label", "set", "sentiment", "production", old).code == 0
    log = tmp_path / "outcomes.jsonl"
    prompt = promptci.load("sentiment", label="production", root=repo.path, outcomes=log)
    for i in range(5):
        prompt.record(i % 2 == 0)
    with log.open("a") as fh:
        fh.write("this is not json\n")
        fh.write(
            '{"v": 1, "ts": "x", "prompt": "sentiment", "label": "production", "version": "v", "outcome": "yes"}\n'
        )
        fh.write('{"v": 1, "ts": "2026')  # a write cut short by a crash
    r = repo.run("ab", "report", str(log))
    assert r.code == 0
    assert f"{log}:6: not an outcome line: invalid JSON" in r.err
    assert f"{log}:7: not an outcome line: 'outcome' must be a finite number or a bool" in r.err
    assert f"{log}:8: not an outcome line: cut off" in r.err
    assert "loaded 5 new outcomes (0 already stored, 3 bad lines)" in r.err
    with pytest.raises(promptci.PromptciError, match="not loaded by label"):
        promptci.load("sentiment", root=repo.path).record(True)
    with pytest.raises(promptci.PromptciError, match="finite number or a bool"):
        prompt.record(float("nan"))


def test_outcomes_from_many_threads_are_whole_lines(repo: Repo, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import promptci

    old, _ = _two_versions(repo)
    assert repo.run("label", "set", "sentiment", "production", old).code == 0
    assert main(["-C", str(repo.path), "bundle", "-o", str(tmp_path / "bundle.json")]) == 0
    log = tmp_path / "outcomes.jsonl"
    prompt = promptci.load("sentiment", bundle=tmp_path / "bundle.json", outcomes=log)

    def record(i: int) -> None:
        prompt.record(float(i), note="x" * (i % 500))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(record, range(800)))
    values = sorted(json.loads(line)["outcome"] for line in log.read_text().splitlines())
    assert values == [float(i) for i in range(800)]


def test_a_pipeline_is_bundled_with_its_step_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The dogfood pipelines of this repository, bundled from a copy of it at latest."""
    import shutil

    from promptci.runtime import Bundle

    from ..conftest import REPO_ROOT, git

    project = tmp_path / "project"
    project.mkdir()
    for part in ("promptci.yaml", "prompts", "pipelines", "evals"):
        source = REPO_ROOT / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, project / part)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "prompts and pipelines")
    first = git(project, "rev-parse", "HEAD")
    step = project / "prompts/date_pick.yaml"
    step.write_text(step.read_text().replace("Reply with one of", "Answer with one of", 1))
    git(project, "commit", "-qam", "reword the answer step")
    # a pipeline takes labels as a prompt does: its version is its file's and its step prompts'
    assert main(["-C", str(project), "label", "set", "date_cot", "production", first]) == 0
    assert main(["-C", str(project), "lint"]) == 0
    out = tmp_path / "bundle.json"
    assert main(["-C", str(project), "bundle", "date_cot", "-o", str(out)]) == 0
    bundle = Bundle.open(out)
    assert bundle.names("pipelines") == ["date_cot"]
    assert bundle.labels("date_cot", "pipelines") == ["latest", "production"]
    released, newest = bundle.steps("date_cot", "production")["answer"], bundle.steps("date_cot")["answer"]
    assert "Reply with one of" in released.source and "Answer with one of" in newest.source
    steps = bundle.steps("date_cot")
    assert list(steps) == ["reason", "answer"]
    assert {p.name for p in steps.values()} == {"date_reason", "date_pick"}
    assert "What day is it?" in steps["reason"].render(question="What day is it?")[-1]["content"]


def test_split_labels_are_listed_linted_and_refused_where_a_version_is_needed(repo: Repo) -> None:
    old, new = _two_versions(repo)
    assert repo.run("label", "split", "sentiment", "production", f"{old}=0.75", f"{new}=0.25").code == 0
    listed = json.loads(repo.run("label", "ls", "--format", "json").out)
    assert [(e["commit"], e["weight"]) for e in listed] == [(old, 0.75), (new, 0.25)]
    assert repo.run("lint").code == 0
    # a split is two versions: evaluating or rendering it needs one of them named
    render = repo.run("render", "sentiment@production", "--var", "review=ok")
    assert render.code == ExitCode.USAGE and "splits traffic between versions" in render.err
    # a hand edit pointing one share at a commit that does not exist is a lint error at its line
    labels = repo.path / "labels.yaml"
    labels.write_text(labels.read_text().replace(new, "f" * 40))
    lint = repo.run("lint")
    assert lint.code == ExitCode.FAILED and "labels.yaml:" in lint.out and "not a commit in this repository" in lint.out
    labels.write_text(labels.read_text().replace("0.25", "0.5"))
    lint = repo.run("lint")
    assert lint.code == ExitCode.FAILED and "weights must sum to 1, not 1.25" in lint.out


def test_looks_spend_alpha_and_numbers_get_welch(repo: Repo, tmp_path: Path) -> None:
    """Two reports on a growing log are two looks; with a planned size they spend alpha by
    O'Brien-Fleming, and together never more than alpha."""
    import promptci

    old, new = _two_versions(repo)
    assert repo.run("label", "split", "sentiment", "production", f"{old}=0.5", f"{new}=0.5").code == 0
    log = tmp_path / "outcomes.jsonl"
    for user in range(200):
        prompt = promptci.load("sentiment", label="production", key=f"u{user}", root=repo.path, outcomes=log)
        prompt.record(float(user % 7) + (0.5 if prompt.version.commit == new else 0.0))  # numbers: Welch
    first = json.loads(repo.run("ab", "report", str(log), "--planned", "200", "--format", "json").out)
    for user in range(200, 400):
        prompt = promptci.load("sentiment", label="production", key=f"u{user}", root=repo.path, outcomes=log)
        prompt.record(float(user % 7) + (0.5 if prompt.version.commit == new else 0.0))
    second = json.loads(repo.run("ab", "report", str(log), "--planned", "200", "--format", "json").out)
    a, b = first[0]["versions"][1], second[0]["versions"][1]
    assert (a["look"], b["look"]) == (1, 2) and a["test"] == b["test"] == "welch-t"
    assert a["alpha"] < 0.01 < b["alpha"]  # strict early, most of alpha at the planned end
    assert a["alpha"] + b["alpha"] <= 0.05 + 1e-12
    expected = 0.5 if b["commit"] == new else -0.5  # the other version is the main one: it got more users
    assert b["n"] > a["n"] and b["delta"] == pytest.approx(expected, abs=0.3)


def test_the_runtime_knows_every_variable_type_the_prompt_format_does() -> None:
    from typing import get_args

    from promptci.prompts.prompt import VARIABLE_TYPES
    from promptci.prompts.spec import VariableType

    assert set(VARIABLE_TYPES) == set(get_args(VariableType))

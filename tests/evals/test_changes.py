"""`promptci eval --changed`: only the suites a change touches."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from promptci.evals.changes import changed_suites
from promptci.evals.plan import suite_files
from promptci.project import Project

from ..conftest import Katan, Repo

OTHER = "name: other\ntemplate: 'Q: {{ q }}'\nvariables: {q: string}\n"


@pytest.fixture
def two(repo: Repo) -> Repo:
    """main has two prompts with a suite each; work continues on a branch."""
    repo.write("prompts/other.yaml", OTHER)
    repo.write("evals/data/other.jsonl", '{"q": "one"}\n')
    repo.write(
        "evals/other.yaml",
        "prompts: [other]\ndataset: {path: data/other.jsonl, vars: {q: q}}\nscorers: [{type: exact}]\n",
    )
    repo.commit("two prompts")
    repo.git("checkout", "-q", "-b", "feature")
    return repo


def _changed(repo: Repo, base: str | None = None) -> list[str]:
    project = Project.discover(repo.path)
    selected, _ = changed_suites(project, suite_files(project), base)
    return [project.rel(p) for p in selected]


def test_nothing_changed(two: Repo) -> None:
    assert _changed(two) == []


def test_uncommitted_prompt_edit_selects_its_suite(two: Repo) -> None:
    two.write("prompts/other.yaml", OTHER.replace("Q:", "Question:"))
    assert _changed(two) == ["evals/other.yaml"]


def test_committed_change_on_the_branch_counts(two: Repo) -> None:
    two.write("prompts/sentiment.yaml", (two.path / "prompts/sentiment.yaml").read_text() + "# note\n")
    two.commit("touch sentiment")
    assert _changed(two) == ["evals/sentiment.yaml"]
    assert _changed(two, base="HEAD") == []


def test_dataset_and_suite_edits_and_new_files(two: Repo) -> None:
    two.write("evals/data/other.jsonl", '{"q": "two"}\n')
    assert _changed(two) == ["evals/other.yaml"]
    two.git("checkout", "--", "evals/data/other.jsonl")
    two.write("evals/new.yaml", "prompts: [sentiment]\ncases: [{vars: {review: x}}]\nscorers: [{type: exact}]\n")
    assert _changed(two) == ["evals/new.yaml"]


def test_config_change_selects_everything(two: Repo) -> None:
    two.write("promptci.yaml", (two.path / "promptci.yaml").read_text() + "\n# tweak\n")
    assert _changed(two) == ["evals/other.yaml", "evals/sentiment.yaml"]


def test_cli_runs_only_the_changed_suite(two: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo")
    two.use_model_server(server.base_url)
    two.commit("use the echo server")
    two.write("prompts/other.yaml", OTHER.replace("Q:", "Question:"))
    out = two.path / "o.json"
    result = two.run("eval", "--changed", "--base", "HEAD", "-o", str(out))
    assert "--changed: 1 suite(s) affected" in result.err
    import json

    assert [s["suite"] for s in json.loads(out.read_text())["suites"]] == ["other"]
    assert two.run("eval", "--changed", "--base", "no-such-ref").code == 2

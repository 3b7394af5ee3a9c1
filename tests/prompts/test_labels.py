"""Labels: movable pointers kept in a tracked file, every move a commit."""

from __future__ import annotations

import json

import pytest

import promptci
from promptci.errors import NotFoundError

from ..conftest import SUMMARIZE, Repo, git
from ..hostile.conftest import one_line


@pytest.fixture
def two_versions(repo: Repo) -> tuple[str, str]:
    repo.write("prompts/summarize.yaml", SUMMARIZE)
    v1 = repo.commit("v1")
    repo.write("prompts/summarize.yaml", SUMMARIZE.replace("at most", "under"))
    v2 = repo.commit("v2")
    return v1, v2


def test_label_set_commits_only_the_labels_file(repo: Repo, two_versions: tuple[str, str]) -> None:
    v1, _ = two_versions
    repo.write("prompts/sentiment.yaml", (repo.path / "prompts/sentiment.yaml").read_text() + "# staged\n")
    repo.git("add", "prompts/sentiment.yaml")
    result = repo.run("label", "set", "summarize", "production", "HEAD~1")
    assert result.code == 0, result.err
    assert repo.git("log", "-1", "--format=%s") == f"promptci: label summarize@production -> {v1[:10]}"
    assert repo.git("show", "--name-only", "--format=", "HEAD") == "labels.yaml"
    assert repo.git("diff", "--cached", "--name-only") == "prompts/sentiment.yaml"  # still staged
    assert "under" not in promptci.load("summarize", label="production", root=repo.path).render(text="x")[1]["content"]


def test_label_resolves_by_name_at_syntax(repo: Repo, two_versions: tuple[str, str]) -> None:
    repo.run("label", "set", "summarize", "staging")
    assert "under" in repo.run("show", "summarize@staging").out


def test_label_moves_are_an_audit_trail(repo: Repo, two_versions: tuple[str, str]) -> None:
    v1, v2 = two_versions
    assert repo.run("label", "set", "summarize", "production", v1).code == 0
    assert repo.run("label", "set", "summarize", "production", v2).code == 0
    initial = repo.git("rev-list", "--max-parents=0", "HEAD")  # where sentiment last changed
    assert repo.run("label", "set", "sentiment", "production").code == 0
    assert repo.run("label", "rm", "sentiment", "production").code == 0
    moves = json.loads(repo.run("label", "history", "--format", "json").out)
    assert [(m["prompt"], m["old"], m["new"]) for m in moves] == [
        ("sentiment", initial, None),
        ("sentiment", None, initial),
        ("summarize", v1, v2),
        ("summarize", None, v1),
    ]
    assert all(m["author"] == "Test User" and m["date"] and m["commit"] for m in moves)
    only = json.loads(repo.run("label", "history", "summarize", "--label", "production", "--format", "json").out)
    assert len(only) == 2


def test_setting_the_same_version_twice_makes_no_commit(repo: Repo, two_versions: tuple[str, str]) -> None:
    repo.run("label", "set", "summarize", "production")
    head = repo.git("rev-parse", "HEAD")
    result = repo.run("label", "set", "summarize", "production")
    assert "already points" in result.out and repo.git("rev-parse", "HEAD") == head


def test_a_label_stores_the_commit_that_last_changed_the_prompt(repo: Repo, two_versions: tuple[str, str]) -> None:
    repo.write("unrelated.txt", "x")
    repo.commit("unrelated")
    repo.run("label", "set", "summarize", "production", "HEAD")
    assert json.loads(repo.run("label", "ls", "--format", "json").out)[0]["commit"] == two_versions[1]


def test_label_on_a_revision_without_the_prompt_is_refused_and_nothing_written(
    repo: Repo, two_versions: tuple[str, str]
) -> None:
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    result = repo.run("label", "set", "summarize", "production", first)
    assert result.code == 2 and "no prompt named 'summarize' at" in result.err
    assert not (repo.path / "labels.yaml").exists()


def test_bad_label_names_are_refused(repo: Repo, two_versions: tuple[str, str]) -> None:
    assert "reserved" in repo.run("label", "set", "summarize", "latest").err
    assert repo.run("label", "set", "summarize", "Prod!").code == 2


def test_unknown_label_lists_the_known_ones(repo: Repo, two_versions: tuple[str, str]) -> None:
    repo.run("label", "set", "summarize", "production")
    with pytest.raises(NotFoundError, match=r"no label 'prod'.*labels: production"):
        promptci.load("summarize", label="prod", root=repo.path)


def test_no_commit_writes_the_file_only(repo: Repo, two_versions: tuple[str, str]) -> None:
    head = repo.git("rev-parse", "HEAD")
    assert repo.run("label", "set", "summarize", "staging", "--no-commit").code == 0
    assert repo.git("rev-parse", "HEAD") == head
    assert "staging:" in (repo.path / "labels.yaml").read_text()


def test_shas_are_quoted_so_yaml_keeps_them_strings(repo: Repo) -> None:
    from promptci.prompts.labelfile import dump_labels, parse_labels

    shas = {"a": "0" * 40, "b": "1e" + "0" * 38}  # an int and a float to an unquoted YAML reader
    labels, _ = parse_labels(dump_labels({"p": shas}), "labels.yaml")
    assert labels == {"p": shas}


def test_failed_commit_leaves_the_labels_file_unchanged(repo: Repo, two_versions: tuple[str, str]) -> None:
    repo.run("label", "set", "summarize", "production", "HEAD~1")
    before = (repo.path / "labels.yaml").read_text()
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'labels are frozen this week' >&2\necho 'see the release calendar' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = repo.run("label", "set", "summarize", "production", "HEAD")
    assert result.code == 2 and "git commit failed" in result.err
    assert "labels are frozen this week" in one_line(result.err)
    assert (repo.path / "labels.yaml").read_text() == before
    # nothing left staged either: the next plain `git commit` must not carry the refused move
    assert git(repo.path, "status", "--porcelain", "--", "labels.yaml").strip() == ""


def test_label_ls(repo: Repo, two_versions: tuple[str, str]) -> None:
    repo.run("label", "set", "summarize", "production", "HEAD~1")
    rows = json.loads(repo.run("label", "ls", "--format", "json").out)
    assert rows == [{"prompt": "summarize", "label": "production", "commit": two_versions[0]}]
    header, row = repo.run("label", "ls", "summarize").out.splitlines()  # piped: the header stays
    assert header.startswith("prompt\tlabel\tcommit") and row.startswith("summarize\tproduction\t")


def test_a_name_too_long_for_the_labels_file_is_refused_before_anything_is_written(repo: Repo) -> None:
    name = "a" * 5000
    repo.write("prompts/long.yaml", SUMMARIZE.replace("name: summarize", f"name: {name}"))
    repo.commit("a long name")
    r = repo.run("label", "set", name, "production")
    assert r.code == 2, r
    assert not (repo.path / "labels.yaml").exists()
    listed = repo.run("ls")  # the fault is named where it is: the prompt file, not a labels file
    assert listed.code == 2 and "prompts/long.yaml" in one_line(listed.err) and "labels.yaml" not in listed.err
    linted = repo.run("lint")
    assert linted.code == 1 and "prompts/long.yaml:" in linted.out

"""Versions are git history: NAME@REV for any revision, identity = content hash + commit."""

from __future__ import annotations

import json

import pytest

import promptci
from promptci.errors import InputError, NotFoundError

from ..conftest import SUMMARIZE, Repo


@pytest.fixture
def history(repo: Repo) -> dict[str, str]:
    """Three versions of `summarize`: v1 (tagged), v2 on main, v3 on a branch."""
    repo.write("prompts/summarize.yaml", SUMMARIZE)
    v1 = repo.commit("add summarize")
    repo.git("tag", "v1")
    repo.write("prompts/summarize.yaml", SUMMARIZE.replace("at most", "no more than"))
    v2 = repo.commit("tighten wording")
    repo.git("checkout", "-q", "-b", "experiment")
    repo.write("prompts/summarize.yaml", SUMMARIZE.replace("at most", "about"))
    v3 = repo.commit("experiment")
    repo.git("checkout", "-q", "main")
    return {"v1": v1, "v2": v2, "v3": v3}


def _user(prompt: promptci.Prompt) -> str:
    return prompt.render(text="T")[1]["content"]


@pytest.mark.parametrize(
    "rev,expected",
    [("v1", "at most"), ("HEAD~1", "at most"), ("HEAD", "no more than"), ("experiment", "about"), ("main", "no more")],
)
def test_any_git_revision_resolves(repo: Repo, history: dict[str, str], rev: str, expected: str) -> None:
    assert expected in _user(promptci.load("summarize", rev=rev, root=repo.path))


def test_sha_and_short_sha_resolve(repo: Repo, history: dict[str, str]) -> None:
    for rev in (history["v1"], history["v1"][:8]):
        prompt = promptci.load("summarize", rev=rev, root=repo.path)
        assert prompt.rev == history["v1"]
        assert "at most" in _user(prompt)


def test_working_tree_is_the_default_and_tracks_uncommitted_edits(repo: Repo, history: dict[str, str]) -> None:
    clean = promptci.load("summarize", root=repo.path)
    assert clean.version.commit == history["v2"] and not clean.version.dirty
    repo.write("prompts/summarize.yaml", SUMMARIZE.replace("at most", "roughly"))
    edited = promptci.load("summarize", root=repo.path)
    assert "roughly" in _user(edited)
    assert edited.version.dirty and edited.version.commit is None
    assert edited.content_hash != clean.content_hash


def test_version_identity_is_content_hash_plus_last_commit(repo: Repo, history: dict[str, str]) -> None:
    repo.write("README", "unrelated change")
    repo.commit("unrelated")
    at_head = promptci.load("summarize", rev="HEAD", root=repo.path)
    assert at_head.version.commit == history["v2"]  # the commit that last changed the file
    at_v2 = promptci.load("summarize", rev=history["v2"], root=repo.path)
    assert at_head.content_hash == at_v2.content_hash


def test_comments_and_layout_do_not_change_the_content_hash(repo: Repo, history: dict[str, str]) -> None:
    before = promptci.load("summarize", root=repo.path).content_hash
    text = (repo.path / "prompts/summarize.yaml").read_text()
    repo.write(
        "prompts/summarize.yaml",
        "# a comment\n" + text.replace("description: Summarize a text.", "description:   'Summarize a text.'"),
    )
    assert promptci.load("summarize", root=repo.path).content_hash == before


def test_unknown_revision_and_missing_prompt(repo: Repo, history: dict[str, str]) -> None:
    with pytest.raises(NotFoundError, match="unknown revision 'nope'"):
        promptci.load("summarize", rev="nope", root=repo.path)
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    with pytest.raises(NotFoundError, match="no prompt named 'summarize' at"):
        promptci.load("summarize", rev=first, root=repo.path)


def test_name_clash_is_refused_with_both_files(repo: Repo) -> None:
    repo.write("prompts/a.yaml", "name: dup\ntemplate: a\n")
    repo.write("prompts/nested/b.yaml", "name: dup\ntemplate: b\n")
    with pytest.raises(InputError, match=r"declared by 2 files: prompts/a\.yaml, prompts/nested/b\.yaml"):
        promptci.load("dup", root=repo.path)


def test_a_broken_file_is_named_when_a_prompt_is_not_found(repo: Repo) -> None:
    repo.write("prompts/sentiment.yaml", "name: sentiment\ntemplate: a: b\n")
    with pytest.raises(InputError) as err:
        promptci.load("sentiment", root=repo.path)
    # the broken file's own error, since it may be the prompt asked for
    assert str(err.value) == (
        "prompts/sentiment.yaml:2:12: invalid YAML: mapping values are not allowed in this context"
        " (no readable file declares prompt 'sentiment'; this one may)"
    )


def test_prompt_name_need_not_match_file_name(repo: Repo) -> None:
    repo.write("prompts/some/file.yaml", "name: other\ntemplate: hi\n")
    repo.commit("nested")
    assert promptci.load("other", rev="HEAD", root=repo.path).path == "prompts/some/file.yaml"


def test_log_lists_versions_following_renames(repo: Repo, history: dict[str, str]) -> None:
    repo.git("mv", "prompts/summarize.yaml", "prompts/summary.yaml")
    repo.commit("rename file")
    result = repo.run("log", "summarize", "--format", "json")
    assert result.code == 0
    versions = json.loads(result.out)
    assert [v["commit"]["message"] for v in versions] == ["rename file", "tighten wording", "add summarize"]
    assert versions[0]["path"] == "prompts/summary.yaml" and versions[2]["path"] == "prompts/summarize.yaml"
    assert versions[0]["content_hash"] == versions[1]["content_hash"] != versions[2]["content_hash"]
    assert all(v["commit"]["author"] == "Test User" and v["commit"]["date"] for v in versions)


def test_log_shows_uncommitted_changes_first(repo: Repo, history: dict[str, str]) -> None:
    repo.write("prompts/summarize.yaml", SUMMARIZE.replace("at most", "roughly"))
    versions = json.loads(repo.run("log", "summarize", "--format", "json").out)
    assert versions[0]["commit"] is None and len(versions) == 3


def test_diff_between_revisions(repo: Repo, history: dict[str, str]) -> None:
    result = repo.run("diff", "summarize", "v1", "experiment")
    assert result.code == 0
    assert "-      Summarize in at most {{ words }} words:" in result.out
    assert "+      Summarize in about {{ words }} words:" in result.out
    same = repo.run("diff", "summarize", "HEAD", "--format", "json")
    assert json.loads(same.out)["changed"] is False


def test_show_at_revision_prints_the_stored_file(repo: Repo, history: dict[str, str]) -> None:
    result = repo.run("show", "summarize@v1", "--format", "yaml")
    assert result.out == SUMMARIZE
    info = json.loads(repo.run("show", "summarize@v1", "--format", "json").out)
    assert info["commit"] == history["v1"] and info["rev"] == history["v1"]


def test_ls_at_revision(repo: Repo, history: dict[str, str]) -> None:
    names = [p["name"] for p in json.loads(repo.run("ls", "--format", "json").out)]
    assert names == ["sentiment", "summarize"]
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    names = [p["name"] for p in json.loads(repo.run("ls", "--rev", first, "--format", "json").out)]
    assert names == ["sentiment"]


def test_latest_means_head(repo: Repo, history: dict[str, str]) -> None:
    repo.write("prompts/summarize.yaml", SUMMARIZE.replace("at most", "roughly"))
    assert "no more than" in _user(promptci.load("summarize", label="latest", root=repo.path))
    assert repo.run("show", "summarize@latest", "--format", "yaml").out == SUMMARIZE.replace("at most", "no more than")


def test_project_in_a_subdirectory_of_the_repository(repo: Repo) -> None:
    repo.write("service/promptci.yaml", "prompts_dir: p\n")
    repo.write("service/p/x.yaml", "name: x\ntemplate: sub\n")
    repo.commit("subproject")
    prompt = promptci.load("x", rev="HEAD", root=repo.path / "service")
    assert prompt.path == "p/x.yaml" and prompt.render() == [{"role": "user", "content": "sub"}]

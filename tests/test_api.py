"""The Python API an application calls at run time."""

from __future__ import annotations

import pytest

import promptci
from promptci.errors import PromptciError

from .conftest import Repo


def test_load_from_the_current_directory(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.path / "prompts")
    prompt = promptci.load("sentiment")
    assert prompt.name == "sentiment" and prompt.path == "prompts/sentiment.yaml"
    assert prompt.render(review="ok")[1]["content"] == "Review: ok\nSentiment:"


def test_load_with_promptci_root(repo: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("PROMPTCI_ROOT", str(repo.path))
    assert promptci.load("sentiment").spec.model is not None


def test_load_outside_git_still_works(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path)) / "plain"
    (root / "prompts").mkdir(parents=True)
    (root / "promptci.yaml").write_text("")
    (root / "prompts" / "p.yaml").write_text("name: p\ntemplate: hi\n")
    prompt = promptci.load("p", root=root)
    assert prompt.render() == [{"role": "user", "content": "hi"}]
    assert prompt.version.commit is None
    with pytest.raises(PromptciError, match="not a git repository"):
        promptci.load("p", rev="HEAD", root=root)


def test_rev_and_label_are_exclusive(repo: Repo) -> None:
    with pytest.raises(ValueError):
        promptci.load("sentiment", rev="HEAD", label="production", root=repo.path)

"""`promptci init` scaffolds a project that works at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptci.cli import main
from promptci.errors import ExitCode


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

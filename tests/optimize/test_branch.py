"""The optimized version is committed on a new branch from HEAD plus that one file."""

from __future__ import annotations

import pytest

from promptci.errors import GitError
from promptci.git import Repo as GitRepo

from ..conftest import Repo


def test_branch_holds_head_plus_the_new_file_and_the_checkout_is_untouched(repo: Repo) -> None:
    repo.write("prompts/sentiment.yaml", (repo.path / "prompts/sentiment.yaml").read_text() + "# uncommitted\n")
    repo.write("scratch.txt", "untracked work")
    head = repo.git("rev-parse", "HEAD")
    status = repo.git("status", "--porcelain")
    new = b"name: sentiment\ntemplate: optimized\n"
    commit = GitRepo(repo.path).commit_file_on_new_branch(
        "promptci/optimize/sentiment/opro-1", "prompts/sentiment.yaml", new, "optimize sentiment: +0.10 on test"
    )
    assert repo.git("rev-parse", "promptci/optimize/sentiment/opro-1") == commit
    assert repo.git("rev-parse", f"{commit}^") == head
    assert repo.git("diff", "--name-only", head, commit) == "prompts/sentiment.yaml"
    assert repo.git("show", f"{commit}:prompts/sentiment.yaml") + "\n" == new.decode()
    assert repo.git("log", "-1", "--format=%s", commit) == "optimize sentiment: +0.10 on test"
    assert repo.git("rev-parse", "HEAD") == head and repo.git("status", "--porcelain") == status
    with pytest.raises(GitError, match="already exists"):
        GitRepo(repo.path).commit_file_on_new_branch(
            "promptci/optimize/sentiment/opro-1", "prompts/sentiment.yaml", new, "again"
        )

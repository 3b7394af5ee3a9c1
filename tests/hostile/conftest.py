"""Helpers the hostile-input tests share."""

from __future__ import annotations

from tests.conftest import Repo

# Every case of the example suite becomes a recorded render error, so no model is loaded.
FAIL_EVERY_CASE = "Review: {{ review * 10**9 }}"


def fail_every_case(repo: Repo) -> None:
    path = repo.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text().replace("Review: {{ review }}", FAIL_EVERY_CASE))


def one_line(err: str) -> str:
    """The one line of an error message, which must carry no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]

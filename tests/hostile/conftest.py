"""Helpers the hostile-input tests share."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.conftest import Repo

# More, and random, with PROMPTCI_FUZZ_EXAMPLES=2000 PROMPTCI_FUZZ_RANDOM=1 for a long local hunt.
EXAMPLES = int(os.environ.get("PROMPTCI_FUZZ_EXAMPLES", "60"))
# Every property test's settings: CI sees the same examples every run.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=not os.environ.get("PROMPTCI_FUZZ_RANDOM"),
)

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

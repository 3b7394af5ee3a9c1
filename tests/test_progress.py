"""The plain progress line printed off a terminal, as CI logs show it."""

from __future__ import annotations

import time

import pytest

from promptci.cli.progress import EvalProgress


def test_the_rate_is_timed_from_the_first_case_done(capsys: pytest.CaptureFixture[str]) -> None:
    with EvalProgress(every=0.0) as progress:
        progress.start(100, 0)
        time.sleep(0.3)  # loading the model: not a slow case
        progress.advance(10)  # the first batch
        time.sleep(0.05)
        progress.advance(10)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "eval: 100 cases to run (0 cached)"
    assert len(lines) == 2 and lines[1].startswith("eval: 20 of 100 cases, ")
    rate = float(lines[1].split(", ")[1].removesuffix("/s"))
    assert rate > 100  # 10 cases in about 0.05 s, not 20 in 0.35 s

"""The plain progress line printed off a terminal, as CI logs show it."""

from __future__ import annotations

import pytest

from promptci.cli.progress import EvalProgress


def test_the_rate_is_timed_from_the_first_case_done(capsys: pytest.CaptureFixture[str]) -> None:
    now = [100.0]  # a clock the test moves: no wall-clock time in a pass/fail test
    with EvalProgress(every=0.0, clock=lambda: now[0]) as progress:
        progress.start(100, 0)
        now[0] += 30.0  # loading the model: not a slow case
        progress.advance(10)  # the first batch
        now[0] += 5.0
        progress.advance(10)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "eval: 100 cases to run (0 cached)"
    assert lines[1:] == ["eval: 20 of 100 cases, 2.0/s, about 40 s left"]  # 10 cases in 5 s, not 20 in 35 s

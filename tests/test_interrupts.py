"""Ctrl-C and SIGTERM meant for the test runner stop it at once, even while promptci runs in-process:
promptci's own handling never turns them into a failed test and carries on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SESSION = """\
import time
from pathlib import Path

from promptci.cli import cli
from tests.conftest import Repo


@cli.command()
def sleepy() -> None:
    '''Sleep, as a long eval would.'''
    Path("started").write_text("")
    time.sleep(60)


def test_a_long_command(tmp_path, capsys):
    Repo(tmp_path, capsys).run("sleepy")


def test_after_it(tmp_path):
    Path("ran-on").write_text("")
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_pytest_while_promptci_runs_in_process(tmp_path: Path, sent: signal.Signals) -> None:
    (tmp_path / "test_session.py").write_text(SESSION)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_session.py"]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    sent_at = time.monotonic()
    process.send_signal(sent)
    out, _ = process.communicate(timeout=30)
    assert time.monotonic() - sent_at < 10, out
    assert process.returncode in (2, -signal.SIGTERM), out  # pytest's "interrupted", or SIGTERM's own end
    assert not (tmp_path / "ran-on").exists(), out  # the session stopped; it did not go on

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
import os
import time
from pathlib import Path

from promptci.cli import cli
from tests.conftest import Repo


@cli.command()
def sleepy() -> None:
    '''Sleep, as a long eval would.'''
    Path(os.environ["SIGNAL_DIR"], "started").write_text("")  # the command runs in the repository
    time.sleep(600)


def test_a_long_command(tmp_path, capsys):
    Repo(tmp_path, capsys).run("sleepy")


def test_after_it(tmp_path):
    Path(os.environ["SIGNAL_DIR"], "ran-on").write_text("")
"""


@pytest.mark.timeout(400)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_pytest_while_promptci_runs_in_process(tmp_path: Path, sent: signal.Signals) -> None:
    (tmp_path / "test_session.py").write_text(SESSION)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SIGNAL_DIR": str(tmp_path)}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_session.py"]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240  # a loaded machine can take a minute to start pytest
    while not (tmp_path / "started").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    if not (tmp_path / "started").exists():
        process.kill()
        pytest.fail(f"the inner session never started its command:\n{process.communicate()[0]}")
    process.send_signal(sent)
    # Far less than the command's sleep: a signal promptci swallowed would leave it sleeping.
    out, _ = process.communicate(timeout=120)
    assert process.returncode in (2, -signal.SIGTERM), out  # pytest's "interrupted", or SIGTERM's own end
    assert not (tmp_path / "ran-on").exists(), out  # the session stopped; it did not go on

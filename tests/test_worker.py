"""The warm worker: commands answered by a process that keeps the model loaded, with the same
stored answers as a cold run, on a socket only this user can reach, one per project, that exits
when idle or told to, and that passes Ctrl-C on to the command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from promptci.worker import client
from promptci.worker.place import Unsafe, identity, place_for, private_directory
from promptci.worker.wire import receive, send

from .conftest import Repo


@pytest.fixture
def private(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runtime directory and a temporary directory short enough for a socket's path."""
    short = Path(tempfile.mkdtemp(prefix="pcw", dir="/tmp"))
    runtime = short / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("TMPDIR", str(short / "tmp"))
    monkeypatch.setenv("PROMPTCI_WORKER_IDLE", "120")
    yield runtime
    for sock in short.rglob("*.sock"):  # a worker left by a failed test exits now
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            send(s, {"op": "stop"})
    shutil.rmtree(short, ignore_errors=True)


def promptci(repo: Repo, *args: str, worker: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTCI_WORKER": "1" if worker else "0"}
    command = [sys.executable, "-m", "promptci", "-C", str(repo.path), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def stored_outputs(repo: Repo) -> list[list[str]]:
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT run_id, list(output ORDER BY case_id) FROM results GROUP BY run_id ORDER BY run_id")
        return [list(outputs) for _, outputs in rows.fetchall()]


def worker_pid(repo: Repo) -> int | None:
    done = promptci(repo, "worker", "status", worker=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("pid ")[1].split()[0]) if "pid" in done.stdout else None


def test_warm_commands_store_what_a_cold_one_does_and_interrupt_like_one(repo: Repo, private: Path) -> None:
    cold = promptci(repo, "eval", "sentiment", "--no-cache", worker=False)
    first = promptci(repo, "eval", "sentiment", "--no-cache", worker=True)
    assert "started a warm worker" in first.stderr
    warm = promptci(repo, "eval", "sentiment", "--no-cache", worker=True)
    assert cold.returncode == first.returncode == warm.returncode
    assert "started a warm worker" not in warm.stderr
    assert cold.stdout == first.stdout == warm.stdout  # the summary table, through the passed descriptors
    runs = stored_outputs(repo)
    assert len(runs) == 3 and runs[0] == runs[1] == runs[2]
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        commands = {c for (c,) in db.execute("SELECT command FROM runs").fetchall()}
    assert commands == {f"promptci -C {repo.path} eval sentiment --no-cache"}  # as the caller ran it

    status = promptci(repo, "worker", "status", worker=False).stdout
    assert "2 command(s) served" in status and "transformers:" in status
    directory = private / "promptci"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (sock,) = directory.glob("*.sock")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    pid = worker_pid(repo)

    # Ctrl-C at the caller interrupts the command in the worker, which lives on.
    env = {**os.environ, "PROMPTCI_WORKER": "1"}
    command = [sys.executable, "-m", "promptci", "-C", str(repo.path), "eval", "sentiment", "--no-cache",
               "--repeat", "50"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert worker_pid(repo) == pid
    again = promptci(repo, "eval", "sentiment", "--no-cache", worker=True)
    assert again.returncode == cold.returncode and stored_outputs(repo)[-1] == runs[0]

    stopped = promptci(repo, "worker", "stop", worker=False)
    assert f"stopped the warm worker pid {pid}" in stopped.stdout
    _gone(pid)
    assert not list(directory.iterdir())  # socket, lock and log: a clean exit leaves nothing


def _gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} still runs")


def serve(repo: Repo, idle: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "promptci", "-C", str(repo.path), "worker", "serve", "--idle", str(idle)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_connect(repo: Repo) -> socket.socket:
    place = place_for(repo.path)
    deadline = time.monotonic() + 60
    while True:
        try:
            return client.connect(place, spawn=False)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_worker_answers_only_its_own_project_and_exits_when_idle(repo: Repo, private: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert identity(repo.path) != identity(other)
    assert identity(repo.path) != identity(repo.path, {**os.environ, "HF_HOME": "/elsewhere"})
    assert identity(repo.path) == identity(repo.path, {**os.environ, "PROMPTCI_WORKER_IDLE": "9"})

    worker = serve(repo, idle=3)
    with wait_connect(repo) as sock:
        send(sock, {"op": "run", "argv": ["ls"], "cwd": str(other), "root": str(other), "env": {}}, [0, 1, 2])
        assert "this worker serves" in receive(sock)[0]["refused"]
    out = tmp_path / "out.txt"
    with wait_connect(repo) as sock, open(out, "w") as stream, open(os.devnull) as stdin:
        request = {"op": "run", "argv": ["ls"], "cwd": str(repo.path), "root": str(repo.path), "env": dict(os.environ)}
        send(sock, request, [stdin.fileno(), stream.fileno(), stream.fileno()])  # the caller's streams
        assert receive(sock)[0] == {"exit": 0}
    assert "sentiment" in out.read_text()
    with wait_connect(repo) as sock:
        send(sock, {"op": "status"})
        assert receive(sock)[0]["served"] == 1
    assert worker.wait(timeout=60) == 0  # three idle seconds
    assert "idle 3 s: exiting" in (worker.stderr.read() if worker.stderr else "")
    assert not place_for(repo.path).socket.exists()


def test_a_second_worker_for_the_same_project_steps_aside(repo: Repo, private: Path) -> None:
    first = serve(repo, idle=60)
    wait_connect(repo).close()
    second = serve(repo, idle=60)
    assert second.wait(timeout=60) == 1
    assert "another worker already serves" in (second.stderr.read() if second.stderr else "")
    first.terminate()
    assert first.wait(timeout=30) == 0
    assert not place_for(repo.path).socket.exists()


def test_a_directory_others_can_enter_is_refused_and_the_command_runs_here(repo: Repo, private: Path) -> None:
    shared = private / "promptci"
    shared.mkdir(mode=0o700)
    shared.chmod(0o777)
    (private.parent / "tmp").mkdir()
    fallback = private.parent / "tmp" / f"promptci-{os.getuid()}"
    fallback.mkdir()
    fallback.chmod(0o755)
    with pytest.raises(Unsafe, match="not a directory private to this user"):
        private_directory()
    done = promptci(repo, "eval", "no_such_suite", worker=True)
    assert "warm worker unavailable" in done.stderr and "not a directory private" in done.stderr
    assert done.returncode == 2  # the command's own answer, run in its own process
    assert not list(shared.iterdir()) and not list(fallback.iterdir())


@pytest.mark.parametrize(
    ("args", "command", "root"),
    [
        (["eval", "x"], "eval", None),
        (["-C", "d", "--debug", "optimize"], "optimize", "d"),
        (["--root=d", "-v", "judge", "check"], "judge", "d"),
        (["--version"], None, None),
    ],
)
def test_the_command_is_found_past_the_group_options(args: list[str], command: str | None, root: str | None) -> None:
    assert client._command(args) == (command, root)


def test_only_terminals_outside_ci_hand_over_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTCI_WORKER", "1")
    assert client._wanted()
    monkeypatch.setenv("PROMPTCI_WORKER", "off")
    assert not client._wanted()
    monkeypatch.delenv("PROMPTCI_WORKER")
    assert not client._wanted()  # pytest's streams are not terminals
    assert client.forward(["eval", "--watch"]) is None
    assert json.dumps(client.forward(["ls"])) == "null"

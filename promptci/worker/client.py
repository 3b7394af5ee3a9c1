"""Hand a command to the project's warm worker, starting one where none runs.

``promptci eval``, ``optimize``, ``judge`` and ``run`` load a model; a worker that keeps it
loaded answers them without the seconds of importing torch and loading weights. A command
goes to a worker only when ``$PROMPTCI_WORKER`` is 1, or when it is unset, both standard
input and output are terminals and ``$CI`` is unset (so CI jobs and scripts run as they
always did). Anything that stops the hand-over (a directory that is not private, a worker
that will not start) runs the command in its own process instead: the worker saves time,
never changes what a command does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from .place import Place, Unsafe, find_root, place_for
from .wire import INTERRUPT, WireError, receive, send

WARM_COMMANDS = frozenset({"eval", "optimize", "judge", "run"})
IDLE_SECONDS = 300.0
START_SECONDS = 30.0  # for a new worker to listen: it imports only promptci's CLI


def forward(args: list[str]) -> int | None:
    """The exit code of ``args`` run by the warm worker, or None to run it here."""
    command, root_option = _command(args)
    if command not in WARM_COMMANDS or not _wanted() or not hasattr(socket, "send_fds"):
        return None
    if "--watch" in args or "--help" in args or "-h" in args:
        return None
    start = Path(root_option) if root_option else Path(os.environ.get("PROMPTCI_ROOT") or os.getcwd())
    root = find_root(start) if start.is_dir() else None
    if root is None:
        return None
    try:
        place = place_for(root)
        sock = connect(place, spawn=True)
    except (Unsafe, OSError) as exc:
        _say(f"warm worker unavailable ({exc}); running here")
        return None
    with sock:
        return _hand_over(sock, args, root)


def _wanted() -> bool:
    setting = os.environ.get("PROMPTCI_WORKER", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return not os.environ.get("CI") and sys.stdin.isatty() and sys.stdout.isatty()


def _command(args: list[str]) -> tuple[str | None, str | None]:
    """The command's name and ``-C DIR``, skipping the group's own options."""
    root = None
    items = iter(args)
    for arg in items:
        if arg in ("-C", "--root"):
            root = next(items, None)
        elif arg.startswith("--root="):
            root = arg.partition("=")[2]
        elif not arg.startswith("-"):
            return arg, root
    return None, root


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("PROMPTCI_WORKER_IDLE", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


def connect(place: Place, *, spawn: bool) -> socket.socket:
    """A connection to the worker at ``place``, starting it first where ``spawn`` allows."""
    try:
        return _connect(place)
    except (FileNotFoundError, ConnectionRefusedError):
        if not spawn:
            raise
    _spawn(place)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return _connect(place)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise OSError(f"no worker listened within {START_SECONDS:.0f} s; see {place.log}") from None
            time.sleep(0.02)


def _connect(place: Place) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(place.socket))
    except OSError:
        sock.close()
        raise
    return sock


def _spawn(place: Place) -> None:
    idle = idle_seconds()
    command = [sys.executable, "-m", "promptci", "-C", str(place.root), "worker", "serve", "--idle", str(idle)]
    fd = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True, close_fds=True
        )
    finally:
        os.close(fd)
    _say(f"started a warm worker for {place.root} (it exits after {idle:.0f} idle s; `promptci worker stop`)")


def _hand_over(sock: socket.socket, args: list[str], root: Path) -> int | None:
    request = {
        "op": "run",
        "argv": args,
        "cwd": os.getcwd(),
        "root": str(root),
        "env": dict(os.environ),
        "encoding": sys.stdout.encoding or "utf-8",
    }
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        send(sock, request, [0, 1, 2])
    except OSError:
        return None
    interrupted = False
    while True:
        try:
            reply, _ = receive(sock)
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: leave; the worker sees the socket close
                return 130
            interrupted = True
            with contextlib.suppress(OSError):
                sock.sendall(INTERRUPT)
            continue
        except (WireError, OSError):
            _say("the warm worker went away mid-command")
            return 3
        if "refused" in reply:
            _say(f"warm worker refused: {reply['refused']}; running here")
            return None
        return int(reply.get("exit", 3))


def _say(text: str) -> None:
    if os.environ.get("PROMPTCI_WORKER_QUIET") != "1":
        print(f"promptci: {text}", file=sys.stderr)

"""The warm worker: one process per user and project that keeps the models loaded between commands.

It listens on a 0600 socket in the user's private directory, answers one command at a time,
and exits after ``idle`` seconds without one, or when ``promptci worker stop`` asks. Each command
runs through the same entry point as a fresh process, with the caller's arguments, working
directory, environment and standard streams; only the loaded models (and the imported modules)
carry over, through :func:`promptci.providers.pool.keep_loaded`. A connection from another
user, or for another project, is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..providers.pool import keep_loaded, kept_models
from .place import Place
from .wire import WireError, peer_uid, receive, send

Runner = Callable[[list[str]], int]


def serve(place: Place, run: Runner, *, idle: float) -> int:
    """Serve commands at ``place`` until idle or stopped; 0, or 1 where another worker holds it."""
    lock = os.open(place.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        _log("another worker already serves this project")
        return 1
    keep_loaded()
    try:
        with _listening(place) as listener:
            _log(f"serving {place.root} (pid {os.getpid()}, idle exit {idle:.0f} s)")
            Worker(place, run, listener, idle).loop()
        for path in (place.lock, place.log):  # a clean exit leaves nothing behind
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        os.close(lock)
    return 0


@contextlib.contextmanager
def _listening(place: Place) -> Iterator[socket.socket]:
    with contextlib.suppress(FileNotFoundError):
        place.socket.unlink()  # a dead worker's: we hold the lock, so no live one owns it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)
    try:
        listener.bind(str(place.socket))
    finally:
        os.umask(umask)
    os.chmod(place.socket, 0o600)
    identity = os.stat(place.socket).st_ino
    listener.listen(8)
    try:
        yield listener
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(place.socket).st_ino == identity:
                place.socket.unlink()


class Worker:
    def __init__(self, place: Place, run: Runner, listener: socket.socket, idle: float) -> None:
        self.place, self.run, self.listener, self.idle = place, run, listener, idle
        self.started = time.time()
        self.served = 0
        self.stopping = False

    def loop(self) -> None:
        signal.signal(signal.SIGTERM, _terminated)  # between commands; a command installs its own
        self.listener.settimeout(self.idle)
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                _log(f"idle {self.idle:.0f} s: exiting")
                return
            except _Terminated:
                _log("terminated: exiting")
                return
            conn.settimeout(None)
            with conn:
                try:
                    self._answer(conn)
                except (WireError, OSError) as exc:
                    _log(f"dropped a connection: {exc}")

    def _answer(self, conn: socket.socket) -> None:
        if peer_uid(conn) not in (None, os.getuid()):
            send(conn, {"refused": "another user's connection"})
            return
        request, fds = receive(conn, fds=3)
        try:
            op = request.get("op")
            if op == "status":
                send(conn, self.status())
            elif op == "stop":
                self.stopping = True
                send(conn, {"stopped": True, "pid": os.getpid()})
            elif op != "run" or len(fds) != 3:
                send(conn, {"refused": "a request without a command and its three streams"})
            elif request.get("root") != str(self.place.root):
                send(conn, {"refused": f"this worker serves {self.place.root}, not {request.get('root')}"})
            else:
                began = time.monotonic()
                code = _Command(request, fds, conn).run(self.run)
                self.served += 1
                _log(f"{request['argv'][:1]} exit {code} in {time.monotonic() - began:.2f} s")
                send(conn, {"exit": code})
        finally:
            for fd in fds:
                os.close(fd)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "root": str(self.place.root),
            "up_s": round(time.time() - self.started, 1),
            "served": self.served,
            "idle_exit_s": self.idle,
            "models": kept_models(),
        }


class _Terminated(Exception):
    pass


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


class _Command:
    """One command run as if in its own process: its streams, cwd and environment, then ours back."""

    def __init__(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> None:
        self.request, self.fds, self.conn = request, fds, conn
        self.done = threading.Lock()
        self.finished = False

    def run(self, runner: Runner) -> int:
        argv = [str(a) for a in self.request.get("argv", [])]
        env = {str(k): str(v) for k, v in dict(self.request.get("env", {})).items()}
        encoding = str(self.request.get("encoding") or "utf-8")
        saved_fds = [os.dup(i) for i in range(3)]
        saved = sys.stdin, sys.stdout, sys.stderr, dict(os.environ), os.getcwd(), sys.argv
        threading.Thread(target=self._watch, daemon=True).start()
        try:
            for target, fd in enumerate(self.fds):
                os.dup2(fd, target)
            sys.stdin = open(0, closefd=False, encoding=encoding, errors="replace")  # noqa: SIM115
            sys.stdout = open(1, "w", closefd=False, buffering=1, encoding=encoding, errors="replace")  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False, buffering=1, encoding=encoding, errors="backslashreplace")  # noqa: SIM115
            os.environ.clear()
            os.environ.update(env)
            os.chdir(str(self.request.get("cwd")))
            sys.argv = ["promptci", *argv]  # what a run records as its command
            return runner(argv)
        except KeyboardInterrupt:
            return 130
        except OSError as exc:  # the caller's cwd went away, say
            print(f"error: {exc}", file=sys.stderr)
            return 3
        finally:
            with self.done:
                self.finished = True
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            sys.stdin, sys.stdout, sys.stderr, env_before, cwd, sys.argv = saved
            os.environ.clear()
            os.environ.update(env_before)
            os.chdir(cwd)
            for target, fd in enumerate(saved_fds):
                os.dup2(fd, target)
                os.close(fd)

    def _watch(self) -> None:
        """Ctrl-C at the caller (or the caller gone) interrupts the command as it would a process."""
        try:
            data = self.conn.recv(1)
        except OSError:
            data = b""
        del data  # a byte is Ctrl-C; nothing is the caller gone: either way, interrupt
        with self.done:
            if not self.finished:
                os.kill(os.getpid(), signal.SIGINT)


def _log(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}", file=sys.stderr, flush=True)

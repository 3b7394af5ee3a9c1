from __future__ import annotations

import os
import time
from typing import Any

import click

from ..errors import ExitCode
from .options import State, pass_state


@click.group()
def worker() -> None:
    """The warm worker that keeps models loaded between commands.

    When standard input and output are terminals and $CI is unset (or $PROMPTCI_WORKER is 1),
    `eval`, `optimize`, `judge` and `run` are answered by a worker per user and project, which
    keeps the model loaded and exits after $PROMPTCI_WORKER_IDLE seconds (300) without a
    command. $PROMPTCI_WORKER=0 runs every command in its own process.
    """


@worker.command()
@pass_state
def status(state: State) -> int:
    """Whether this project's worker runs, and what it holds loaded."""
    reply = _ask(state, "status")
    if reply is None:
        click.echo(f"no warm worker for {state.project.root}")
        return int(ExitCode.OK)
    models = ", ".join(reply.get("models") or []) or "none yet"
    click.echo(
        f"warm worker pid {reply['pid']} for {reply['root']}: up {reply['up_s']:.0f} s, "
        f"{reply['served']} command(s) served, models loaded: {models}; exits after {reply['idle_exit_s']:.0f} idle s"
    )
    return int(ExitCode.OK)


@worker.command()
@click.option("--all", "every", is_flag=True, help="Every worker of this user, for any project.")
@pass_state
def stop(state: State, every: bool) -> int:
    """Stop this project's worker (its models are unloaded)."""
    from ..worker.client import connect
    from ..worker.place import Place, private_directory
    from ..worker.wire import WireError, receive, send

    places = [_place(state)]
    if every:
        directory = private_directory()
        places = [Place(directory, p.stem, state.project.root) for p in sorted(directory.glob("*.sock"))]
    stopped = 0
    for place in places:
        try:
            with connect(place, spawn=False) as sock:
                send(sock, {"op": "stop"})
                pid = receive(sock)[0].get("pid")
        except (OSError, WireError):
            continue
        _wait_gone(place.socket)
        click.echo(f"stopped the warm worker pid {pid}")
        stopped += 1
    if not stopped:
        click.echo("no warm worker was running")
    return int(ExitCode.OK)


@worker.command(hidden=True)
@click.option("--idle", type=click.FloatRange(min=1), default=300.0)
@pass_state
def serve(state: State, idle: float) -> int:
    """Serve this project's commands until idle (started by the commands themselves)."""
    from ..worker.server import serve as serve_place
    from . import main

    return serve_place(_place(state), main, idle=idle)


def _place(state: State) -> Any:
    from ..worker.place import place_for

    return place_for(state.project.root)


def _ask(state: State, op: str) -> dict[str, Any] | None:
    from ..worker.client import connect
    from ..worker.wire import WireError, receive, send

    try:
        with connect(_place(state), spawn=False) as sock:
            send(sock, {"op": op})
            return receive(sock)[0]
    except (OSError, WireError):
        return None


def _wait_gone(path: os.PathLike[str], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)

"""What ``eval`` (and the commands that run suites like it) make of their options."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

import click

from ..errors import ExitCode, InputError
from .options import State

if TYPE_CHECKING:
    from ..project import Project
    from ..providers.pool import ModelPool


def shard_option(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n)):
        raise InputError(f"bad --shard '{text}'", hint="write I/N with 1 <= I <= N, e.g. 2/4")
    return int(i), int(n)


def budget_values(items: tuple[str, ...], keys: tuple[str, ...] = ("calls", "tokens", "cost")) -> dict[str, float]:
    """``--budget calls=N`` (repeatable) as ``{"calls": N}``."""
    values: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        try:
            if not sep or key not in keys:
                raise ValueError
            values[key] = float(raw)
        except ValueError:
            forms = ", ".join(f"{k}={'X' if k == 'cost' else 'N'}" for k in keys)
            raise InputError(f"bad --budget '{item}'", hint=f"write {forms}") from None
    return values


def git_info(state: State) -> tuple[str | None, str | None, bool | None]:
    from ..errors import GitError

    try:
        repo = state.registry.repo
    except GitError:
        return None, None, None
    return repo.head(), repo.branch(), repo.is_dirty(".")


def executor_pool(project: Project, executor: str, actors: int, batch: bool, rerun: str) -> ModelPool | None:
    """The models of a run on ``--executor`` and ``--batch``: None (the run's own) for neither."""
    if executor == "local" and not batch:
        return None
    from ..providers.batch import BatchOptions
    from ..providers.pool import ModelPool
    from ..providers.ray_actors import RayOptions

    ray = RayOptions(actors=actors) if executor == "ray" else None
    poll = float(os.environ.get("PROMPTCI_BATCH_POLL") or 30)
    return ModelPool(project.root, ray=ray, batch=BatchOptions(rerun=rerun, poll=poll) if batch else None)


def resume_batches(state: State) -> int:
    """``eval --resume``: the newest command whose batch is still out, run again to collect it."""
    from ..store import Store
    from . import main

    path = state.project.path(state.project.config.db)
    if not path.exists():
        raise InputError(f"no batch to resume: {state.project.rel(path)} does not exist")
    with Store(path, read_only=True) as store:
        pending = store.pending_batches()
    if not pending:
        click.echo("no batch is still out: nothing to resume", err=True)
        return int(ExitCode.OK)
    record, command = pending[0]
    args = shlex.split(command or "")[1:]
    if "eval" not in args:
        raise InputError(f"batch {record.id} was sent by `{command}`, which --resume cannot run again")
    click.echo(f"resuming batch {record.id}: {command}", err=True)
    return main(["-C", str(state.project.root), *args])

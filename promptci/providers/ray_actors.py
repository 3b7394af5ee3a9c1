"""Cases spread over Ray actors, each holding one provider: ``promptci eval --executor ray``.

Each actor creates the provider the suite names (the local transformers model, vLLM, or an API
client with its own concurrency) once, and answers units of requests: a unit is up to one
batch of requests that sort together (same decoding settings, neighbouring prompts), so each
actor batches and shares prefixes as one process would. Completions come back to the command,
which scores and stores them in its one results database as they arrive.

An actor that dies mid-unit (a lost node, an out-of-memory kill) costs only that unit: it is
sent again to another actor, a fresh one replaces the lost one, and a request answered twice
(its first answer arriving after all) is stored once. The cluster is ``$RAY_ADDRESS``
(``ray://…``, ``auto``), else a local one started for the command.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import ModelSettings
from . import create, identity
from .base import Completion, OnDone, Request

UNIT = 16  # requests a unit: one batch of the local provider


@dataclass(frozen=True)
class RayOptions:
    """How many actors (``--actors``), and what each holds."""

    actors: int = 2
    cpus: float = 1.0  # per actor; torch in the actor uses as many threads
    gpus: float = 0.0


class Holder:
    """One actor's provider, created on the actor from the suite's model settings."""

    def __init__(self, settings_json: str, root: str) -> None:
        self.provider = create(ModelSettings.model_validate_json(settings_json), Path(root))

    def answer(self, requests: list[Request]) -> list[Completion]:
        found: dict[int, Completion] = {}
        self.provider.generate(requests, found.__setitem__, lambda: False)
        return [found.get(i, Completion(error="the provider left it unanswered")) for i in range(len(requests))]

    def pid(self) -> int:
        return os.getpid()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--executor ray needs Ray", hint="pip install 'promptci-gate[ray]', or the Ray version your cluster runs"
        ) from None
    return ray


class RayProvider:
    """The provider for ``settings``, run on ``options.actors`` Ray actors."""

    def __init__(self, settings: ModelSettings, root: Path, options: RayOptions) -> None:
        self.ray = _ray()
        self.settings, self.root, self.options = settings, root, options
        self.model_id = identity(settings, root)
        self.actors: list[Any] = []
        self.lost = 0  # actors that died under a unit
        self.resent = 0  # units sent again
        if not self.ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            local = {} if address else {"num_cpus": max(1, int(options.actors * options.cpus))}
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
        self._remote = self.ray.remote(num_cpus=options.cpus, num_gpus=options.gpus, max_restarts=0)(Holder)

    def _spawn(self) -> Any:
        actor = self._remote.remote(self.settings.model_dump_json(), str(self.root))
        self.actors.append(actor)
        return actor

    def generate(self, requests: Sequence[Request], on_done: OnDone, should_stop: Callable[[], bool]) -> None:
        ray = self.ray
        queue = deque(units(requests))
        while len(self.actors) < self.options.actors:
            self._spawn()
        idle = list(self.actors)
        running: dict[Any, tuple[Any, list[int]]] = {}
        done: set[int] = set()
        while queue or running:
            while queue and idle and not should_stop():
                actor, unit = idle.pop(), queue.popleft()
                running[actor.answer.remote([requests[i] for i in unit])] = (actor, unit)
            if not running:
                return
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, unit = running.pop(ref)
            try:
                completions = ray.get(ref)
            except ray.exceptions.RayActorError:
                self.lost += 1
                self.resent += 1
                queue.appendleft(unit)
                self.actors.remove(actor)
                idle.append(self._spawn())
                continue
            except ray.exceptions.RayTaskError as exc:  # the provider raised: recorded on each case
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                completions = [Completion(error=f"{type(cause).__name__}: {cause}") for _ in unit]
            idle.append(actor)
            for i, completion in zip(unit, completions, strict=True):
                if i not in done:
                    done.add(i)
                    on_done(i, completion)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors.clear()


def units(requests: Sequence[Request], size: int = UNIT) -> list[list[int]]:
    """Indices of ``requests`` in units of at most ``size``: same decoding settings and choices
    together, then neighbouring prompts, so an actor's batch is the batch one process would form."""
    order = sorted(
        range(len(requests)),
        key=lambda i: (requests[i].params.digest(), bool(requests[i].choices), requests[i].repeat,
                       repr(requests[i].messages)),
    )  # fmt: skip
    return [order[k : k + size] for k in range(0, len(order), size)]

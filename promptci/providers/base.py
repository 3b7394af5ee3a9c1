"""What every provider takes and returns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..yamlio import canonical_json


@dataclass(frozen=True)
class GenParams:
    """Decoding parameters. ``temperature`` 0 means greedy."""

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.__dict__).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Request:
    """One generation. ``repeat`` is the repeat index; sampling seeds derive from it."""

    messages: tuple[tuple[str, str], ...]
    params: GenParams
    repeat: int = 0
    # Set for a choice scored by likelihood (nothing is generated): the continuations to rank,
    # whether per character, and the content-free messages whose prior is divided out.
    choices: tuple[str, ...] = ()
    normalize: bool = False
    prior: tuple[tuple[str, str], ...] = ()
    # The prompt's tools, tool choice and response format in OpenAI's shape, as compact JSON in
    # the prompt's own key order ("" for none): part of the request, so part of its cache key.
    tools: str = ""
    # The messages whole, as OpenAI takes them, as compact JSON, where one carries more than a
    # role and its text (an earlier turn's tool calls, a tool's result); "" otherwise.
    turns: str = ""

    @property
    def chat(self) -> list[dict[str, Any]]:
        if self.turns:
            found: list[dict[str, Any]] = json.loads(self.turns)
            return found
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass
class Completion:
    """A provider's answer, or the error that stopped it. Errors are never scored."""

    text: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


OnDone = Callable[[int, Completion], None]


class Provider(Protocol):
    """Generates completions. ``model_id`` names the exact model in results and cache keys."""

    model_id: str

    def generate(self, requests: Sequence[Request], on_done: OnDone, should_stop: Callable[[], bool]) -> None:
        """Answer every request, calling ``on_done(index, completion)`` as each finishes.

        Stops early, leaving requests unanswered, once ``should_stop()`` is true.
        Called from one thread; ``on_done`` is called on that same thread.
        """
        ...


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first stop sequence."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return text[:cut] if cut >= 0 else text


def cache_key(model_id: str, request: Request) -> str:
    """The response cache's key, content-addressed: the rendered messages, the model, the parameters
    and the repeat index (and, for a likelihood ranking, the choices)."""
    material: dict[str, Any] = {
        "model": model_id,
        "messages": request.messages,
        "params": request.params.digest(),
        "repeat": request.repeat,
    }
    if request.choices:  # a likelihood ranking, not a generation: its own answer
        material.update(choices=request.choices, normalize=request.normalize, prior=request.prior)
    if request.tools:  # only then: the keys of every prompt without tools stay as they were
        material["tools"] = request.tools
    if request.turns:
        material["turns"] = request.turns
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()

"""Answering requests: the response cache first, then the model, under a budget.

What an eval run, a pipeline's steps and an optimizer's meta-prompts share: each
request's answer comes from the cache when its key is there, else from the model,
and the usage counts only the new calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..project import Project
from ..providers import identity
from ..providers.base import Completion, Request, cache_key
from ..providers.pool import ModelPool, session_pool
from ..settings import ModelSettings
from ..store import CachedResponse, Store


@dataclass(frozen=True)
class Budget:
    """Limits on new model calls; cached answers are free."""

    calls: int | None = None
    tokens: int | None = None
    cost: float | None = None

    @classmethod
    def from_values(cls, values: dict[str, float]) -> Budget | None:
        """From ``--budget`` values such as ``{"calls": 500.0}``; None when there are none.
        Keys other than calls, tokens and cost (an optimizer's seconds) are not this budget's."""
        calls, tokens = values.get("calls"), values.get("tokens")
        if calls is None and tokens is None and values.get("cost") is None:
            return None
        return cls(
            calls=int(calls) if calls is not None else None,
            tokens=int(tokens) if tokens is not None else None,
            cost=values.get("cost"),
        )


@dataclass
class Usage:
    calls: int = 0
    cached: int = 0
    tokens: int = 0
    cost: float = 0.0
    errors: int = 0

    def exceeds(self, budget: Budget | None) -> bool:
        if budget is None:
            return False
        return (
            (budget.calls is not None and self.calls >= budget.calls)
            or (budget.tokens is not None and self.tokens >= budget.tokens)
            or (budget.cost is not None and self.cost >= budget.cost)
        )

    def calls_left(self, budget: Budget | None) -> int | None:
        """How many more calls may be sent; None for no limit. Whatever the concurrency, no
        more than this many requests are handed to a provider, so a call budget is exact."""
        if budget is None or budget.calls is None:
            return None
        return max(budget.calls - self.calls, 0)

    def add(self, completion: Completion) -> None:
        """Count one new model call."""
        self.calls += 1
        self.tokens += (completion.tokens_in or 0) + (completion.tokens_out or 0)
        self.cost += completion.cost or 0.0


def from_cache(hit: CachedResponse) -> Completion:
    meta = json.loads(hit.logprobs) if hit.logprobs else {}
    return Completion(hit.output, None, hit.latency_ms, hit.tokens_in, hit.tokens_out, hit.cost, meta)


def to_cache(completion: Completion) -> CachedResponse | None:
    """What the cache keeps of an answer: nothing of an error or an empty reply."""
    if completion.error is not None or not completion.text:
        return None
    c = completion
    logprobs = json.dumps(c.meta, sort_keys=True) if "logprobs" in c.meta else None
    return CachedResponse(c.text or "", c.tokens_in, c.tokens_out, c.cost, c.latency_ms, logprobs)


def complete(
    project: Project,
    settings: ModelSettings,
    requests: Sequence[Request],
    usage: Usage,
    *,
    use_cache: bool = True,
    budget: Budget | None = None,
    db: Path | None = None,
    models: ModelPool | None = None,
) -> list[Completion]:
    """Answer free-standing requests (an optimizer's meta-prompts) through the response cache.

    Provider faults come back as completions with ``error`` set; requests the budget
    left unrun come back empty. ``usage`` counts the new calls.
    """
    model_id = identity(settings, project.root)
    keys = [cache_key(model_id, r) for r in requests]
    answers: list[Completion] = [Completion(error="not run: budget spent") for _ in requests]
    entries: list[tuple[str, str, CachedResponse]] = []

    def on_new(i: int, completion: Completion) -> None:
        response = to_cache(completion)
        if response is None:
            usage.errors += 1
        else:
            entries.append((keys[i], model_id, response))

    with Store(db or project.path(project.config.db)) as store:
        try:
            got = answer(
                store,
                models or session_pool(project.root),
                settings,
                requests,
                keys,
                usage,
                budget=budget,
                use_cache=use_cache,
                on_new=on_new,
            )
        finally:
            store.cache_put(entries)
    for i, found in enumerate(got):
        if found is not None:
            answers[i] = found[0]
            usage.cached += found[1]
    return answers


def answer(
    store: Store,
    models: ModelPool,
    settings: ModelSettings,
    requests: Sequence[Request],
    keys: Sequence[str],
    usage: Usage,
    *,
    budget: Budget | None = None,
    use_cache: bool = True,
    jobs: int | None = None,
    on_new: Callable[[int, Completion], None] | None = None,
) -> list[tuple[Completion, bool] | None]:
    """Each request's answer from the cache, else from the model, with whether it was cached;
    None for those the budget left unrun. ``usage`` counts the new calls; ``on_new(i, c)`` is
    told of each new answer as it arrives. Nothing is written to the cache here."""
    hits = store.cache_get(keys) if use_cache else {}
    got: list[tuple[Completion, bool] | None] = [None] * len(requests)
    todo = []
    for i, key in enumerate(keys):
        if key in hits:
            got[i] = (from_cache(hits[key]), True)
        else:
            todo.append(i)
    todo = todo[: usage.calls_left(budget)]
    if todo and not usage.exceeds(budget):

        def on_done(index: int, completion: Completion) -> None:
            usage.add(completion)
            got[todo[index]] = (completion, False)
            if on_new:
                on_new(todo[index], completion)

        provider = models.get(settings, jobs)
        provider.generate([requests[i] for i in todo], on_done, lambda: usage.exceeds(budget))
    return got

"""Running pipelines across cases, one step at a time.

Each step is rendered for every live case, then answered as one batch through the
caller's ``answer`` (the eval engine's cache and models), so a step whose requests
were seen before costs nothing: when only a downstream step changed, everything
upstream is a cache hit. A case whose step fails to render, is refused by the
provider or cannot be parsed ends at that step with the error recorded there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..prompts.images import stored
from ..prompts.prompt import Prompt
from ..providers.base import Completion, GenParams, Request, cache_key
from ..settings import ModelSettings
from ..yamlio import canonical_json
from .load import Pipeline
from .spec import Step
from .steps import StepError, as_text, context, messages, read


@dataclass(frozen=True)
class Stage:
    """One step as it runs: its prompt and the model it runs on, settings merged."""

    step: Step
    prompt: Prompt
    settings: ModelSettings
    model_id: str
    params: GenParams


T = TypeVar("T")

# An answer per request: the completion and whether it came from the cache; None when the
# budget left it unrun.
Answer = Callable[[Stage, Sequence[Request], Sequence[str]], list[tuple[Completion, bool] | None]]


@dataclass
class StepResult:
    """One step of one case as it ran."""

    index: int
    stage: Stage
    key: str  # the request's cache key ("" when it was never sent)
    messages: list[dict[str, str]] | None
    completion: Completion | None = None
    cached: bool = False
    parsed: Any = None
    error: str | None = None
    unread: bool = False  # the model answered, and its parse rule could not read the answer

    @property
    def rendered(self) -> str | None:
        return canonical_json(stored(self.messages)) if self.messages is not None else None


@dataclass
class Trace:
    """One case (one repeat) through the pipeline: every step that ran, and how it ended."""

    stages: tuple[Stage, ...]  # the steps to run: up to and including the output step
    inputs: dict[str, Any]
    repeat: int = 0
    owner: Any = None  # what the caller runs it for, such as an eval item
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None  # "step 'answer': parse: no match …"
    unread: bool = False  # the error is a parse rule that could not read an answer: a wrong answer
    skipped: bool = False  # the budget ran out before the last step
    output: Any = None  # the output step's parsed value

    @property
    def alive(self) -> bool:
        return self.error is None and not self.skipped

    @property
    def output_text(self) -> str | None:
        return None if self.error or self.skipped else as_text(self.output)

    @property
    def cached(self) -> bool:
        return bool(self.steps) and all(s.cached for s in self.steps)

    def fail(self, result: StepResult, error: str, *, unread: bool = False) -> None:
        result.error, result.unread = error, unread
        self.error, self.unread = f"step '{result.stage.step.id}': {error}", unread

    def new_answers(self) -> list[tuple[str, str, Completion]]:
        """(cache key, model id, completion) of each step answered by the model, not the cache,
        that the model answered (read or not): what the cache may keep."""
        return [
            (s.key, s.stage.model_id, s.completion)
            for s in self.steps
            if s.completion is not None and not s.cached and (s.error is None or s.unread)
        ]

    def done(self) -> dict[str, tuple[str, Any]]:
        """Step id -> (the model's text, its parsed value), for the steps that succeeded."""
        ok = [s for s in self.steps if s.completion and not s.error]
        return {s.stage.step.id: (s.completion.text or "" if s.completion else "", s.parsed) for s in ok}


def answered(
    stage: Stage, sent: Sequence[tuple[T, StepResult]], requests: Sequence[Request], answer: Answer
) -> Iterator[tuple[T, StepResult, Completion | None]]:
    """One batch of ``stage``'s requests answered: each owner, its step (the answer recorded on it)
    and the answer, None where the budget left it unrun."""
    if not sent:
        return
    for (owner, result), got in zip(sent, answer(stage, requests, [r.key for _, r in sent]), strict=True):
        if got is not None:
            result.completion, result.cached = got
        yield owner, result, got[0] if got is not None else None


def prompt_request(
    prompt: Prompt, params: GenParams, variables: dict[str, Any], repeat: int
) -> tuple[Request, list[dict[str, Any]]]:
    """The request a prompt makes for ``variables``, and its messages as OpenAI takes them.
    Raises :class:`~promptci.errors.PromptciError` when the prompt does not render."""
    pieces = prompt.openai_kwargs(**variables)
    messages = pieces.pop("messages")
    return chat_request(messages, params, repeat, pieces), messages


def chat_request(
    messages: list[dict[str, Any]], params: GenParams, repeat: int, pieces: dict[str, Any] | None = None
) -> Request:
    """The request for OpenAI-shaped ``messages`` (and ``pieces``: tools, tool choice, response
    format): the whole messages ride along where one carries more than a role and its text."""
    # In the prompt's own order, not sorted: a model writes an object's fields in its schema's order.
    tools = _compact(pieces) if pieces else ""
    whole = any(set(m) - {"role", "content"} or not isinstance(m["content"], str) for m in messages)
    pairs = tuple((m["role"], c if isinstance(c := m["content"], str) else _compact(c)) for m in messages)
    return Request(pairs, params, repeat, tools=tools, turns=_compact(messages) if whole else "")


def _compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def stages_to_run(pipeline: Pipeline, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """The steps up to and including the pipeline's output step."""
    last = pipeline.spec.index(pipeline.spec.output)
    assert last is not None, "the pipeline was checked on loading"
    return stages[: last + 1]


def execute(traces: Sequence[Trace], answer: Answer, on_trace: Callable[[Trace], None] | None = None) -> None:
    """Run every trace, step by step, each step as one batch across the traces that share their
    steps; ``on_trace`` gets each trace once, as it ends (finished, failed at a step, or
    skipped by the budget)."""
    groups: dict[int, list[Trace]] = {}
    for t in traces:
        groups.setdefault(id(t.stages), []).append(t)
    for group in groups.values():
        stages = group[0].stages
        for index, stage in enumerate(stages):
            live = [t for t in group if t.alive]
            _run_stage(index, stage, live, answer)
            for t in live:
                if t.alive and index == len(stages) - 1:
                    t.output = t.steps[-1].parsed
                if on_trace and (not t.alive or index == len(stages) - 1):
                    on_trace(t)


def _run_stage(index: int, stage: Stage, traces: list[Trace], answer: Answer) -> None:
    sent: list[tuple[Trace, StepResult]] = []
    requests: list[Request] = []
    for t in traces:
        try:
            chat = messages(stage.step, stage.prompt, context(t.inputs, t.done()))
        except StepError as exc:
            result = StepResult(index, stage, "", None)
            t.steps.append(result)
            t.fail(result, str(exc))
            continue
        request = chat_request(chat, stage.params, t.repeat)
        result = StepResult(index, stage, cache_key(stage.model_id, request), chat)
        t.steps.append(result)
        sent.append((t, result))
        requests.append(request)
    for t, result, got in answered(stage, sent, requests, answer):
        if got is None:
            t.steps.pop()
            t.skipped = True
            continue
        if got.error is not None:
            t.fail(result, f"provider: {got.error}")
            continue
        try:
            result.parsed = read(stage.step.parse, got.text or "")
        except StepError as exc:  # the model answered; its answer is not one the rule can read
            t.fail(result, str(exc), unread=True)

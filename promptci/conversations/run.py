"""Running cases as conversations: one user turn at a time, each reply fed back.

Turn k of every live conversation is rendered and answered as one batch through the
caller's ``answer`` (the eval engine's cache, models and budget), as a pipeline's step
is. Each request holds the whole conversation so far, so its cache key does too: a
change that alters turn 2's reply makes turn 3 a new request, and everything before
it a cache hit. A user turn comes from the case's script; once the script runs out, a
simulated user (a second prompt on its own model) may go on, up to its turn limit or
until what it says matches its stop pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import PromptciError
from ..pipelines.execute import Answer, Stage, StepResult, answered, prompt_request
from ..pipelines.spec import Step
from ..prompts.prompt import Prompt
from ..providers.base import cache_key

CONVERSATION = "conversation"  # the variable a simulated user's prompt reads the turns from


@dataclass(frozen=True)
class Simulator:
    """The simulated user: its prompt's stage, how many turns it may take, and when it stops."""

    stage: Stage
    max_turns: int
    stop: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Setup:
    """How one task's cases converse: the assistant's stage, the prompt variable the turns so
    far go into, the one each user turn goes into (None: the turn ends the history), and the
    simulated user, if any."""

    assistant: Stage
    history: str
    user: str | None = None
    simulator: Simulator | None = None
    _stages: dict[tuple[str, int], Stage] = field(default_factory=dict, compare=False, repr=False)

    def stage(self, who: str, turn: int) -> Stage:
        """The stage a turn runs as: its prompt and model, named ``turn N`` (the assistant's reply)
        or ``user N`` (a simulated user's), which is what traces and ``compare`` show."""
        key = (who, turn)
        if key not in self._stages:
            base = self.assistant if who == "turn" else self.simulator.stage if self.simulator else None
            assert base is not None, "a user stage needs a simulator"
            step = Step.model_construct(
                id=f"{who} {turn + 1}", prompt=base.prompt.name, vars={}, parse=None, model=None
            )
            self._stages[key] = Stage(step, base.prompt, base.settings, base.model_id, base.params)
        return self._stages[key]

    @property
    def units(self) -> int:
        """Model calls a simulator may add to a case: its turns, each with the assistant's reply."""
        return 2 * self.simulator.max_turns if self.simulator else 0


@dataclass
class Dialogue:
    """One case (one repeat) as a conversation: its turns so far, every request that ran, how it ended."""

    setup: Setup
    variables: dict[str, Any]  # the case's, less the history
    script: tuple[str, ...]  # the scripted user turns
    start: list[dict[str, Any]]  # the turns the case's history begins with
    repeat: int = 0
    owner: Any = None
    turns: list[dict[str, Any]] = field(default_factory=list)  # user and assistant turns added so far
    steps: list[StepResult] = field(default_factory=list)  # every request: replies, and simulated user turns
    replies: list[str] = field(default_factory=list)  # the assistant's, one per user turn
    error: str | None = None
    skipped: bool = False
    ended: bool = False

    @property
    def alive(self) -> bool:
        return self.error is None and not self.skipped and not self.ended

    @property
    def cached(self) -> bool:
        return bool(self.steps) and all(s.cached for s in self.steps)

    def new_answers(self) -> list[tuple[str, str, Any]]:
        """(cache key, model id, completion) of each answer the model gave, not the cache."""
        return [
            (s.key, s.stage.model_id, s.completion)
            for s in self.steps
            if s.completion is not None and not s.cached and s.error is None
        ]

    def so_far(self) -> list[dict[str, Any]]:
        return [*self.start, *self.turns]


def converse(dialogues: Sequence[Dialogue], answer: Answer, on_end: Callable[[Dialogue], None] | None = None) -> None:
    """Run every dialogue to its end, turn by turn, each turn one batch per setup; ``on_end`` gets
    each dialogue once, as it ends (script done, stopped, failed, or skipped by the budget)."""
    groups: dict[int, list[Dialogue]] = {}
    for d in dialogues:
        groups.setdefault(id(d.setup), []).append(d)
    for group in groups.values():
        setup = group[0].setup
        turn = 0
        while live := [d for d in group if d.alive]:
            said = _user_turns(setup, turn, live, answer)
            _replies(setup, turn, said, answer)
            for d in live:
                if on_end and not d.alive:
                    on_end(d)
            turn += 1


def _user_turns(setup: Setup, turn: int, live: list[Dialogue], answer: Answer) -> list[tuple[Dialogue, str]]:
    """What each live dialogue's user says at ``turn``: the script's line, else the simulator's."""
    said = [(d, d.script[turn]) for d in live if turn < len(d.script)]
    rest = [d for d in live if turn >= len(d.script)]
    sim = setup.simulator
    asking = []
    for d in rest:
        if sim is None or turn - len(d.script) >= sim.max_turns:
            d.ended = True
        else:
            asking.append(d)
    if not asking or sim is None:
        return said
    stage = setup.stage("user", turn)
    for d, text in _ask(stage, asking, lambda d: {**_declared(sim.stage.prompt, d.variables), **_swapped(d)}, answer):
        if sim.stop is not None and sim.stop.search(text):
            d.ended = True
        else:
            said.append((d, text))
    return said


def _replies(setup: Setup, turn: int, said: list[tuple[Dialogue, str]], answer: Answer) -> None:
    """The assistant's reply to each dialogue's user turn, added to its turns."""
    if not said:
        return
    user_says = {id(d): text for d, text in said}
    variables = {id(d): turn_variables(d, text) for d, text in said}
    for d, text in _ask(setup.stage("turn", turn), [d for d, _ in said], lambda d: variables[id(d)], answer):
        d.turns += [{"role": "user", "content": user_says[id(d)]}, {"role": "assistant", "content": text}]
        d.replies.append(text)


def turn_variables(d: Dialogue, text: str) -> dict[str, Any]:
    """The assistant prompt's variables for the user's next turn ``text``: the case's, the turns so
    far, and the turn itself (in its own variable, or ending the history)."""
    setup = d.setup
    if setup.user is None:
        return {**d.variables, setup.history: [*d.so_far(), {"role": "user", "content": text}]}
    return {**d.variables, setup.history: d.so_far(), setup.user: text}


def _ask(
    stage: Stage, dialogues: list[Dialogue], variables: Callable[[Dialogue], dict[str, Any]], answer: Answer
) -> list[tuple[Dialogue, str]]:
    """One batch: ``stage``'s prompt rendered for each dialogue and answered; returns the
    dialogues that got a reply, with it. The others end here, failed or skipped."""
    sent: list[tuple[Dialogue, StepResult]] = []
    requests = []
    for d in dialogues:
        try:
            request, chat = prompt_request(stage.prompt, stage.params, variables(d), d.repeat)
        except PromptciError as exc:
            result = StepResult(len(d.steps), stage, "", None, error=f"render: {exc}")
            d.steps.append(result)
            d.error = f"{stage.step.id}: render: {exc}"
            continue
        result = StepResult(len(d.steps), stage, cache_key(stage.model_id, request), chat)
        d.steps.append(result)
        sent.append((d, result))
        requests.append(request)
    got = []
    for d, result, found in answered(stage, sent, requests, answer):
        if found is None:
            d.steps.pop()
            d.skipped = True
        elif found.error is not None:
            result.error = f"provider: {found.error}"
            d.error = f"{stage.step.id}: provider: {found.error}"
        else:
            result.parsed = found.text or ""
            got.append((d, result.parsed))
    return got


def _declared(prompt: Prompt, variables: dict[str, Any]) -> dict[str, Any]:
    """The case's variables that ``prompt`` declares (a simulated user's prompt reads only those)."""
    return {k: v for k, v in variables.items() if k in prompt.variables and k != CONVERSATION}


def _swapped(d: Dialogue) -> dict[str, Any]:
    """The conversation as the simulated user sees it: the assistant's replies as user turns,
    its own earlier turns as assistant turns."""
    flip = {"user": "assistant", "assistant": "user"}
    turns = [{"role": flip[t["role"]], "content": t.get("content") or ""} for t in d.so_far() if t["role"] in flip]
    return {CONVERSATION: turns}

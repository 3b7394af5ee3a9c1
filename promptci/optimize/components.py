"""What a candidate may change besides the instruction: a prompt's tool descriptions.

A candidate that changes several parts of one prompt is a JSON mapping of component to text
(``{"tool:set_timer": "…", "instruction": "…"}``), stored as one trajectory text like a
pipeline's state. Each component is written back at its own place in the prompt file, so the
winner's diff is those lines and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from ..store import TrajectoryRow
from .edits import normalised_hash
from .evaluate import Evaluator
from .instruction import replace_scalar
from .pipeline import read_state, state_text

INSTRUCTION = "instruction"
TOOL = "tool:"  # a component that is one tool's description: "tool:get_weather"


class ToolDescriptions:
    """The tool descriptions of the prompt ``evaluator`` scores (with ``instruction``, also its
    instruction) as a candidate's components; the evaluator writes candidates through it."""

    def __init__(self, evaluator: Evaluator, *, instruction: bool, option: str) -> None:
        spec = evaluator.prompt.spec
        if not spec.tools:
            raise InputError(
                f"{option}: prompt '{spec.name}' has no tools to describe", hint="use gepa.target=instruction"
            )
        self.evaluator = evaluator
        self.places: dict[str, tuple[str | int, ...]] = {INSTRUCTION: evaluator.slot.loc} if instruction else {}
        for i, tool in enumerate(spec.tools):
            self.places[TOOL + tool.function.name] = ("tools", i, "function", "description")
        self._turn = 0  # components changed in turn where no failing case names one
        evaluator.composer = self.compose

    def compose(self, text: str) -> str:
        """The prompt file with each component of the candidate ``text`` in its place; nothing else changes."""
        evaluator = self.evaluator
        prompt = evaluator.prompt
        source = prompt.source
        for name, value in (read_state(text) or {}).items():
            if name == INSTRUCTION:
                source = replace_scalar(source, prompt.path, evaluator.slot.loc, evaluator.slot.compose(value))
            elif name in self.places:
                source = replace_scalar(source, prompt.path, self.places[name], value)
        return source

    def initial_text(self) -> str:
        spec = self.evaluator.prompt.spec
        descriptions = {TOOL + t.function.name: t.function.description for t in spec.tools}
        return state_text({name: descriptions.get(name, self.evaluator.initial) for name in self.places})

    @staticmethod
    def describe(text: str) -> str:
        state = read_state(text)
        return " · ".join(f"{name}: {value}" for name, value in state.items()) if state else text

    @staticmethod
    def tried(name: str, candidate: Mapping[str, str], rows: Sequence[TrajectoryRow]) -> dict[str, TrajectoryRow]:
        """Scored rows that differ from ``candidate`` in component ``name`` alone, by that component's hash."""
        found = {}
        for r in rows:
            state = read_state(r.text) if r.dev_score is not None or r.train_score is not None else None
            if state and name in state and {**state, name: candidate[name]} == dict(candidate):
                found[normalised_hash(state[name])] = r
        return found

    def blamed(self, records: Sequence[Mapping[str, Any]], candidate: Mapping[str, str], threshold: float) -> str:
        """The tool whose description the failing cases blame most: the tool a failing case expected,
        or called instead (each read as ``name(…)``); else the components in turn."""
        named: Counter[str] = Counter()
        for r in records:
            if r["score"] < threshold:
                for said in (r["expected"], r["reply"]):
                    name = TOOL + said.split("(", 1)[0].strip()
                    if name in candidate:
                        named[name] += 1
        if named:
            return named.most_common(1)[0][0]
        self._turn += 1
        return list(candidate)[(self._turn - 1) % len(candidate)]

"""Scorers turn an output into a score in [0, 1]. An expected list means "any of these"."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..patterns import compile_user
from ..plugins import registrar
from ..providers.replies import decode
from .choice import read_choice
from .dataset import EvalCase
from .suite import (
    ChoiceScorer,
    ContainsScorer,
    EmbeddingScorer,
    ExactScorer,
    JsonScorer,
    JudgeScorer,
    NoToolCallScorer,
    NumericScorer,
    PythonScorer,
    RegexScorer,
    ToolCallScorer,
)
from .toolcalls import score_calls

ScoreFn = Callable[[str, EvalCase], float]

_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        (
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
            " sixteen seventeen eighteen nineteen twenty"
        ).split()
    )
}
_NUMBER_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def expected_values(case: EvalCase) -> list[Any]:
    return list(case.expected) if isinstance(case.expected, list) else [case.expected]


Builder = Callable[[Any, Path], ScoreFn]

# Scorer config class -> the function that builds its scoring function, as providers register.
SCORERS: dict[type, Builder] = {}
register = registrar(SCORERS)


def build(scorer: Any, root: Path) -> ScoreFn:
    """The scoring function for one scorer config. ``llm-judge`` is scored by the runner."""
    builder = SCORERS.get(type(scorer))
    if builder is None:
        raise AssertionError(f"no scorer registered for {type(scorer).__name__}")
    return builder(scorer, root)


@register(ExactScorer)
def _exact_scorer(scorer: ExactScorer, root: Path) -> ScoreFn:
    return lambda out, case: _any(case, lambda e: _norm(out, scorer) == _norm(str(e), scorer))


@register(ContainsScorer)
def _contains_scorer(scorer: ContainsScorer, root: Path) -> ScoreFn:
    fold = scorer.type == "icontains"
    return lambda out, case: _any(
        case, lambda e: _fold(scorer.value if scorer.value is not None else str(e), fold) in _fold(out, fold)
    )


@register(RegexScorer)
def _regex_scorer(scorer: RegexScorer, root: Path) -> ScoreFn:
    pattern = compile_user(scorer.pattern, scorer.ignore_case)
    return lambda out, case: float(pattern.search(out) is not None)


@register(ChoiceScorer)
def _choice_scorer(scorer: ChoiceScorer, root: Path) -> ScoreFn:
    return lambda out, case: _choice(out, case, scorer)


@register(NumericScorer)
def _numeric_scorer(scorer: NumericScorer, root: Path) -> ScoreFn:
    return lambda out, case: _numeric(out, case, scorer)


@register(JsonScorer)
def _json_scorer(scorer: JsonScorer, root: Path) -> ScoreFn:
    return lambda out, case: _json(out, scorer, case)


@register(ToolCallScorer)
def _tool_call_scorer(scorer: ToolCallScorer, root: Path) -> ScoreFn:
    def score(out: str, case: EvalCase) -> float:
        expected = case.expected if case.expected is not None else case.data.get("tool_calls")
        value, why = score_calls(out, expected, scorer.arguments, scorer.order == "ordered", scorer.checks)
        return Noted(value, why) if why else value

    return score


@register(NoToolCallScorer)
def _no_tool_call_scorer(scorer: NoToolCallScorer, root: Path) -> ScoreFn:
    def score(out: str, case: EvalCase) -> float:
        reply = decode(out)
        return Noted(0.0, f"called {reply.calls[0].name}") if reply and reply.calls else 1.0

    return score


@register(EmbeddingScorer)
def _embedding_scorer(scorer: EmbeddingScorer, root: Path) -> ScoreFn:
    from .embedding import embedding_scorer

    return embedding_scorer(scorer, root)


@register(JudgeScorer)
def _judge_scorer(scorer: JudgeScorer, root: Path) -> ScoreFn:
    raise AssertionError("llm-judge is scored by the runner")


def _any(case: EvalCase, test: Callable[[Any], bool]) -> float:
    return float(any(test(e) for e in expected_values(case) if e is not None))


def _fold(text: str, fold: bool) -> str:
    return text.casefold() if fold else text


def _norm(text: str, scorer: ExactScorer) -> str:
    text = text.strip() if scorer.strip else text
    return text if scorer.case_sensitive else text.casefold()


class Noted(float):
    """A score with a note on how it came about, stored with the answer."""

    note: str

    def __new__(cls, value: float, note: str) -> Noted:
        self = super().__new__(cls, value)
        self.note = note
        return self


def extract_choice(output: str, choices: list[str]) -> str | None:
    """The one allowed choice ``output`` gives (see :mod:`.choice`); None when it gives none or several."""
    return read_choice(output, choices).choice


def _choice(output: str, case: EvalCase, scorer: ChoiceScorer) -> float:
    choices = scorer.choices if scorer.choices is not None else case.data.get(scorer.choices_from or "")
    if not isinstance(choices, list) or not choices:
        raise InputError(f"case {case.name} has no list of choices in column '{scorer.choices_from}'")
    if scorer.mode == "loglik":  # the provider ranked the choices: the output is one of them, verbatim
        return _any(case, lambda e: str(e).strip().casefold() == output.strip().casefold())
    pattern = compile_user(scorer.answer_pattern) if scorer.answer_pattern else None
    reading = read_choice(output, [str(c) for c in choices], pattern=pattern, pick=scorer.pick)
    if reading.choice is None:
        return Noted(0.0, reading.note) if reading.note else 0.0
    picked = reading.choice
    return _any(case, lambda e: str(e).strip().casefold() == picked.strip().casefold())


def extract_number(text: str) -> float | None:
    """The first number in ``text``, written in digits or as a word up to twenty."""
    match = _NUMBER_RE.search(text)
    if not match:
        return None
    token = match.group(0).lower()
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    return float(token.replace(",", ""))


def _numeric(output: str, case: EvalCase, scorer: NumericScorer) -> float:
    got = extract_number(output)
    if got is None:
        return 0.0

    def close(expected: Any) -> bool:
        want = expected if isinstance(expected, (int, float)) else extract_number(str(expected))
        if want is None:
            return False
        limit = scorer.tolerance * abs(want) if scorer.relative else scorer.tolerance
        return math.isclose(got, want, abs_tol=limit + 1e-9)

    return _any(case, close)


def _json(output: str, scorer: JsonScorer, case: EvalCase) -> float:
    text = output.strip()
    if len(text) >= 6 and text.startswith("```") and text.endswith("```"):  # a fenced block, read without a regex
        text = text[3:-3].removeprefix("json").strip()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nesting deeper than Python recurses is no value either
        return Noted(0.0, "not valid JSON")
    if scorer.schema_ is not None:
        import jsonschema

        violation = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(scorer.schema_).iter_errors(value))
        if violation is not None:
            pointer = "/" + "/".join(str(p) for p in violation.absolute_path)
            return Noted(0.0, f"schema: at {pointer}: {violation.message[:160]}")
    if not scorer.fields or not isinstance(case.expected, dict):
        return 1.0
    if not isinstance(value, dict):
        return Noted(0.0, f"a JSON {type(value).__name__}, not an object")
    from .toolcalls import same_value

    missed = [
        k for k, want in case.expected.items() if k not in value or not same_value(want, value[k], scorer.checks.get(k))
    ]
    share = 1 - len(missed) / len(case.expected) if case.expected else 1.0
    return Noted(share, "fields not matched: " + ", ".join(missed[:10])) if missed else share


@register(PythonScorer)
def _python(scorer: PythonScorer, root: Path) -> ScoreFn:
    from .modules import load_repository_module

    module_name, _, func_name = scorer.function.partition(":")
    module = load_repository_module(root, module_name)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise InputError(f"python scorer: '{scorer.function}' is not a function")

    def score(output: str, case: EvalCase) -> float:
        value = func(output, case.expected, case)
        return float(value)

    return score

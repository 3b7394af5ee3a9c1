"""The best constant answer: what a model that ignores the question would score.

An accuracy means little alone. On a suite whose gold answer is "Yes" in 58% of cases, a
prompt that makes the model say "Yes" every time scores 0.58 without reading anything. Every
selection an optimizer makes, and every held-out figure it reports, stands beside this
baseline: the best score over each single answer the suite allows (each distinct expected
answer, each fixed choice) and, for per-case choices, each option position ("always the
first option"). It is computed by the suite's own scorers, with no model call.

:func:`answer_key` is the answer an output gives, for telling when a prompt's answers have
collapsed onto one value.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .dataset import EvalCase
from .scoring import Scorer
from .suite import ChoiceScorer, JudgeScorer, Suite

MOST_ANSWERS = 24  # distinct expected answers tried (the most common)


@dataclass(frozen=True)
class Constant:
    """The best constant answer on some cases: what it is, and its mean score."""

    label: str  # '"Yes"' or "option 1"
    score: float
    n: int

    def __str__(self) -> str:
        return f"{self.score:.3f} ({self.label})"


def best_constant(suite: Suite, scorer: Scorer, cases: Sequence[EvalCase]) -> Constant | None:
    """The best-scoring constant answer over ``cases``; None without cases or with a judge scorer
    (whose verdicts would cost model calls)."""
    if not cases or any(isinstance(s, JudgeScorer) for s in suite.scorers):
        return None
    tried: dict[str, list[str]] = {}
    for value, _ in Counter(expected_text(c) for c in cases).most_common(MOST_ANSWERS):
        tried[f'"{value}"'] = [value] * len(cases)
    for spec in suite.scorers:
        if not isinstance(spec, ChoiceScorer):
            continue
        for choice in spec.choices or ():
            tried.setdefault(f'"{choice}"', [str(choice)] * len(cases))
        if spec.choices_from:
            lists = [c.data.get(spec.choices_from) for c in cases]
            width = max((len(x) for x in lists if isinstance(x, list)), default=0)
            for i in range(width):
                outputs = [str(x[i]) if isinstance(x, list) and i < len(x) else "" for x in lists]
                tried[f"always option {i + 1}"] = outputs
    best: Constant | None = None
    for label, outputs in tried.items():
        score = sum(scorer.score(out, case)[1] for out, case in zip(outputs, cases, strict=True)) / len(cases)
        if best is None or score > best.score:
            best = Constant(label, score, len(cases))
    return best


def answer_key(suite: Suite, output: str, case: EvalCase) -> str:
    """The answer ``output`` gives: its choice for a choice suite, else its folded text."""
    from .choice import read_choice

    for spec in suite.scorers:
        if isinstance(spec, ChoiceScorer):
            choices = spec.choices if spec.choices is not None else case.data.get(spec.choices_from or "")
            if isinstance(choices, list) and choices:
                picked = read_choice(output, [str(c) for c in choices], pick=spec.pick).choice
                return "" if picked is None else picked.casefold()
    return re.sub(r"\s+", " ", output).strip().casefold()[:80]


def collapsed(answers: Sequence[str], expected: Sequence[str], share: float = 0.9) -> bool:
    """Whether one answer covers at least ``share`` of the answers given (five or more) while the
    expected answers are not that uniform: the prompt made the model stop reading. An output with
    no answer is neither a vote for one value nor against it: 17 × "(b)" and 3 non-answers collapsed."""
    given = [a for a in answers if a]
    if len(given) < 5:
        return False
    top = Counter(given).most_common(1)[0][1] / len(given)
    gold = Counter(expected).most_common(1)[0][1] / len(expected) if expected else 1.0
    return top >= share and gold < share


def expected_text(case: EvalCase) -> str:
    """A case's expected answer as text: an expected tool call as ``name(arg=value, …)``, other
    structured answers as JSON."""
    expected = case.expected
    if isinstance(expected, list):
        expected = expected[0] if expected else ""
    if isinstance(expected, dict) and isinstance(expected.get("name"), str) and set(expected) <= {"name", "arguments"}:
        from ..providers.replies import call_text

        arguments = expected.get("arguments")
        return call_text(expected["name"], arguments if isinstance(arguments, dict) else None, "…")
    if isinstance(expected, (dict, list)):
        return json.dumps(expected, ensure_ascii=False)
    return str(expected if expected is not None else "")

"""The ``llm-judge`` scorer: a model grades an output against a rubric.

The judge runs at temperature 0 with a fixed seed, through the same provider
machinery as the task model. With ``repeat: n`` it is asked n times and the
mean grade is the score.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..project import Project
from ..providers import create
from ..providers.base import Completion, GenParams, Request
from .dataset import EvalCase
from .scorers import ScoreFn
from .suite import JudgeScorer

if TYPE_CHECKING:
    from .plan import Task

JUDGE_PROMPT = """You are grading an answer against a rubric.

Rubric:
{rubric}

Question:
{question}

Expected answer (may be empty):
{expected}

Answer to grade:
{output}

Reply with a single line "SCORE: N" where N is an integer from 0 (fails the rubric) to 10 (fully meets it)."""

_SCORE_RE = re.compile(r"SCORE\s*[:=]\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_grade(text: str) -> float | None:
    """The grade in [0, 1] from a judge reply, or None when it gave none."""
    match = _SCORE_RE.search(text)
    if not match:
        return None
    return max(0.0, min(10.0, float(match.group(1)))) / 10


def judge_scorer(spec: JudgeScorer, task: Task, project: Project) -> ScoreFn:
    settings = task.settings.merged(spec.model).model_copy(update={"temperature": 0.0, "seed": 0})
    provider = create(settings, project.root)
    params = GenParams(max_tokens=16, temperature=0.0, seed=0)

    def score(output: str, case: EvalCase) -> float:
        question = " ".join(str(v) for v in case.vars.values())
        text = JUDGE_PROMPT.format(rubric=spec.rubric, question=question, expected=case.expected or "", output=output)
        requests = [Request((("user", text),), params, r) for r in range(spec.repeat)]
        replies: list[Completion] = [Completion()] * len(requests)

        def done(i: int, c: Completion) -> None:
            replies[i] = c

        provider.generate(requests, done, lambda: False)
        grades = [g for c in replies if c.text and (g := parse_grade(c.text)) is not None]
        if not grades:
            errors = "; ".join(c.error or f"no SCORE in {c.text!r:.60}" for c in replies)
            raise ValueError(f"judge gave no grade: {errors}")
        return sum(grades) / len(grades)

    return score

"""The ``llm-judge`` scorer: a model grades an output against a rubric.

The judge runs at temperature 0 with a fixed seed, through the same provider
machinery as the task model, after two worked gradings that show the reply's form. With
``repeat: n`` it is asked n times and the mean grade is the score. Whether its grades agree
with people's is measured by ``promptci judge check`` (:mod:`.judging`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


# Two worked gradings before the real one: a weak judge (the embedded model) copies the reply's
# form from demonstrations, where it ignores the instruction; a strong one reads past them.
EXAMPLES = (
    ("My parcel arrived with a cracked screen.", "The parcel arrived with a cracked screen.",
     "Your parcel arrived with a cracked screen.", "SCORE: 9"),
    ("I cannot find the invoice for May.", "The May invoice cannot be found.", "Thanks for your message!", "SCORE: 1"),
)  # fmt: skip


def judge_messages(rubric: str, question: str, expected: str, output: str) -> tuple[tuple[str, str], ...]:
    """The judge's chat: the worked gradings, then the output to grade."""
    turns: list[tuple[str, str]] = []
    for q, e, o, grade in EXAMPLES:
        turns += [("user", JUDGE_PROMPT.format(rubric=rubric, question=q, expected=e, output=o)), ("assistant", grade)]
    turns.append(("user", JUDGE_PROMPT.format(rubric=rubric, question=question, expected=expected, output=output)))
    return tuple(turns)


def judge_grades(spec: JudgeScorer, task: Task, project: Project) -> Callable[[str, EvalCase], list[float]]:
    """Each of the judge's ``repeat`` grades of an output, in [0, 1]; an error when none gave one."""
    settings = task.settings.merged(spec.model).model_copy(update={"temperature": 0.0, "seed": 0})
    provider = create(settings, project.root)
    params = GenParams(max_tokens=16, temperature=0.0, seed=0)

    def grades(output: str, case: EvalCase) -> list[float]:
        question = " ".join(str(v) for v in case.vars.values())
        chat = judge_messages(spec.rubric, question, str(case.expected or ""), output)
        requests = [Request(chat, params, r) for r in range(spec.repeat)]
        replies: list[Completion] = [Completion()] * len(requests)

        def done(i: int, c: Completion) -> None:
            replies[i] = c

        provider.generate(requests, done, lambda: False)
        found = [g for c in replies if c.text and (g := parse_grade(c.text)) is not None]
        if not found:
            errors = "; ".join(c.error or f"no SCORE in {c.text!r:.60}" for c in replies)
            raise ValueError(f"judge gave no grade: {errors}")
        return found

    return grades


def judge_scorer(spec: JudgeScorer, task: Task, project: Project) -> ScoreFn:
    """The mean of the judge's grades of an output."""
    grades = judge_grades(spec, task, project)

    def score(output: str, case: EvalCase) -> float:
        found = grades(output, case)
        return sum(found) / len(found)

    return score

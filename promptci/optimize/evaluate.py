"""Scoring an instruction on a set of cases through the eval engine.

Each evaluation is an ordinary stored run (its command names the optimization), so
every candidate's answers are in the results table and in the cache: re-scoring a
candidate, or resuming an interrupted optimization, costs no model calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import mean

from ..evals.dataset import EvalCase
from ..evals.plan import Plan, Task, make_item
from ..evals.runner import run_eval
from ..project import Project
from ..prompts.prompt import Prompt, content_hash
from ..prompts.registry import parse_prompt
from .instruction import instruction_location, replace_scalar


@dataclass(frozen=True)
class Scored:
    """An instruction's mean score over the scored cases, and what it cost."""

    score: float
    per_case: dict[str, float]
    calls: int
    tokens: int
    run_id: str
    errors: int


class Evaluator:
    """Scores instruction variants of one suite × prompt task."""

    def __init__(self, project: Project, task: Task) -> None:
        self.project = project
        self.task = task
        self.location = instruction_location(task.prompt.spec)

    @property
    def initial(self) -> str:
        spec = self.task.prompt.spec
        if self.location == ("template",):
            assert spec.template is not None
            return spec.template
        assert spec.messages is not None
        return spec.messages[int(self.location[1])].content

    def variant(self, instruction: str) -> Prompt:
        """The prompt with ``instruction`` in place of the current one, as a new version."""
        source = replace_scalar(self.task.prompt.source, self.task.prompt.path, self.location, instruction)
        doc, spec = parse_prompt(source, self.task.prompt.path)
        return Prompt(spec, self.task.prompt.path, source, content_hash(doc.data))

    def score(self, instruction: str, cases: list[EvalCase]) -> Scored:
        prompt = self.variant(instruction)
        task = replace(self.task, prompt=prompt, cases=cases, repeat=1)
        plan = Plan([task], [make_item(task, case, 0) for case in cases])
        report = run_eval(self.project, plan)
        per_case = {r.case_id: r.score for r in report.rows if r.error is None and r.score is not None}
        return Scored(
            mean(per_case.values()) if per_case else 0.0,
            per_case,
            report.usage.calls,
            report.usage.tokens,
            report.run_id,
            sum(1 for r in report.rows if r.error),
        )

"""Scoring an instruction on a set of cases through the eval engine.

Each evaluation is an ordinary stored run (its command names the optimization), so
every candidate's answers are in the results table and in the cache: re-scoring a
candidate, or resuming an interrupted optimization, costs no model calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean

from ..errors import InputError
from ..evals.answers import Budget
from ..evals.baseline import answer_key, collapsed, expected_text
from ..evals.dataset import EvalCase
from ..evals.plan import Plan, Task, make_item
from ..evals.runner import run_eval
from ..pipelines.load import Pipeline, version_hash
from ..project import Project
from ..prompts import schemafiles
from ..prompts.images import Images
from ..prompts.images import Reader as ImageReader
from ..prompts.prompt import Prompt
from ..prompts.registry import parse_prompt, prompt_hash
from ..providers.pool import ModelPool, session_pool
from ..redact import has_control
from ..store import ResultRow
from .instruction import Slot, instruction_slot, replace_scalar


@dataclass(frozen=True)
class Scored:
    """An instruction's mean score over the scored cases, and what it cost."""

    score: float
    per_case: dict[str, float]
    calls: int
    tokens: int
    run_id: str
    errors: int
    cost: float = 0.0
    complete: bool = True
    answers: dict[str, str] = field(default_factory=dict)  # per case: the answer its output gives
    per_call: float = 0.0  # mean tokens in and out per answer, cached ones included
    outputs: dict[str, str] = field(default_factory=dict)  # per case: the model's first answer
    margin: float | None = None  # choices ranked by likelihood: the mean margin of the gold choice
    notes: dict[str, str] = field(default_factory=dict)  # per case: what the scorer noted, where it did

    def collapsed(self, cases: list[EvalCase]) -> bool:
        """Whether the answers collapsed onto one value that the expected answers do not share."""
        return collapsed(list(self.answers.values()), [expected_text(c) for c in cases])


class Evaluator:
    """Scores instruction variants of one suite × prompt task."""

    def __init__(
        self,
        project: Project,
        task: Task,
        position: str | None = None,
        db: Path | None = None,
        models: ModelPool | None = None,
    ) -> None:
        self.project = project
        self.task = task
        self.slot: Slot = instruction_slot(self.prompt.spec, position)
        self.db = db
        self.models = models if models is not None else session_pool(project.root)
        self.composer: Callable[[str], str] | None = None
        self.files: dict[str, bytes] = {}  # new files a candidate's prompt reads, by path from the root

    @property
    def prompt(self) -> Prompt:
        """The prompt being optimized (a pipeline's steps are optimized one prompt at a time)."""
        assert isinstance(self.task.prompt, Prompt), "resolve_task gives a prompt's task"
        return self.task.prompt

    @property
    def initial(self) -> str:
        return self.slot.initial

    def source(self, instruction: str) -> str:
        """The prompt file's text with ``instruction`` in its slot; nothing else changes.

        A method whose candidates are not instructions (demonstrations) sets ``composer``,
        which writes its candidate text into the file instead.
        """
        if self.composer is not None:
            return self.composer(instruction)
        return replace_scalar(self.prompt.source, self.prompt.path, self.slot.loc, self.slot.compose(instruction))

    def variant(self, instruction: str) -> Prompt:
        """The prompt with ``instruction`` in its slot, as a new version. An instruction holding
        control or bidirectional-override characters is never written into a prompt file."""
        if has_control(instruction.replace("\r\n", "\n")):
            raise InputError(
                "the instruction holds control or bidirectional-override characters", path=self.prompt.path
            )
        source = self.source(instruction)
        doc, spec = parse_prompt(source, self.prompt.path, schemafiles.worktree(self.project.root))
        images = self.prompt.images or Images()
        if self.files:  # files a candidate adds (an example pool), read before the repository's
            images = replace(images, read=_overlay(self.files, images.read))
        return Prompt(spec, self.prompt.path, source, prompt_hash(doc, images), images=images)

    def task_for(self, instruction: str, cases: list[EvalCase]) -> Task:
        """The task that scores ``instruction`` on ``cases``."""
        return replace(self.task, prompt=self.variant(instruction), cases=cases, repeat=1)

    def score(self, instruction: str, cases: list[EvalCase], budget: Budget | None = None) -> Scored:
        """Mean score over ``cases``; ``complete`` is False when the budget cut it short."""
        return self.score_task(self.task_for(instruction, cases), cases, budget)

    def score_task(self, task: Task, cases: list[EvalCase], budget: Budget | None = None) -> Scored:
        """``task`` (a variant of this evaluator's) scored on ``cases``."""
        plan = Plan([task], [make_item(task, case, 0) for case in cases])
        report = run_eval(self.project, plan, budget=budget, db=self.db, models=self.models)
        per_case = {r.case_id: r.score for r in report.rows if r.error is None and r.score is not None}
        # A pipeline that ends a case at a step it cannot render or parse gave no answer: a wrong
        # one, to the search and the held-out test (the stored row stays unscored).
        per_case.update({r.case_id: 0.0 for r in report.rows if r.error and no_answer(r.error)})
        by_id = {c.id: c for c in cases}
        sizes = [(r.tokens_in or 0) + (r.tokens_out or 0) for r in report.rows if r.error is None]
        answers = {
            r.case_id: answer_key(self.task.suite, r.output or "", by_id[r.case_id])
            for r in report.rows
            if r.case_id in per_case and r.case_id in by_id
        }
        return Scored(
            mean(per_case.values()) if per_case else 0.0,
            per_case,
            report.usage.calls,
            report.usage.tokens,
            report.run_id,
            sum(1 for r in report.rows if r.error),
            report.usage.cost,
            report.status == "complete",
            answers,
            mean(sizes) if sizes else 0.0,
            {r.case_id: r.output or "" for r in report.rows if r.case_id in per_case},
            _margin(report.rows, by_id),
            {r.case_id: r.note for r in report.rows if r.case_id in per_case and r.note},
        )


class StepEvaluator(Evaluator):
    """Scores instruction variants of one step of a pipeline task, end to end, with the other
    steps' prompts held at ``prompts``: the steps before it are answered from the cache."""

    def __init__(
        self,
        project: Project,
        task: Task,
        index: int,
        prompts: tuple[Prompt, ...],
        position: str | None = None,
        db: Path | None = None,
        models: ModelPool | None = None,
    ) -> None:
        self.index = index
        self.prompts = prompts
        super().__init__(project, task, position, db, models)

    @property
    def prompt(self) -> Prompt:
        return self.prompts[self.index]

    def task_for(self, instruction: str, cases: list[EvalCase]) -> Task:
        prompts = (*self.prompts[: self.index], self.variant(instruction), *self.prompts[self.index + 1 :])
        return pipeline_variant(self.task, prompts, cases)


def _overlay(files: dict[str, bytes], read: ImageReader | None) -> ImageReader:
    def overlaid(rel: str, most: int) -> bytes | None:
        if rel in files:
            return files[rel] if len(files[rel]) <= most else None
        return read(rel, most) if read is not None else None

    return overlaid


def pipeline_variant(task: Task, prompts: tuple[Prompt, ...], cases: list[EvalCase]) -> Task:
    """``task``'s pipeline with each step running ``prompts``, as a new version, on ``cases``."""
    pipeline = task.prompt
    assert isinstance(pipeline, Pipeline), "a pipeline's task"
    changed = replace(
        pipeline, prompts=prompts, content_hash=version_hash(pipeline.file_hash, prompts), _commit_lookup=None
    )
    stages = tuple(replace(stage, prompt=p) for stage, p in zip(task.stages, prompts, strict=True))
    return replace(task, prompt=changed, stages=stages, cases=cases, repeat=1)


def no_answer(error: str) -> bool:
    """Whether ``error`` is a pipeline's own failure to answer (a step it could not render or
    parse), not a provider's."""
    return error.startswith("step '") and any(f": {kind}: " in error for kind in ("render", "parse"))


def _margin(rows: list[ResultRow], cases: dict[str, EvalCase]) -> float | None:
    """The mean, over cases ranked by likelihood, of the gold choice's lead over the best other
    choice (negative where another led): a continuous score for an optimizer to climb."""
    margins = []
    for r in rows:
        if not r.logprobs or r.case_id not in cases:
            continue
        ranked = json.loads(r.logprobs).get("ranked", {})
        gold = expected_text(cases[r.case_id])
        if gold in ranked and len(ranked) > 1:
            margins.append(ranked[gold] - max(v for k, v in ranked.items() if k != gold))
    return mean(margins) if margins else None

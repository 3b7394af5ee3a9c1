"""One optimization in progress, as every method reads it: its split, its evaluator, its
budget, its trajectory so far, and the hygiene screen that every candidate passes before it
is scored (:mod:`.hygiene`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from ..evals.answers import Budget, Usage
from ..evals.baseline import Constant, best_constant, expected_text
from ..evals.dataset import EvalCase
from ..evals.plan import Task
from ..project import Project
from ..prompts.prompt import Prompt
from ..providers.pool import ModelPool
from ..settings import ModelSettings
from ..store import Store, TrajectoryRow
from .edits import word_edit_distance
from .evaluate import Evaluator, Scored
from .hygiene import Hygiene, Reference, verdict
from .metaprompt import Exemplar
from .settings import Settings
from .split import Split


class Reporter(Protocol):
    def phase(self, text: str) -> None: ...

    def step(self, step: int, total: int, best: float, usage: Usage, note: str, split: str = "dev") -> None: ...


FLUENCY_EDITS = 3  # words changed, at most, for the likelihood test to apply


@dataclass
class Context:
    """One optimization in progress: what every method reads."""

    id: str
    project: Project
    settings: Settings
    evaluator: Evaluator
    split: Split
    optimizer: ModelSettings
    db: Path
    base_commit: str
    rows: list[TrajectoryRow] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    reporter: Reporter | None = None
    _fluent: dict[str, float] = field(default_factory=dict, repr=False)
    _grams: dict[str, object] = field(default_factory=dict, repr=False)
    _baselines: dict[str, Constant | None] = field(default_factory=dict, repr=False)
    started: float = field(default_factory=time.monotonic)  # for a wall-clock budget (this process's share)
    feedback: list[str] = field(default_factory=list)  # what credit assignment said about the instruction
    # How a case reads to the model at the instruction's place, where that is not the prompt's own
    # rendering (a pipeline's later step reads what the steps before it wrote).
    questions: Callable[[EvalCase], str] | None = None

    @property
    def models(self) -> ModelPool:
        """The loaded models: the task model scores, proposes (by default) and, for GReaTer, differentiates."""
        return self.evaluator.models

    @property
    def budget(self) -> Budget | None:
        return self.settings.limits

    def count_stored(self) -> None:
        """Add what the stored rows spent to the usage: a resumed search goes on from there."""
        for row in self.rows:
            self.usage.calls += row.calls
            self.usage.tokens += row.tokens
            self.usage.cost += row.cost

    def spent(self) -> bool:
        seconds = self.settings.budget.get("seconds")
        if seconds is not None and time.monotonic() - self.started >= seconds:
            return True
        return self.usage.exceeds(self.budget)

    def affords(self, calls: int) -> bool:
        """Whether the budget left pays for ``calls`` new model calls (cached answers cost none,
        so this is the most they can cost): work is not started that the budget would cut short."""
        left = self.remaining()
        return left is None or left.calls is None or left.calls >= calls

    def remaining(self) -> Budget | None:
        """What is left of the budget, as a budget for one eval run."""
        b = self.budget
        if b is None:
            return None
        u = self.usage
        return Budget(
            calls=None if b.calls is None else max(0, b.calls - u.calls),
            tokens=None if b.tokens is None else max(0, b.tokens - u.tokens),
            cost=None if b.cost is None else max(0.0, b.cost - u.cost),
        )

    def score(self, text: str, cases: list[EvalCase]) -> Scored:
        scored = self.evaluator.score(text, cases, budget=self.remaining())
        self.usage.calls += scored.calls
        self.usage.tokens += scored.tokens
        self.usage.cost += scored.cost
        return scored

    def exemplars(self, step: int, n: int) -> list[Exemplar]:
        """``n`` random train cases, seeded by the step, as the task model sees them."""
        chosen = self.exemplar_cases(step, n)
        return [Exemplar(self.question(c), expected_text(c)) for c in chosen]

    def exemplar_cases(self, step: int, n: int) -> list[EvalCase]:
        """The train cases :meth:`exemplars` shows at ``step``."""
        rng = random.Random(self.settings.seed * 1_000_003 + step)
        return rng.sample(self.split.train, min(n, len(self.split.train)))

    def question(self, case: EvalCase) -> str:
        return self.questions(case) if self.questions else question(self.evaluator.task, case)

    def screen(self, text: str, limits: Hygiene, *, parent: str | None = None, meta: str = "") -> str | None:
        """Why ``text`` may not be scored (a :data:`.hygiene.REASONS` entry), or None.

        ``parent`` is the instruction it edits; without one, symbols are judged against the
        initial instruction. The likelihood test compares likelihoods of nearly the same words,
        so it applies only to edits of a few words (GReaTer's token swaps, GPO's small edits).
        """
        quoted = [r.text for r in self.rows if r.status in ("initial", "scored")]
        ref = Reference(
            meta=meta,
            quoted=quoted,
            questions=self._questions,
            answers=self._answers,
            parent=parent if parent is not None else self.evaluator.initial,
            _cache=self._grams,  # the cases' word runs, built once per optimization
        )
        small_edit = parent is not None and word_edit_distance(parent, text) <= FLUENCY_EDITS
        fluency = self._fluency if small_edit else None
        return verdict(text, ref, limits, fluency)

    @cached_property
    def _questions(self) -> list[str]:
        s = self.split
        return [self.question(c) for c in (*s.train, *s.dev, *s.test)]

    @cached_property
    def _answers(self) -> set[str]:
        found = {expected_text(c) for c in self.evaluator.task.cases}
        for scorer in self.evaluator.task.suite.scorers:
            found.update(str(c) for c in getattr(scorer, "choices", None) or ())
        return found - {""}

    def _fluency(self, text: str) -> float:
        """The mean log-likelihood per token of ``text`` under the task model, when it is local."""
        if text not in self._fluent:
            provider = self.models.get(self.evaluator.task.settings)
            loglik = getattr(provider, "loglik", None)
            if loglik is None:
                return 0.0
            total, n = loglik([("", text)])[0]
            self._fluent[text] = total / max(n, 1)
        return self._fluent[text]

    def baseline(self, split: str) -> Constant | None:
        """The best constant answer on ``split`` ("train", "dev" or "test")."""
        if split not in self._baselines:
            from ..evals.scoring import make_scorer

            cases = {"train": self.split.train, "dev": self.split.dev, "test": self.split.test}[split]
            scorer = make_scorer(self.evaluator.task, self.project)
            self._baselines[split] = best_constant(self.evaluator.task.suite, scorer, cases)
        return self._baselines[split]

    def scored_rows(self) -> list[TrajectoryRow]:
        return [r for r in self.rows if r.status in ("initial", "scored")]

    def record_dev(self, row: TrajectoryRow) -> None:
        """Store a dev score given after the row's step was stored (a final re-ranking)."""
        with Store(self.db) as store:
            store.set_dev_score(row)
        self.rows = [row if (r.step, r.candidate) == (row.step, row.candidate) else r for r in self.rows]


def question(task: Task, case: EvalCase) -> str:
    """The case's question as the task model sees it with the original prompt (the user turn)."""
    assert isinstance(task.prompt, Prompt), "resolve_task gives a prompt's task"
    messages = task.prompt.render(**case.vars)
    users = [m["content"] for m in messages if m["role"] == "user"]
    return (users[-1] if users else messages[-1]["content"]).strip()

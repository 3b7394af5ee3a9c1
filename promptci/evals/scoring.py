"""A suite's scorers combined: the weighted score of one output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..project import Project
from . import scorers as builtin
from .dataset import EvalCase
from .suite import JudgeScorer
from .suite import Scorer as ScorerSpec

if TYPE_CHECKING:
    from .plan import Task


@dataclass
class Scorer:
    """Scores an output with every scorer of a suite; returns per-scorer scores and the weighted mean."""

    parts: list[tuple[str, float, builtin.ScoreFn]]

    def score(self, output: str, case: EvalCase) -> tuple[dict[str, float], float, str | None]:
        """Per-scorer scores, their weighted mean, and what any scorer noted (an ambiguous choice)."""
        raw = {name: fn(output, case) for name, _, fn in self.parts}
        scores = {name: max(0.0, min(1.0, float(value))) for name, value in raw.items()}
        total = sum(w for _, w, _ in self.parts)
        weighted = sum(w * scores[name] for name, w, _ in self.parts) / total if total else 0.0
        notes = [f"{name}: {value.note}" for name, value in raw.items() if isinstance(value, builtin.Noted)]
        return scores, weighted, "; ".join(notes) or None


def make_scorer(task: Task, project: Project, specs: Sequence[ScorerSpec] | None = None) -> Scorer:
    """The suite's scorers (or ``specs``, a conversation turn's own) for ``task``."""
    parts = []
    seen: dict[str, int] = {}
    for spec in task.suite.scorers if specs is None else specs:
        base = spec.type
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        if isinstance(spec, JudgeScorer):
            from .judge import judge_scorer

            fn = judge_scorer(spec, task, project)
        else:
            fn = builtin.build(spec, project.root)
        parts.append((name, spec.weight, fn))
    return Scorer(parts)

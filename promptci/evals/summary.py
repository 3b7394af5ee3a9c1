"""Per suite × prompt: how many cases passed, the mean score, errors, and the verdict.

Repeats: with ``aggregate: mean`` a case's score is the mean over its scored
repeats and it passes when that reaches ``case_threshold``; with ``k-of-n`` it
passes when at least ``k`` repeats pass. A case whose every repeat errored is
counted as an error, never as a zero. A suite passes when its mean case score
reaches ``threshold`` and nothing errored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import mean
from typing import TYPE_CHECKING

from ..providers.replies import readable
from ..redact import clip
from ..store import ResultRow

if TYPE_CHECKING:
    from .plan import Task


@dataclass(frozen=True)
class CaseOutcome:
    case_id: str
    name: str
    score: float | None
    passed: bool | None
    repeats: int
    errors: int
    flaky: bool  # repeats disagree on pass/fail
    reason: str | None = None  # why it errored or failed: the error, the scorer's note, or what it answered
    passes: int = 0  # scored repeats that passed
    scored: int = 0  # repeats that were scored


@dataclass(frozen=True)
class TaskSummary:
    suite: str
    prompt: str
    prompt_hash: str
    model_id: str
    cases: int
    scored: int
    passed_cases: int
    errors: int
    flaky: int
    score: float | None
    threshold: float
    outcomes: tuple[CaseOutcome, ...]

    @property
    def passed(self) -> bool:
        return self.errors == 0 and self.score is not None and self.score >= self.threshold

    @property
    def pass_rate(self) -> float | None:
        return self.passed_cases / self.scored if self.scored else None

    @property
    def repeats(self) -> int:
        """The most scored repeats of a case."""
        return max((o.scored for o in self.outcomes), default=0)

    @property
    def pass_all(self) -> float | None:
        """pass^k: the share of scored cases whose every repeat passed (τ-bench's reliability)."""
        scored = [o for o in self.outcomes if o.scored]
        return sum(o.passes == o.scored for o in scored) / len(scored) if scored else None

    @property
    def pass_any(self) -> float | None:
        """pass@k: the share of scored cases with at least one passing repeat."""
        scored = [o for o in self.outcomes if o.scored]
        return sum(o.passes > 0 for o in scored) / len(scored) if scored else None


def summarize(tasks: Sequence[Task], rows: Sequence[ResultRow]) -> list[TaskSummary]:
    grouped: dict[tuple[str, str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        grouped[(row.suite, row.prompt, row.case_id)].append(row)
    summaries = []
    for task in tasks:
        outcomes = []
        for case in task.cases:
            case_rows = grouped.get((task.suite_name, task.prompt.name, case.id), [])
            if case_rows:
                outcomes.append(_outcome(task, case.id, case.name, case_rows))
        scored = [o for o in outcomes if o.score is not None]
        summaries.append(
            TaskSummary(
                task.suite_name,
                task.prompt.name,
                task.prompt.content_hash,
                task.model_id,
                len(outcomes),
                len(scored),
                sum(1 for o in scored if o.passed),
                sum(1 for o in outcomes if o.score is None),
                sum(1 for o in outcomes if o.flaky),
                mean(o.score for o in scored if o.score is not None) if scored else None,
                task.suite.threshold,
                tuple(outcomes),
            )
        )
    return summaries


def _outcome(task: Task, case_id: str, name: str, rows: list[ResultRow]) -> CaseOutcome:
    ok = [r for r in rows if r.error is None and r.score is not None]
    errors = len(rows) - len(ok)
    if not ok:
        return CaseOutcome(case_id, name, None, None, len(rows), errors, False, rows[0].error)
    score = mean(r.score for r in ok if r.score is not None)
    passes = [bool(r.passed) for r in ok]
    if task.suite.aggregate == "k-of-n":
        passed = sum(passes) >= (task.suite.k or len(rows))
    else:
        passed = score >= task.suite.case_threshold
    failed = next((r for r in ok if not r.passed), None)
    reason = _why(failed) if failed is not None and not passed else None
    flaky = len(set(passes)) > 1
    return CaseOutcome(case_id, name, score, passed, len(rows), errors, flaky, reason, sum(passes), len(passes))


def _why(row: ResultRow) -> str:
    """Why a scored case failed: the scorer's note, else what it answered against what was expected."""
    if row.note:
        return row.note
    answer = clip(" ".join((readable(row.output) or "").split()), 60)  # a tool call as name(arg=…)
    return f"answered {answer!r}, expected {clip(row.expected or '', 60)}"

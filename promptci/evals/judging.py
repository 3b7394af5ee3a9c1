"""``promptci judge check SUITE``: the suite's judge grades the outputs people graded, and the two
are compared (:mod:`.agreement`). The check is stored, so that ``compare`` can say when a verdict
rests on a judge that people do not agree with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError
from ..files import MAX_DATASET_BYTES, read_bytes
from ..project import Project
from ..store import Store
from .agreement import Agreement, agreement, grades_path, read_grades
from .dataset import EvalCase
from .plan import Task, build_plan, suite_files
from .suite import EmbeddingScorer, JudgeScorer

JUDGES = ("llm-judge", "embedding")


@dataclass
class JudgeCheck:
    suite: str
    scorer: str  # the judge's place among the suite's scorers: llm-judge, embedding#2
    judge_hash: str  # the judge's configuration: what a stored check is valid for
    grades: str  # the grades file, as shown
    agreement: Agreement


def judges(task: Task) -> list[tuple[str, JudgeScorer | EmbeddingScorer]]:
    """The suite's judge scorers, named as its results name them (``llm-judge``, ``llm-judge#2``)."""
    found: list[tuple[str, JudgeScorer | EmbeddingScorer]] = []
    seen: dict[str, int] = {}
    for spec in task.suite.scorers:
        seen[spec.type] = seen.get(spec.type, 0) + 1
        if isinstance(spec, (JudgeScorer, EmbeddingScorer)):
            found.append((spec.type if seen[spec.type] == 1 else f"{spec.type}#{seen[spec.type]}", spec))
    return found


def judge_hash(spec: JudgeScorer | EmbeddingScorer, task: Task) -> str:
    """The judge's configuration and model: a check holds for this judge, not an edited one."""
    model = task.model_id if isinstance(spec, EmbeddingScorer) or spec.model is None else spec.model.model_dump_json()
    text = json.dumps([spec.model_dump(mode="json"), model], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check(
    project: Project,
    suite: str,
    store: Store | None,
    *,
    grades_file: Path | None = None,
    scorer: str | None = None,
    repeat: int | None = None,
) -> JudgeCheck:
    """Grade the people's outputs with ``suite``'s judge and measure how far the two agree."""
    (path,) = suite_files(project, (suite,))
    task = build_plan(project, [path]).tasks[0]
    found = judges(task)
    if not found:
        raise InputError(
            f"suite {task.suite_name} has no llm-judge or embedding scorer to check", path=project.rel(path)
        )
    if scorer is not None:
        found = [(n, s) for n, s in found if n == scorer]
        if not found:
            raise InputError(
                f"no judge scorer {scorer!r} in suite {task.suite_name}", hint="llm-judge, llm-judge#2, embedding…"
            )
    name, spec = found[0]
    if repeat is not None and isinstance(spec, JudgeScorer):
        spec = spec.model_copy(update={"repeat": repeat})
    where = grades_file or grades_path(path)
    shown = project.rel(where) if where.is_absolute() else str(where)
    grades = read_grades(where, shown)
    by_key = {c.name: c for c in task.cases} | {c.id: c for c in task.cases}
    pairs: list[tuple[EvalCase, str]] = []
    for g in grades.rows:
        case = by_key.get(g.case)
        if case is None:
            raise InputError(f"no case {g.case!r} in suite {task.suite_name}", path=shown, line=g.line)
        output = (
            g.output if g.output is not None else (store.newest_output(task.suite_name, case.id) if store else None)
        )
        if output is None:
            raise InputError(
                f"no output to judge for case {g.case!r}", path=shown, line=g.line,
                hint='give the graded text as "output", or run `promptci eval` first',
            )  # fmt: skip
        pairs.append((case, output))
    grade = _grader(spec, task, project)
    judged, kept, skipped = [], [], []
    for row, (case, output) in zip(grades.rows, pairs, strict=True):
        try:
            judged.append(grade(output, case))
            kept.append(row)
        except ValueError as exc:  # the judge gave no grade: counted, not compared
            skipped.append(f"{row.case} (line {row.line}): {exc}")
    graded = replace(grades, rows=tuple(kept))
    result = agreement(graded, judged, threshold=task.suite.case_threshold, skipped=skipped)
    digest = hashlib.sha256(read_bytes(where, shown, limit=MAX_DATASET_BYTES)).hexdigest()[:16]
    checked = JudgeCheck(task.suite_name, name, judge_hash(spec, task), shown, result)
    if store is not None:
        a = result
        store.add_judge_check(
            [
                checked.suite,
                name,
                checked.judge_hash,
                digest,
                a.n,
                a.ordinal,
                a.kappa,
                a.accuracy,
                a.self_agreement,
                a.repeats,
            ]
        )
    return checked


def _grader(
    spec: JudgeScorer | EmbeddingScorer, task: Task, project: Project
) -> Callable[[str, EvalCase], list[float]]:
    if isinstance(spec, JudgeScorer):
        from .judge import judge_grades

        return judge_grades(spec, task, project)
    from .embedding import embedding_scorer

    score = embedding_scorer(spec, project.root)
    return lambda output, case: [score(output, case)]

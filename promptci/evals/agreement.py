"""Whether a judge agrees with people: ``promptci judge check SUITE``.

People grade outputs in a file beside the suite, ``evals/NAME.grades.jsonl``, one object a line:
``{"case": NAME-OR-ID, "grade": G, "output": TEXT}``. ``grade`` is pass/fail (true, false,
"pass", "fail") or an integer grade 0–10, the llm-judge's own scale; ``output`` is the text the
person graded (without it, the case's newest stored output). The judge grades the same outputs,
and the two are set side by side:

- pass/fail grades: the judge passes an output when its score reaches the suite's
  ``case_threshold``, as the gate counts it; Cohen's κ, unweighted;
- 0–10 grades: the judge's score times 10, rounded; Cohen's κ with quadratic weights, so that a
  grade one step off costs less than one five steps off.

With ``repeat: k`` on the judge, its agreement with itself is the share of outputs whose k grades
are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import MAX_DATASET_BYTES, read_text
from .dataset import read_jsonl

MAX_GRADES = 100_000
PASS_WORDS = {"pass": True, "fail": False, "true": True, "false": False}
ORDINAL = tuple(range(11))


@dataclass(frozen=True)
class Grade:
    """A person's grade of one output, at its line of the grades file."""

    line: int
    case: str
    grade: int  # 0 or 1 for pass/fail; 0..10 on the ordinal scale
    output: str | None


@dataclass(frozen=True)
class Grades:
    path: str
    rows: tuple[Grade, ...]
    ordinal: bool  # 0–10 grades, else pass/fail

    @property
    def labels(self) -> tuple[int, ...]:
        return ORDINAL if self.ordinal else (0, 1)


def grades_path(suite_path: Path) -> Path:
    """``evals/NAME.grades.jsonl`` beside ``evals/NAME.yaml``."""
    return suite_path.with_name(suite_path.name.rsplit(".", 1)[0] + ".grades.jsonl")


def read_grades(path: Path, shown: str) -> Grades:
    """The people's grades, every line checked: an error names the file and line."""
    if not path.is_file():
        raise InputError("no grades file", path=shown, hint='one JSON object a line: {"case": …, "grade": …}')
    rows = read_jsonl(read_text(path, shown, limit=MAX_DATASET_BYTES, what="grades file"), shown)
    if not rows:
        raise InputError("the grades file holds no grade", path=shown)
    if len(rows) > MAX_GRADES:
        raise InputError(f"{len(rows):,} grades, more than {MAX_GRADES:,}", path=shown)
    kinds = {_kind(row.get("grade"), shown, line) for line, row in rows}
    if len(kinds) > 1:
        raise InputError("grades mix pass/fail and 0–10: use one scale", path=shown, line=rows[0][0])
    ordinal = kinds == {"ordinal"}
    found = []
    for line, row in rows:
        case, output = row.get("case"), row.get("output")
        if not isinstance(case, str) or not case:
            raise InputError('each grade names its case: "case": NAME or ID', path=shown, line=line)
        if output is not None and not isinstance(output, str):
            raise InputError('"output" is the graded text, a string', path=shown, line=line)
        found.append(Grade(line, case, _value(row["grade"]), output))
    return Grades(shown, tuple(found), ordinal)


def _kind(value: Any, shown: str, line: int) -> str:
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in PASS_WORDS):
        return "binary"
    if isinstance(value, int) and 0 <= value <= 10:
        return "ordinal"
    raise InputError(
        f"grade {value!r} is neither pass/fail nor an integer 0–10", path=shown, line=line,
        hint='"grade": true, false, "pass", "fail", or 0 to 10',
    )  # fmt: skip


def _value(value: Any) -> int:
    if isinstance(value, str):
        return int(PASS_WORDS[value.lower()])
    return int(value)


def judge_label(score: float, ordinal: bool, threshold: float) -> int:
    """A judge's score in [0, 1] on the people's scale."""
    return round(score * 10) if ordinal else int(score >= threshold)


def confusion(people: list[int], judge: list[int], labels: tuple[int, ...]) -> np.ndarray:
    """Counts: rows are the people's grades, columns the judge's, in ``labels`` order."""
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(people, judge, strict=True):
        table[index[a], index[b]] += 1
    return table


def cohen_kappa(people: list[int], judge: list[int], labels: tuple[int, ...], weights: str | None = None) -> float:
    """Cohen's κ over ``labels``; ``weights="quadratic"`` for ordinal grades (as scikit-learn's
    ``cohen_kappa_score``). 1 where both give one and the same grade throughout."""
    table = confusion(people, judge, labels).astype(float)
    n = table.sum()
    if n == 0:
        return float("nan")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    k = len(labels)
    i, j = np.indices((k, k))
    w = (i - j) ** 2 if weights == "quadratic" else (i != j).astype(float)
    disagreement = float((w * expected).sum())
    if disagreement == 0:
        return 1.0
    return 1.0 - float((w * table).sum()) / disagreement


@dataclass
class Agreement:
    """The judge against people, on ``n`` graded outputs."""

    n: int
    ordinal: bool
    kappa: float
    accuracy: float  # the share graded the same
    table: np.ndarray  # people × judge
    labels: tuple[int, ...]
    self_agreement: float | None = None  # the share whose repeated judge grades were all the same
    repeats: int = 1
    skipped: list[str] = field(default_factory=list)  # cases left out, and why

    @property
    def weights(self) -> str:
        return "quadratic" if self.ordinal else "none"


def agreement(
    grades: Grades, judged: list[list[float]], *, threshold: float, skipped: list[str] | None = None
) -> Agreement:
    """``judged``: per graded row (in order), the judge's repeated scores in [0, 1]; its grade is
    their mean, as the suite scores it."""
    people = [g.grade for g in grades.rows]
    labels = [[judge_label(s, grades.ordinal, threshold) for s in scores] for scores in judged]
    # the judge's grade is the mean of its repeats, as the suite scores it
    judge = [judge_label(sum(scores) / len(scores), grades.ordinal, threshold) for scores in judged]
    weights = "quadratic" if grades.ordinal else None
    kappa = cohen_kappa(people, judge, grades.labels, weights)
    accuracy = float(np.mean([a == b for a, b in zip(people, judge, strict=True)])) if people else float("nan")
    repeats = max((len(found) for found in labels), default=1)
    itself = float(np.mean([len(set(found)) == 1 for found in labels])) if repeats > 1 else None
    table = confusion(people, judge, grades.labels)
    return Agreement(len(people), grades.ordinal, kappa, accuracy, table, grades.labels, itself, repeats, skipped or [])

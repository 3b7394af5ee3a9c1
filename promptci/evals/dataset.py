"""Cases of a suite: inline, or rows of a JSONL or CSV file mapped onto prompt variables."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import MAX_DATASET_BYTES, read_text
from ..project import Project
from ..yamlio import canonical_json, nesting_depth
from .suite import MAX_TURNS, Suite, Turn

MAX_DEPTH = 64  # levels a value of a case may nest: everything after walks it


@dataclass(frozen=True)
class EvalCase:
    """One case. ``id`` is a hash of its content, so it is stable across runs and machines."""

    id: str
    name: str
    vars: dict[str, Any]
    expected: Any
    data: dict[str, Any] = field(default_factory=dict)  # the whole dataset row, for scorers
    turns: tuple[Turn, ...] = ()  # a conversation's scripted user turns


def case_id(vars: dict[str, Any], expected: Any, turns: tuple[Turn, ...] = ()) -> str:
    content: dict[str, Any] = {"vars": vars, "expected": expected}
    if turns:  # a case without turns keeps the id it always had
        content["turns"] = [t.model_dump(mode="json", exclude_defaults=True, by_alias=True) for t in turns]
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()[:16]


def load_cases(project: Project, suite_path: Path, suite: Suite) -> list[EvalCase]:
    """Every distinct case of a suite: inline ones first, then dataset rows.

    A case is its variables and its expected answer (:func:`case_id`): rows that repeat an
    earlier one are the same case, evaluated and counted once, by eval, history, compare, the
    viewer and the optimizers alike; ``promptci lint`` warns about them with a count.
    A dataset that cannot be read, or a row without a mapped column, raises
    :class:`InputError` naming the suite, the file and the line.
    """
    return distinct(read_rows(project, suite_path, suite))


def distinct(rows: list[EvalCase]) -> list[EvalCase]:
    """``rows`` with each case once, where it first appears."""
    return list({case.id: case for case in reversed(rows)}.values())[::-1]


def repeated_rows(rows: list[EvalCase]) -> list[tuple[EvalCase, EvalCase]]:
    """Each row of ``rows`` that repeats an earlier case, with the first row of that case."""
    first: dict[str, EvalCase] = {}
    repeats = []
    for case in rows:
        if case.id in first:
            repeats.append((case, first[case.id]))
        else:
            first[case.id] = case
    return repeats


def read_rows(project: Project, suite_path: Path, suite: Suite) -> list[EvalCase]:
    """Every case of a suite as written, one per inline case and dataset row, repeats included."""
    cases = []
    for i, c in enumerate(suite.cases):
        turns = tuple(c.turns or ())
        name = c.id or f"case {i + 1}"
        cid = case_id(c.vars, c.expected, turns)
        cases.append(EvalCase(cid, name, dict(c.vars), c.expected, dict(c.metadata), turns))
    if suite.dataset is None:
        return cases
    ds = suite.dataset
    path = project.path(suite_path.parent / ds.path)
    shown = project.rel(path)
    if not path.is_file():
        raise InputError(f"dataset file not found (suite {project.rel(suite_path)})", path=shown)
    text = read_text(path, shown, limit=MAX_DATASET_BYTES, what="dataset")
    rows = read_jsonl(text, shown) if path.suffix == ".jsonl" else _read_csv(text, shown)
    for line, row in rows[: ds.limit] if ds.limit else rows:
        try:
            vars = {name: row[column] for name, column in ds.vars.items()}
            expected = row[ds.expected] if ds.expected else None
            turns = _turns(row[ds.turns], shown, line) if ds.turns else ()
        except KeyError as exc:
            raise InputError(
                f"row has no column {exc} (suite {project.rel(suite_path)})",
                path=shown,
                line=line,
                hint=f"columns: {', '.join(row)}",
            ) from None
        cases.append(EvalCase(case_id(vars, expected, turns), f"{shown}:{line}", vars, expected, row, turns))
    return cases


def _turns(value: Any, shown: str, line: int) -> tuple[Turn, ...]:
    """A dataset row's conversation: a list of user turns (text, or ``{user, expected, scorers}``)."""
    from pydantic import ValidationError

    if not isinstance(value, list) or not value:
        raise InputError("the turns column holds a list of user turns", path=shown, line=line)
    if len(value) > MAX_TURNS:
        raise InputError(f"{len(value):,} turns, more than {MAX_TURNS} in one conversation", path=shown, line=line)
    turns = []
    for i, raw in enumerate(value, 1):
        try:
            turns.append(Turn.model_validate(raw))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            message = f"turn {i}{' ' + where if where else ''}: {problem['msg']}"
            raise InputError(message, path=shown, line=line) from None
    return tuple(turns)


def read_jsonl(text: str, shown: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except RecursionError:
            raise InputError("JSON nests too deeply", path=shown, line=line_no) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=shown, line=line_no, col=exc.colno) from None
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", path=shown, line=line_no)
        if nesting_depth(row, MAX_DEPTH) > MAX_DEPTH:
            raise InputError(f"JSON nests deeper than {MAX_DEPTH} levels", path=shown, line=line_no)
        rows.append((line_no, row))
    return rows


def _read_csv(text: str, shown: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if None in row:
                raise InputError("row has more cells than the header", path=shown, line=reader.line_num)
            if None in row.values():
                missing = next(k for k, v in row.items() if v is None)
                raise InputError(
                    f"row has fewer cells than the header (no '{missing}')", path=shown, line=reader.line_num
                )
            rows.append((reader.line_num, {k: _cell(v) for k, v in row.items()}))
    except csv.Error as exc:
        raise InputError(f"invalid CSV: {exc}", path=shown, line=reader.line_num) from None
    return rows


def _cell(value: str | None) -> Any:
    # Cells holding a JSON list or object (choices, say) are read as such.
    if value and value[0] in "[{":
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
        return parsed if nesting_depth(parsed, MAX_DEPTH) <= MAX_DEPTH else value
    return value

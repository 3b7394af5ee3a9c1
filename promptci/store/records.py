"""What the store holds, row by row, and the only ways text enters a statement: checked names
(:func:`sql`, which also quotes the literals a statement cannot bind) and rows of placeholders
(:func:`placeholders`); every value is a bound parameter."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from string import Template
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ResultRow:
    """One model answer to one case, scored. Column order matches the ``results`` table."""

    run_id: str
    suite: str
    suite_hash: str
    prompt: str
    prompt_hash: str
    prompt_commit: str | None
    case_id: str
    case_name: str | None
    repeat_index: int
    model_id: str
    params_hash: str
    input: str
    expected: str
    output: str | None
    scores: str | None  # JSON {scorer: score}
    score: float | None
    passed: bool | None
    error: str | None
    latency_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    cached: bool
    created_at: datetime
    note: str | None = None  # what a scorer noted, e.g. "choice: ambiguous: states 'True' and 'False'"
    logprobs: str | None = None  # JSON, for a choice ranked by likelihood: {"logprobs": {choice: lp}, ...}


RESULT_COLUMNS = [f.name for f in fields(ResultRow)]


@dataclass(frozen=True, kw_only=True)
class StepRow:
    """One step of a pipeline's answer to one case. Column order matches the ``steps`` table;
    (run_id, suite, prompt, case_id, repeat_index) is the result row it belongs to."""

    run_id: str
    suite: str
    prompt: str  # the pipeline
    case_id: str
    repeat_index: int
    step_index: int
    step_id: str
    step_prompt: str
    step_prompt_hash: str
    model_id: str
    input: str | None  # the rendered messages, JSON
    output: str | None  # the model's text
    parsed: str | None  # what the step's parse: read from it (JSON unless a string)
    error: str | None  # render, provider or parse: the case ends at this step
    latency_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    cached: bool
    created_at: datetime


STEP_COLUMNS = [f.name for f in fields(StepRow)]


@dataclass(frozen=True, kw_only=True)
class TrajectoryRow:
    """One candidate instruction of an optimization. Column order matches ``trajectory``.

    ``status`` is ``initial``, ``scored``, ``duplicate``, ``too-long``, ``has-tag``,
    ``invalid`` (template syntax, or text the prompt file cannot hold), ``unparsable``
    (then ``text`` is the optimizer's raw reply), ``error`` (the optimizer call failed)
    or ``budget`` (scoring was cut short and the scores are missing).
    """

    optimization_id: str
    step: int
    candidate: int
    parent_step: int | None
    parent_candidate: int | None
    text: str
    text_hash: str
    status: str
    train_score: float | None
    dev_score: float | None
    loss: float | None  # the method's own objective on train, lower is better (GReaTer)
    accepted: bool
    edit_distance: int | None
    edit_budget: int | None
    calls: int
    tokens: int
    cost: float
    train_run: str | None
    dev_run: str | None
    created_at: datetime
    target: str | None = None  # a pipeline's: the id of the step whose instruction the candidate changes


TRAJECTORY_COLUMNS = [f.name for f in fields(TrajectoryRow)]


@dataclass(frozen=True, kw_only=True)
class CreditRow:
    """What the optimizer model said about one step of one failing case, in one step of a
    pipeline optimization: its feedback, and whether it named the step most to blame."""

    optimization_id: str
    step: int
    case_id: str
    step_id: str
    feedback: str
    blamed: bool
    created_at: datetime


CREDIT_COLUMNS = [f.name for f in fields(CreditRow)]
OPTIMIZATION_UPDATABLE = {
    "ended_at",
    "status",
    "best",
    "test_before",
    "test_after",
    "p_value",
    "calls",
    "tokens",
    "cost",
    "wall_s",
    "branch",
    "branch_commit",
    "pr_url",
}


@dataclass(frozen=True)
class CachedResponse:
    output: str
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    latency_ms: float | None
    logprobs: str | None = None


def now() -> datetime:
    """UTC, without tzinfo: duckdb returns TIMESTAMPTZ only through pytz, which we do not need."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class Quoted(str):
    """A name that is not a plain identifier (a database named after its file), double-quoted."""


def sql(template: str, literals: Mapping[str, str | list[str]] | None = None, **names: str) -> str:
    """``template`` with ``$name`` replaced by identifiers, each checked to be a plain one (or
    double-quoted, when :class:`Quoted`), and ``$name`` of ``literals`` by quoted SQL strings (a
    list: a list of them).

    The only way text gets into a statement here. Values are always bound parameters; literals
    are only for what a statement cannot bind: a file path in ``COPY … TO`` or ``read_parquet``.
    """
    for key, name in names.items():
        if isinstance(name, Quoted):
            names[key] = '"' + name.replace('"', '""') + '"'
        elif not _IDENTIFIER.match(name):
            raise ValueError(f"not an identifier: {name!r}")
    quoted = {
        key: "[" + ", ".join(map(literal, value)) + "]" if isinstance(value, list) else literal(value)
        for key, value in (literals or {}).items()
    }
    return Template(template).substitute({**names, **quoted})


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def placeholders(width: int, rows: int = 1) -> str:
    """``(?, ?, …), (…)``: ``rows`` rows of ``width`` bound parameters."""
    one = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([one] * rows)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

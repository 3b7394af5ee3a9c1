"""What determines an optimization: the settings every method shares, and the base of a method's options."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..evals.answers import Budget
from .hygiene import Hygiene


@dataclass(frozen=True)
class Settings:
    """Everything that determines an optimization; stored with it, so a resume matches.

    The fields every method shares; ``config`` holds the method's own options, validated
    by its ``Config`` (:func:`promptci.optimize.methods.configure`).
    """

    method: str
    steps: int
    candidates: int = 8
    split: tuple[float, float, float] = (0.2, 0.2, 0.6)
    seed: int = 0
    position: str | None = None
    max_chars: int = 500
    budget: dict[str, float] = field(default_factory=dict)  # calls, tokens, cost and/or seconds
    task_model: str | None = None  # the --task-model and --optimizer-model options, as given
    optimizer_model: str | None = None
    device: str | None = None  # the local task model's device and dtype, overriding its settings
    dtype: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    credit: str = "blame"  # a pipeline's: which step changes next, the one blamed ("blame") or each in turn

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data["split"] = tuple(data["split"])
        if "config" not in data:  # stored before methods had their own options: one flat record
            shared = {f.name for f in fields(cls)}
            legacy = {k: data.pop(k) for k in list(data) if k not in shared}
            data["config"] = {_LEGACY_PREFIX.sub("", k): v for k, v in legacy.items()}
        return cls(**data)

    @property
    def limits(self) -> Budget | None:
        return Budget.from_values(self.budget)


_LEGACY_PREFIX = re.compile(r"^(greater|catalyst|optimizer)_")


class Options(BaseModel):
    """The base of a method's ``Config``: unknown options are errors, and it is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hygiene: Hygiene = Field(
        default_factory=Hygiene,
        description="what refuses a candidate before it is scored: min_words, meta_run, case_run, new_symbols, "
        "likelihood_drop",
    )


class Proposing(Options):
    """The options of a method that samples instructions from an optimizer model."""

    exemplars: int = Field(3, ge=0, description="train cases shown to the optimizer model in each meta-prompt")
    temperature: float = Field(1.0, ge=0, le=2, description="the optimizer model's sampling temperature")
    max_tokens: int = Field(120, ge=1, description="the longest reply the optimizer model may write, in tokens")

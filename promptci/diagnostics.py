"""What lint finds and what it learns from each file, kept apart from the checks so that
the per-file cache (:mod:`promptci.lint_cache`) can store and restore them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding. Sorted by file, then position."""

    path: str
    line: int
    col: int
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class Located:
    """A value and where it is written."""

    text: str
    line: int
    col: int


@dataclass
class Facts:
    """What one file says about itself, and what the cross-file checks need from it."""

    path: str
    kind: Literal["prompt", "suite", "labels", "pipeline"]
    found: list[Diagnostic] = field(default_factory=list)
    name: Located | None = None  # prompt: its declared name
    variables: list[str] = field(default_factory=list)  # prompt: declared variable names
    refs: list[Located] = field(default_factory=list)  # suite: prompt references
    uses: list[Located] = field(default_factory=list)  # suite: variables it passes
    dataset: Located | None = None  # suite: dataset path, relative to the suite
    labels: list[tuple[str, str, str, int, int]] = field(default_factory=list)  # prompt, label, sha, line, col
    optimize: Located | None = None  # prompt: the suite its optimize: block names
    scorer_modules: list[Located] = field(default_factory=list)  # suite: modules of python scorers
    loglik: Located | None = None  # suite: its mode: loglik key, holding the suite's own provider ("" if none)
    required: list[str] = field(default_factory=list)  # prompt: the variables it cannot do without
    step_prompts: list[Located] = field(default_factory=list)  # pipeline: each step's prompt reference
    step_ids: list[str] = field(default_factory=list)  # pipeline: each step's id
    step_vars: list[list[Located]] = field(default_factory=list)  # pipeline: the variables each step binds

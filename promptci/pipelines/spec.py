"""The pipeline file format: what a ``pipelines/*.yaml`` file may contain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..patterns import check as check_pattern
from ..prompts.spec import NAME_PATTERN, Variable
from ..settings import ModelSettings, OptimizeSpec

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_PATTERN = 1000  # characters of a parse regex
MAX_STEPS = 32


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)


class Parse(_Strict):
    """How a step's output is read before later steps and scorers see it. Exactly one key."""

    regex: str | None = Field(
        None, max_length=MAX_PATTERN, description="the first group of the first match (else the whole match)"
    )
    json_: str | None = Field(
        None,
        alias="json",
        max_length=200,
        description="the first JSON value in the output, then this dotted path into it ('' for the whole value)",
    )
    strip: bool | None = Field(None, description="the output without surrounding whitespace")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            check_pattern(value)
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Parse:
        given = [k for k in ("regex", "json_", "strip") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'regex', 'json' or 'strip'")
        return self


class Step(_Strict):
    """One call in the pipeline: a registry prompt, its variables as expressions, and how to read it."""

    id: str = Field(pattern=STEP_ID_PATTERN, description="how later steps refer to this one: steps.<id>.output")
    prompt: str = Field(description="NAME, NAME@REV or NAME@LABEL from the prompt registry")
    vars: dict[str, str] = Field(
        default_factory=dict,
        description="prompt variable -> a Jinja2 template over inputs.<name> and steps.<id>.output",
    )
    model: ModelSettings | None = Field(None, description="model settings for this step only")
    parse: Parse | None = None

    @field_validator("vars", mode="before")
    @classmethod
    def _scalars_are_templates(cls, value: Any) -> Any:
        # `vars: {n: 3}` is a constant; keep it a template that renders to itself.
        if isinstance(value, dict):
            return {k: _constant(v) for k, v in value.items()}
        return value


def _constant(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


class PipelineSpec(_Strict):
    """A pipeline file: ordered steps, each a prompt from the registry, and the step that is scored."""

    name: str = Field(pattern=NAME_PATTERN, description="unique across the project's prompts and pipelines")
    description: str = ""
    inputs: dict[str, Variable] = Field(default_factory=dict, description="typed like a prompt's variables")
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    output: str = Field(description="the id of the step whose parsed output is the pipeline's answer")
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    optimize: OptimizeSpec | None = Field(None, description="an opt-in optimizer pass in CI")

    @field_validator("inputs", mode="before")
    @classmethod
    def _shorthand_types(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("inputs")
    @classmethod
    def _identifier_names(cls, value: dict[str, Variable]) -> dict[str, Variable]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"input name '{name}' is not a valid identifier")
        return value

    def index(self, step_id: str) -> int | None:
        """The position of step ``step_id``; None when there is no such step."""
        return next((i for i, s in enumerate(self.steps) if s.id == step_id), None)

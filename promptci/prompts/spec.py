"""The prompt file format: what a ``prompts/*.yaml`` file may contain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

VariableType = Literal["string", "integer", "number", "boolean", "array", "object", "any"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Variable(_Strict):
    """One input of a prompt. ``required`` defaults to true unless a ``default`` is given."""

    type: VariableType = "string"
    description: str = ""
    required: bool = True
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_make_optional(cls, data: Any) -> Any:
        if isinstance(data, dict) and "default" in data and "required" not in data:
            return {**data, "required": False}
        return data

    @model_validator(mode="after")
    def _required_has_no_default(self) -> Variable:
        if self.required and self.default is not None:
            raise ValueError("a required variable cannot have a default; drop one of them")
        return self


class Message(_Strict):
    """One chat message; ``content`` is a Jinja2 template."""

    role: Literal["system", "user", "assistant"]
    content: str


class ModelSettings(_Strict):
    """Default model settings for a prompt, or for the whole project in ``promptci.yaml``."""

    provider: str | None = Field(None, description="transformers, openai, or a plugin's name")
    model: str | None = Field(None, description="model id, directory, GGUF file or API model name")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    stop: list[str] | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="extra provider parameters")

    def merged(self, override: ModelSettings | None) -> ModelSettings:
        """These settings with every field that ``override`` sets replacing ours."""
        if override is None:
            return self
        changes = {k: getattr(override, k) for k in override.model_fields_set}
        if "params" in changes:
            changes["params"] = {**self.params, **override.params}
        return self.model_copy(update=changes)


class PromptSpec(_Strict):
    """A prompt file. Exactly one of ``messages`` or ``template`` is given."""

    name: str = Field(pattern=NAME_PATTERN, description="unique across the project")
    description: str = ""
    messages: list[Message] | None = Field(None, min_length=1)
    template: str | None = None
    variables: dict[str, Variable] = Field(default_factory=dict)
    model: ModelSettings | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("variables", mode="before")
    @classmethod
    def _shorthand_types(cls, value: Any) -> Any:
        # `variables: {question: string}` is short for `{question: {type: string}}`.
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("variables")
    @classmethod
    def _identifier_names(cls, value: dict[str, Variable]) -> dict[str, Variable]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"variable name '{name}' is not a valid identifier")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> PromptSpec:
        if (self.messages is None) == (self.template is None):
            raise ValueError("give exactly one of 'messages' or 'template'")
        return self

    def templates(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Each Jinja2 source in the prompt with its location in the file."""
        if self.template is not None:
            return [(("template",), self.template)]
        assert self.messages is not None
        return [(("messages", i, "content"), m.content) for i, m in enumerate(self.messages)]

"""The prompt file format: what a ``prompts/*.yaml`` file may contain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..settings import ModelSettings, OptimizeSpec

# At most 128 characters: a name is a YAML key in labels.yaml, and YAML reads no plain key past 1024.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"

VariableType = Literal["string", "integer", "number", "boolean", "array", "object", "messages", "image", "any"]


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


# What the OpenAI and Anthropic APIs take as a tool's or a response format's name.
TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"
MAX_TOOLS = 128
MAX_MESSAGE_CALLS = 32


class CalledFunction(_Strict):
    """The function an earlier turn called: ``arguments`` as a mapping (data, never a template),
    or as the JSON text a model wrote."""

    name: str = Field(pattern=TOOL_NAME)
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class MessageToolCall(_Strict):
    """A tool call an assistant turn made, in OpenAI's shape."""

    id: str = Field(pattern=TOOL_NAME, description="what the tool message answering it names as tool_call_id")
    type: Literal["function"] = "function"
    function: CalledFunction


class TextPart(_Strict):
    """A text part of a message's content: a Jinja2 template."""

    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    """An image part: a repository path (``img/logo.png``) or an ``https://`` URL, or a template that
    gives one (``{{ photo }}``, a variable of type ``image``)."""

    type: Literal["image"]
    image: str = Field(min_length=1, max_length=4096)
    detail: Literal["auto", "low", "high"] | None = Field(None, description="how closely the model looks")


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
MAX_PARTS = 64


class Message(_Strict):
    """One chat message; ``content`` is a Jinja2 template.

    An assistant turn may carry ``tool_calls`` (its content may then be empty), and a ``tool``
    turn answers one of them by ``tool_call_id``: a worked example of a call and its result.
    ``{history: NAME}`` stands where the turns of the ``messages`` variable NAME go.
    """

    role: Literal["system", "user", "assistant", "tool"] | None = None
    content: str | list[ContentPart] = Field("", description="text (a template), or a list of text and image parts")
    tool_calls: list[MessageToolCall] | None = Field(None, min_length=1, max_length=MAX_MESSAGE_CALLS)
    tool_call_id: str | None = Field(None, pattern=TOOL_NAME)
    history: str | None = Field(None, description="a messages variable whose turns go here")

    @model_validator(mode="after")
    def _calls_and_results(self) -> Message:
        if self.history is not None:
            if self.model_fields_set - {"history"}:
                raise ValueError("{history: NAME} stands alone: the turns come from the variable")
            return self
        if self.role is None:
            raise ValueError("a message has a role (system, user, assistant or tool), or is {history: NAME}")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only an assistant message carries tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only one, names the call it answers in tool_call_id")
        if not self.content and self.tool_calls is None:
            raise ValueError("content is empty: only an assistant message with tool_calls may have none")
        if isinstance(self.content, list):
            if len(self.content) > MAX_PARTS:
                raise ValueError(f"content has {len(self.content)} parts, more than {MAX_PARTS}")
            if self.role != "user" and any(isinstance(p, ImagePart) for p in self.content):
                raise ValueError("only a user message carries images")
        return self


class Function(_Strict):
    """A function a model may call: its ``description`` is a Jinja2 template, its ``parameters``
    a JSON Schema (data, never a template)."""

    name: str = Field(pattern=TOOL_NAME, description="letters, digits, '_' and '-', at most 64")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = Field(False, description="the provider's strict mode: every argument required, no others")


class Tool(_Strict):
    """A tool in the OpenAI function-tool shape."""

    type: Literal["function"] = "function"
    function: Function


class ToolChoiceFunction(_Strict):
    name: str = Field(pattern=TOOL_NAME)


class ToolChoice(_Strict):
    """``{type: function, function: {name: NAME}}``: the model must call this tool."""

    type: Literal["function"] = "function"
    function: ToolChoiceFunction


class JsonSchemaFormat(_Strict):
    name: str = Field(pattern=TOOL_NAME)
    description: str = ""
    schema_: dict[str, Any] = Field(alias="schema", description="the JSON Schema the reply must meet")
    strict: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)


class ResponseFormat(_Strict):
    """``json_schema`` (a named schema the reply must meet) or ``json_object`` (any JSON object)."""

    type: Literal["json_schema", "json_object", "text"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("type json_schema takes a json_schema: {name, schema}; the other types take none")
        return self


class Examples(_Strict):
    """Demonstrations chosen per case from a pool file (:mod:`promptci.prompts.examples`)."""

    from_: str = Field(
        alias="from",
        pattern=r"^(?:[A-Za-z0-9_\-][A-Za-z0-9_.\-]*/)*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*\.jsonl$",
        description="a JSONL file in the repository, from its root: rows of the prompt's variables and the answer",
    )
    answer: str = Field("answer", description="the column holding each example's answer")
    k: int = Field(3, ge=1, le=16, description="examples shown per case")
    select: Literal["similar", "first"] = Field(
        "similar", description="similar: the k nearest the case's question by BM25; first: the pool's first k"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)


class PromptSpec(_Strict):
    """A prompt file. Exactly one of ``messages`` or ``template`` is given."""

    name: str = Field(pattern=NAME_PATTERN, description="unique across the project")
    description: str = ""
    messages: list[Message] | None = Field(None, min_length=1)
    template: str | None = None
    variables: dict[str, Variable] = Field(default_factory=dict)
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS, description="functions the model may call")
    tool_choice: Literal["auto", "none", "required"] | ToolChoice | None = Field(
        None, description="auto, none, required, or {type: function, function: {name: NAME}}"
    )
    response_format: ResponseFormat | None = Field(None, description="json_schema or json_object")
    examples: Examples | None = Field(None, description="demonstrations chosen per case from a pool file")
    model: ModelSettings | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    optimize: OptimizeSpec | None = Field(None, description="an opt-in optimizer pass in CI")

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
        if self.examples is not None and not any(m.role == "user" for m in self.messages or ()):
            raise ValueError("examples go before the final user message: give the prompt messages with one")
        for m in self.messages or ():
            var = self.variables.get(m.history or "")
            if m.history is not None and (var is None or var.type != "messages"):
                raise ValueError(f"{{history: {m.history}}} names no variable of type messages")
        return self

    def templates(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Each Jinja2 source in the prompt with its location in the file: the messages (or the
        template) and the tools' descriptions. Schemas are data, never templates."""
        described: list[tuple[tuple[str | int, ...], str]] = [
            (("tools", i, "function", "description"), t.function.description)
            for i, t in enumerate(self.tools)
            if t.function.description
        ]
        if self.template is not None:
            return [(("template",), self.template), *described]
        assert self.messages is not None
        turns: list[tuple[tuple[str | int, ...], str]] = []
        for i, m in enumerate(self.messages):
            if m.history is not None:
                continue
            if isinstance(m.content, str):
                turns.append((("messages", i, "content"), m.content))
                continue
            for j, part in enumerate(m.content):
                if isinstance(part, TextPart):
                    turns.append((("messages", i, "content", j, "text"), part.text))
                else:
                    turns.append((("messages", i, "content", j, "image"), part.image))
        return [*turns, *described]

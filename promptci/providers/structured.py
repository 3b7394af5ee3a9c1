"""Tools and response formats for a model run in this process, which has no API to take them.

A hosted model takes ``tools``, ``tool_choice`` and ``response_format`` as request fields. A model
loaded with transformers reads only text, so three things are done here, as plain Python:

- **The tools are shown to the model.** A chat template that takes ``tools`` renders them itself;
  for one that does not (the embedded SmolLM2's), :func:`preamble` is added to the system message.
- **Its reply is decoded under a grammar** (:func:`grammar`), in the Lark dialect of llguidance:
  a tool call is ``<tool_call>{"name": …, "arguments": …}</tool_call>``, its arguments decoded
  under the tool's ``parameters`` schema, and a ``json_schema`` response under its schema. The
  format is the one Hermes, Qwen and SmolLM3 templates use.
- **The text it wrote is read back** (:func:`read_reply`) into the stored form the hosted
  providers store (:func:`.replies.encode`), so the same scorers read both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .replies import Call, encode

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# How the JSON is spaced: as json.dumps writes it, which is what small models have read most;
# no other whitespace, so a greedy model cannot spin on spaces or newlines inside an object.
_SPACING = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_CALL = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|$)", re.S)
MAX_LOCAL_CALLS = 8  # tool calls one local reply may make: the grammar allows no more


@dataclass(frozen=True)
class Shape:
    """A request's tools, tool choice and response format, as the OpenAI API takes them."""

    tools: tuple[Mapping[str, Any], ...] = ()
    choice: Any = None
    response_format: Mapping[str, Any] | None = field(default=None)

    @classmethod
    def of(cls, pieces: str) -> Shape:
        """The shape of a :class:`~.base.Request`'s ``tools`` (canonical JSON, "" for none)."""
        if not pieces:
            return cls()
        data = json.loads(pieces)
        return cls(tuple(data.get("tools") or ()), data.get("tool_choice"), data.get("response_format"))

    @property
    def functions(self) -> list[Mapping[str, Any]]:
        """The function of each tool the model may call, after ``tool_choice``."""
        if self.choice == "none":
            return []
        functions = [t["function"] for t in self.tools if isinstance(t.get("function"), Mapping)]
        if isinstance(self.choice, Mapping):
            chosen = (self.choice.get("function") or {}).get("name")
            functions = [f for f in functions if f.get("name") == chosen]
        return functions

    @property
    def must_call(self) -> bool:
        return bool(self.functions) and (self.choice == "required" or isinstance(self.choice, Mapping))

    @property
    def schema(self) -> Mapping[str, Any] | None:
        """The JSON schema a reply that calls no tool must meet, if any."""
        fmt = self.response_format or {}
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            return spec.get("schema") or {}
        if fmt.get("type") == "json_object":
            return {"type": "object"}
        return None


def preamble(shape: Shape) -> str | None:
    """What tells a model whose chat template takes no tools which tools it has and how to call
    them; None when it may call none."""
    functions = shape.functions
    if not functions:
        return None
    listed = "\n".join(json.dumps(dict(f), ensure_ascii=False) for f in functions)
    rule = "You must call one of them." if shape.must_call else "Call one when it helps; else answer in text."
    return (
        f"You can call these tools. {rule} To call one, reply with only\n"
        f'{OPEN}{{"name": <tool name>, "arguments": <arguments object>}}{CLOSE}\n\n'
        f"Tools:\n{listed}"
    )


def grammar(shape: Shape, parallel: bool = False) -> str | None:
    """The llguidance Lark grammar a reply is decoded under; None for free text.

    A reply makes one tool call, or with ``parallel`` (``parallel_tool_calls: true`` in the
    model's params, as OpenAI names it) up to :data:`MAX_LOCAL_CALLS`: a small greedy model
    offered a second call takes it, and then a third."""
    functions = shape.functions
    schema = shape.schema
    if not functions and schema is None:
        return None
    rules = []
    if functions:
        names = [f"tool{i}" for i in range(len(functions))]
        rules.append(f'calls: call ("\\n" call){{0,{MAX_LOCAL_CALLS - 1}}}' if parallel else "calls: call")
        rules.append(f'call: "{OPEN}" ({" | ".join(names)}) "{CLOSE}"')
        rules += [f"{name}: %json {_dumps(_call_schema(f))}" for name, f in zip(names, functions, strict=True)]
    top = ["calls"] if functions else []
    if schema is not None and not shape.must_call:
        top.append("answer")
        rules.append(f"answer: %json {_dumps(_spaced(schema))}")
    elif not shape.must_call:
        # Free text may not begin with "<": that is how a call begins. The text is otherwise free.
        top.append("TEXT")
        rules.append(r"TEXT: /[^<][\s\S]*/")
    return "\n".join([f"start: {' | '.join(top)}", *rules]) + "\n"


def grammars(shapes: Sequence[Shape], params: Mapping[str, Any]) -> list[str | None]:
    """Each request's grammar under the model's ``params`` (``constrain``, ``parallel_tool_calls``);
    none at all with ``constrain: false``."""
    if not params.get("constrain", True):
        return []
    parallel = bool(params.get("parallel_tool_calls", False))
    return [grammar(s, parallel) for s in shapes]


def _call_schema(function: Mapping[str, Any]) -> dict[str, Any]:
    """A call of ``function`` as one JSON object, its arguments under the tool's own schema."""
    parameters = function.get("parameters") or {"type": "object"}
    return _spaced(
        {
            "type": "object",
            "properties": {"name": {"const": function.get("name", "")}, "arguments": _rebase(parameters)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
    )


def _rebase(schema: Any, at: str = "#/properties/arguments") -> Any:
    """``schema`` with each local ``$ref`` pointing where the schema now sits, under ``at``."""
    if isinstance(schema, Mapping):
        return {
            k: (at + v[1:] if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rebase(v, at))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(v, at) for v in schema]
    return schema


def _spaced(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {**_closed(schema), "x-guidance": _SPACING}


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to others, unless it says
    otherwise: JSON Schema's default admits any property, and a small model decoding under it
    wanders into the schema's own words (``"properties": …``)."""
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DATA:
            out[key] = value
        elif key in _NAMED and isinstance(value, Mapping):
            out[key] = {name: _closed(sub) for name, sub in value.items()}
        elif isinstance(value, list):
            out[key] = [_closed(v) for v in value]
        else:
            out[key] = _closed(value)
    if isinstance(schema.get("properties"), Mapping) and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


_DATA = {"enum", "const", "default", "examples", "required", "description", "title"}  # values, not schemas
_NAMED = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}  # name -> schema


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def read_reply(text: str, shape: Shape) -> str:
    """The stored output for the ``text`` a local model wrote: its tool calls, in the form the
    hosted providers store them, when it made any; else the text as it is."""
    if not shape.functions or not text.lstrip().startswith(OPEN):
        return text
    calls = [_call(block.strip()) for block in _CALL.findall(text)]
    rest = _CALL.sub("", text).strip()
    return encode(rest or None, calls)


def _call(block: str) -> Call:
    """One ``<tool_call>`` block as a call; a block that is not a whole call keeps its text as the
    arguments, which the scorers then report as unparsable."""
    try:
        data = json.loads(block)
    except ValueError:
        name = re.search(r'"name"\s*:\s*"([^"]*)"', block)
        return Call(name.group(1) if name else "", block)
    if not isinstance(data, Mapping):
        return Call("", block)
    arguments = data.get("arguments")
    raw = json.dumps(arguments, ensure_ascii=False) if isinstance(arguments, Mapping) else block
    return Call(str(data.get("name", "")), raw)


def for_template(
    messages: Sequence[Mapping[str, Any]], shape: Shape, template: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages and tools to give a chat template: a template that takes tools renders them,
    and earlier calls and results, its own way; for one that does not, :func:`tool_messages`."""
    if "tools" in template:
        functions = [{"type": "function", "function": dict(f)} for f in shape.functions]
        return native(messages), functions or None
    return tool_messages(messages, shape), None


def tool_messages(messages: Sequence[Mapping[str, Any]], shape: Shape) -> list[dict[str, Any]]:
    """``messages`` as text for a chat template that takes no tools: earlier calls written as the
    model is to write them, a tool's result as a user turn in ``<tool_response>``, and the tools
    shown in the system message (first, added if there is none)."""
    out = [_as_text(m) for m in messages]
    text = preamble(shape)
    if text is None:
        return out
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{text}"
    else:
        out.insert(0, {"role": "system", "content": text})
    return out


def _as_text(message: Mapping[str, Any]) -> dict[str, Any]:
    role, content = str(message["role"]), str(message.get("content") or "")
    if role == "tool":
        return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
    calls = message.get("tool_calls") or ()
    written = [
        OPEN + json.dumps({"name": c["function"]["name"], "arguments": _parsed(c["function"]["arguments"])},
                          ensure_ascii=False) + CLOSE
        for c in calls
    ]  # fmt: skip
    return {"role": role, "content": "\n".join(([content] if content else []) + written)}


def native(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` for a chat template that takes tools: calls' arguments as mappings, as
    transformers' templates read them."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": _parsed(c["function"]["arguments"])}}
                for c in m["tool_calls"]
            ]
        out.append(m)
    return out


def _parsed(arguments: Any) -> Any:
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments

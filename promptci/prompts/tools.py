"""Tools and structured outputs: what a prompt's ``tools``, ``tool_choice`` and
``response_format`` must satisfy, and how they are sent in each provider's own shape.

Checks work on the raw YAML data, so that ``lint`` can place every problem at its line; each is
``(location, message)``. The request shapes are plain dicts, built without any SDK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..redact import clip

Location = tuple[str | int, ...]
Problem = tuple[Location, str]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_SCHEMA_DEPTH = 32  # levels a tool's schema may nest: providers refuse far less


def problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a prompt's tools, tool choice and response format."""
    found: list[Problem] = []
    tools = data.get("tools")
    names: dict[str, int] = {}
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            continue  # the schema check reports the shape
        name = function.get("name")
        if isinstance(name, str) and _NAME.match(name):
            if name in names:
                found.append(
                    (
                        (("tools", i, "function", "name")),
                        f"tool '{name}' is defined twice (first: tool {names[name] + 1})",
                    )
                )
            names.setdefault(name, i)
        parameters = function.get("parameters")
        if parameters is not None:
            found += schema_problems(parameters, ("tools", i, "function", "parameters"), bool(function.get("strict")))
    choice = data.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        chosen = choice["function"].get("name")
        if isinstance(chosen, str) and chosen not in names:
            known = ", ".join(sorted(names)) or "none"
            found.append(
                (
                    ("tool_choice", "function", "name"),
                    f"tool_choice names '{chosen}', which is no tool here (tools: {known})",
                )
            )
    elif choice in ("required",) and not names:
        found.append((("tool_choice",), "tool_choice: required needs at least one tool"))
    found += _turn_problems(data.get("messages"), names)
    fmt = data.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        spec = fmt["json_schema"]
        if isinstance(spec.get("schema"), dict):
            found += schema_problems(
                spec["schema"], ("response_format", "json_schema", "schema"), bool(spec.get("strict"))
            )
    return found


def _turn_problems(messages: Any, names: Mapping[str, int]) -> list[Problem]:
    """Earlier turns' calls name defined tools with JSON arguments, and each tool result answers
    a call made before it."""
    found: list[Problem] = []
    made: set[str] = set()
    for i, m in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(m, dict):
            continue
        calls = m.get("tool_calls")
        for k, c in enumerate(calls if isinstance(calls, list) else []):
            function = c.get("function") if isinstance(c, dict) else None
            if not isinstance(function, dict):
                continue
            made.add(str(c.get("id")))
            name = function.get("name")
            if isinstance(name, str) and names and name not in names:
                known = ", ".join(sorted(names))
                found.append(
                    (
                        (("messages", i, "tool_calls", k, "function", "name")),
                        f"'{name}' is no tool here (tools: {known})",
                    )
                )
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    parsed = json.loads(arguments)
                except ValueError as exc:
                    parsed, why = None, f"not JSON ({exc.args[0]})"
                else:
                    why = "not a JSON object"
                if not isinstance(parsed, dict):
                    found.append((("messages", i, "tool_calls", k, "function", "arguments"), f"arguments are {why}"))
        answered = m.get("tool_call_id")
        if m.get("role") == "tool" and isinstance(answered, str) and answered not in made:
            found.append((("messages", i, "tool_call_id"), f"tool_call_id '{answered}' answers no earlier tool call"))
    return found


def schema_problems(schema: Any, at: Location, strict: bool) -> list[Problem]:
    """``schema`` checked against its JSON Schema metaschema, and against the strict-mode rules
    where ``strict``: every object closed (``additionalProperties: false``) with every property
    required."""
    if not isinstance(schema, dict):
        return [(at, "a schema is a mapping")]
    from ..yamlio import nesting_depth

    if nesting_depth(schema, MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH:
        return [(at, f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")]
    from .schemafiles import has_file_refs

    if has_file_refs(schema):
        return []  # checked once its files are read (lint's check of schema files)
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as error:
        where = (*at, *error.path)
        return [(where, f"not a valid JSON Schema: {clip(error.message, 160)}")]
    except (RecursionError, jsonschema.exceptions.RefResolutionError) as exc:  # a $ref loop
        return [(at, f"not a usable JSON Schema: {type(exc).__name__}")]
    return list(_strict_problems(schema, at)) if strict else []


def _strict_problems(schema: Any, at: Location) -> Iterator[Problem]:
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            yield at, "strict mode needs additionalProperties: false on every object"
        missing = sorted(set(properties) - set(schema.get("required") or []))
        if missing:
            yield at, f"strict mode needs every property required; not required: {', '.join(missing)}"
        for name, sub in properties.items() if isinstance(properties, dict) else ():
            yield from _strict_problems(sub, (*at, "properties", name))
    for key in ("items", "additionalItems"):
        if isinstance(schema.get(key), dict):
            yield from _strict_problems(schema[key], (*at, key))
    for key in ("anyOf", "$defs", "definitions"):
        group = schema.get(key)
        entries = group.items() if isinstance(group, dict) else enumerate(group) if isinstance(group, list) else ()
        for name, sub in entries:
            yield from _strict_problems(sub, (*at, key, name))


# Request pieces in each provider's shape.


def openai_tools(tools: Sequence[Any], descriptions: Sequence[str]) -> list[dict[str, Any]]:
    """``tools`` (spec objects or dicts) with their rendered descriptions, as OpenAI takes them."""
    out = []
    for tool, description in zip(tools, descriptions, strict=True):
        fn = _function(tool)
        entry: dict[str, Any] = {"name": fn["name"], "parameters": fn["parameters"]}
        if description:
            entry["description"] = description
        if fn.get("strict"):
            entry["strict"] = True
        out.append({"type": "function", "function": entry})
    return out


def openai_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": _get(_get(choice, "function"), "name")}}


def openai_format(fmt: Any) -> dict[str, Any] | None:
    if fmt is None:
        return None
    kind = _get(fmt, "type")
    if kind != "json_schema":
        return {"type": kind}
    spec = _get(fmt, "json_schema")
    schema = _get(spec, "schema_") if not isinstance(spec, dict) else spec["schema"]
    body: dict[str, Any] = {"name": _get(spec, "name"), "schema": schema}
    if _get(spec, "description"):
        body["description"] = _get(spec, "description")
    if _get(spec, "strict"):
        body["strict"] = True
    return {"type": "json_schema", "json_schema": body}


def description(tool: Any) -> str:
    """A tool's description template (spec object or plain data)."""
    return str(_get(_get(tool, "function"), "description") or "")


def _function(tool: Any) -> dict[str, Any]:
    fn = _get(tool, "function")
    return {
        "name": _get(fn, "name"),
        "parameters": _get(fn, "parameters"),
        "strict": bool(_get(fn, "strict")),
    }


def _get(thing: Any, name: str) -> Any:
    """A field of a spec object (pydantic or the runtime's dataclass) or of plain data."""
    if isinstance(thing, Mapping):
        return thing.get(name if name != "schema_" else "schema")
    return getattr(thing, name, None)

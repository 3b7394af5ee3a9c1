"""OpenAI-shaped messages and tools as Anthropic's Messages API takes them.

What :meth:`promptci.prompts.prompt.Prompt.anthropic_kwargs` returns, and what a batch sent to
Anthropic's Message Batches carries: the system text apart, tools with ``input_schema``, images
as source blocks, and a tool's calls and results as ``tool_use`` and ``tool_result`` blocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import RenderError


def anthropic_request(
    messages: Sequence[Mapping[str, Any]], tools: list[dict[str, Any]], choice: Any, fmt: dict[str, Any] | None
) -> dict[str, Any]:
    """OpenAI-shaped pieces as Anthropic's Messages API takes them: the system text apart, tools
    with ``input_schema``, and a JSON schema as a tool the model must call (Anthropic's own recipe
    for structured output)."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system")
    request: dict[str, Any] = {"messages": anthropic_messages([m for m in messages if m["role"] != "system"])}
    if system:
        request["system"] = system
    converted = [
        {
            "name": t["function"]["name"],
            **({"description": t["function"]["description"]} if t["function"].get("description") else {}),
            "input_schema": t["function"]["parameters"],
        }
        for t in tools
    ]
    if fmt is not None and fmt["type"] == "json_schema":
        spec = fmt["json_schema"]
        converted.append({"name": spec["name"], "description": spec.get("description") or "Reply in this form.",
                          "input_schema": spec["schema"]})  # fmt: skip
        request["tool_choice"] = {"type": "tool", "name": spec["name"]}
    elif choice == "required":
        request["tool_choice"] = {"type": "any"}
    elif choice == "auto":
        request["tool_choice"] = {"type": "auto"}
    elif choice == "none":
        request["tool_choice"] = {"type": "none"}
    elif isinstance(choice, dict):
        request["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    if converted:
        request["tools"] = converted
    return request


def anthropic_part(part: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI content part as Anthropic's: an image as a base64 or URL source block."""
    if part.get("type") != "image_url":
        return dict(part)
    url = str(part["image_url"]["url"])
    if url.startswith("data:"):
        media, _, data = url[len("data:") :].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def anthropic_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's turns as Anthropic's: an assistant's calls as ``tool_use`` blocks, and tool results
    as ``tool_result`` blocks of one user turn (Anthropic's turns alternate)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m.get("content") or ""}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            for c in m["tool_calls"]:
                arguments = c["function"]["arguments"]
                try:
                    parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
                except ValueError:
                    parsed = {}
                blocks.append({"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": parsed})
            out.append({"role": "assistant", "content": blocks})
        elif isinstance(m.get("content"), list):
            out.append({"role": m["role"], "content": [anthropic_part(p) for p in m["content"]]})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    for i in range(1, len(out)):
        if out[i]["role"] == out[i - 1]["role"]:
            raise RenderError(
                f"turns {i} and {i + 1} are both {out[i]['role']} turns: Anthropic's API needs user and assistant"
                " turns to alternate"
            )
    return out

"""Where the optimized instruction lives in a prompt, and writing a new one back into the file.

Write-back edits only the characters of the one YAML scalar that changes, so comments,
key order, quoting elsewhere and every other field survive byte for byte.
"""

from __future__ import annotations

import json

import yaml

from ..errors import InputError
from ..prompts.spec import PromptSpec
from ..yamlio import parse_yaml


def instruction_location(spec: PromptSpec) -> tuple[str | int, ...]:
    """The YAML path of the text an optimizer rewrites: the system message, else the template."""
    if spec.messages:
        for i, message in enumerate(spec.messages):
            if message.role == "system":
                return ("messages", i, "content")
        raise InputError(
            f"prompt '{spec.name}' has no system message to optimize",
            hint="add a system message holding the instruction, or use a template prompt",
        )
    return ("template",)


def replace_scalar(text: str, path: str, loc: tuple[str | int, ...], value: str) -> str:
    """``text`` with the scalar at ``loc`` replaced by ``value``; nothing else changes."""
    doc = parse_yaml(text, path)
    node = doc.node
    for step in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step]
        else:
            node = None
        if node is None:
            raise InputError(f"no value at {'.'.join(map(str, loc))}", path=path)
    if not isinstance(node, yaml.ScalarNode):
        raise InputError(f"{'.'.join(map(str, loc))} is not a text value", path=path)
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        indent = " " * (node.start_mark.column + 2) if node.start_mark.column else "  "
        # Keep the indentation of the block's own lines.
        first_line = text[start:end].split("\n", 2)
        if len(first_line) > 1:
            body = first_line[1]
            indent = body[: len(body) - len(body.lstrip(" "))] or indent
        rendered = "|\n" + "".join(f"{indent}{line}\n" if line else "\n" for line in value.split("\n"))
        if not text[start:end].endswith("\n"):
            rendered = rendered.rstrip("\n")
    else:
        rendered = json.dumps(value, ensure_ascii=False)  # a double-quoted YAML scalar
    updated = text[:start] + rendered + text[end:]
    parse_yaml(updated, path)  # the edit must leave valid YAML
    return updated

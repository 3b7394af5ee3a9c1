"""Where the optimized instruction lives in a prompt, and writing a new one back into the file.

Write-back edits only the characters of the one YAML scalar that changes, so comments,
key order, quoting elsewhere and every other field survive byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from ..errors import InputError
from ..prompts.spec import PromptSpec
from ..yamlio import parse_yaml

POSITIONS = ("system", "before", "after")


@dataclass(frozen=True)
class Slot:
    """Where the optimized instruction sits in a prompt, and how it joins the text there.

    ``system``: the instruction *is* the system message. ``before``/``after``: the
    instruction is a line added before or after the user message (or template), and
    the search starts from the empty instruction, as OPRO does on BIG-bench Hard.
    """

    loc: tuple[str | int, ...]
    position: str
    original: str

    @property
    def initial(self) -> str:
        return self.original if self.position == "system" else ""

    def compose(self, instruction: str) -> str:
        """The scalar's new text holding ``instruction``."""
        if self.position == "system" or not instruction:
            return instruction or self.original
        if self.position == "before":
            return f"{instruction}\n{self.original}"
        trailing = "\n" if self.original.endswith("\n") else ""
        return f"{self.original.rstrip(chr(10))}\n{instruction}{trailing}"


def default_position(spec: PromptSpec) -> str:
    return "system" if any(m.role == "system" for m in spec.messages or ()) else "before"


def instruction_slot(spec: PromptSpec, position: str | None = None) -> Slot:
    """The slot at ``position`` (by default the system message when there is one, else before)."""
    position = position or default_position(spec)
    if position not in POSITIONS:
        raise InputError(f"unknown position '{position}'", hint=f"one of: {', '.join(POSITIONS)}")
    if spec.template is not None:
        if position == "system":
            raise InputError(
                f"prompt '{spec.name}' is a template with no system message",
                hint="use --position before or after",
            )
        return Slot(("template",), position, spec.template)
    messages = spec.messages or []
    role = "system" if position == "system" else "user"
    for i, message in enumerate(messages):
        if message.role != role:
            continue
        if isinstance(message.content, str):
            return Slot(("messages", i, "content"), position, message.content)
        for j, part in enumerate(message.content):  # a message with images: its first text part
            if part.type == "text":
                return Slot(("messages", i, "content", j, "text"), position, part.text)
    hint = "add a system message holding the instruction, or use --position before" if role == "system" else ""
    raise InputError(f"prompt '{spec.name}' has no {role} message to hold the instruction", hint=hint or None)


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
    if _value_at(doc.data, loc) == value:
        return text  # unchanged: keep the original quoting and layout
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">") and all(_printable(c) and c not in "\x85\u2028\u2029" for c in value):
        indent = " " * (node.start_mark.column + 2) if node.start_mark.column else "  "
        # Keep the indentation of the block's own lines.
        first_line = text[start:end].split("\n", 2)
        if len(first_line) > 1:
            body = first_line[1]
            indent = body[: len(body) - len(body.lstrip(" "))] or indent
        lines = value.removesuffix("\n").split("\n")  # "|" keeps one final newline itself
        rendered = "|\n" + "".join(f"{indent}{line}\n" if line else "\n" for line in lines)
        if not text[start:end].endswith("\n"):
            rendered = rendered.rstrip("\n")
    else:
        rendered = _double_quoted(value)
        if node.style in ("|", ">") and text[start:end].endswith("\n"):  # a block gave way to quotes
            rendered += "\n"
    updated = text[:start] + rendered + text[end:]
    parse_yaml(updated, path)  # the edit must leave valid YAML
    return updated


def _value_at(data: object, loc: tuple[str | int, ...]) -> object:
    for step in loc:
        data = data[step] if isinstance(data, (dict, list)) else None  # type: ignore[index]
    return data


def _printable(char: str) -> bool:
    """YAML 1.1's printable set; anything else must be escaped in a double-quoted scalar."""
    code = ord(char)
    return (
        char in "\t\n\r"
        or 0x20 <= code <= 0x7E
        or code == 0x85
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or code >= 0x10000
    )


def _double_quoted(value: str) -> str:
    """``value`` as a double-quoted YAML scalar (JSON's escapes, plus YAML's non-printables)."""
    text = json.dumps(value, ensure_ascii=False)
    line_breaks = "\x85\u2028\u2029"  # printable, but YAML folds them like newlines
    return "".join(c if _printable(c) and c not in line_breaks else f"\\u{ord(c):04x}" for c in text)


def insert_messages(text: str, path: str, before: int, messages: list[tuple[str, str]]) -> str:
    """``text`` with ``messages`` (role, content) added to its ``messages:`` list before item
    ``before``, as block items in the list's own indentation; nothing else changes."""
    if not messages:
        return text
    doc = parse_yaml(text, path)
    node = doc.node
    seq = None
    if isinstance(node, yaml.MappingNode):
        seq = next((v for k, v in node.value if k.value == "messages"), None)
    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style or not 0 <= before < len(seq.value):
        raise InputError("the prompt's messages are not a block list to add demonstrations to", path=path)
    item = seq.value[before]
    line_start = text.rfind("\n", 0, item.start_mark.index) + 1
    dash = text[line_start : item.start_mark.index]
    if dash.strip() != "-":
        raise InputError("the prompt's messages are not a block list to add demonstrations to", path=path)
    indent = dash[: dash.index("-")]
    inner = " " * len(dash)
    lines = []
    for role, content in messages:
        lines.append(f"{indent}- role: {role}\n{inner}content: {_scalar(content, inner + '  ')}\n")
    updated = text[:line_start] + "".join(lines) + text[line_start:]
    parse_yaml(updated, path)  # the edit must leave valid YAML
    return updated


def literal(text: str) -> str:
    """``text`` as template text that renders to itself."""
    if not any(mark in text for mark in ("{{", "{%", "{#")):
        return text
    if "{% endraw %}" in text:
        raise InputError("a demonstration holds '{% endraw %}' and cannot be written into a template")
    return "{% raw %}" + text + "{% endraw %}"


def _scalar(value: str, indent: str) -> str:
    """``value`` as a block literal where it has several lines that one can hold, else double-quoted."""
    lines = value.split("\n")
    plain = all(_printable(c) and c not in "\x85\u2028\u2029\t\r" for c in value)
    if len(lines) < 2 or not plain or value != value.strip() or any(line != line.rstrip() for line in lines):
        return _double_quoted(value)
    return "|-\n" + "\n".join(f"{indent}{line}" if line else "" for line in lines)

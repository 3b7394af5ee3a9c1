"""YAML reading that keeps line numbers, so every message can name ``file:line:col``."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Anchors and aliases share nodes, so a few hundred bytes can expand to billions of values
# (the "billion laughs"). A document is measured as it would expand before it is built.
MAX_NODES = 1_000_000
MAX_DEPTH = 100


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a file."""

    line: int
    col: int


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML data together with the node tree it came from."""

    data: Any
    node: yaml.Node | None
    path: str
    text: str = ""

    def position(self, loc: Sequence[str | int], *, value: bool = False) -> Position:
        """Where the value at ``loc`` (a pydantic-style path) is written.

        A step that names no key is skipped (pydantic puts union tags in paths), so
        a missing field points at its parent mapping. When the last step names a
        mapping key, the key itself is returned: that is where a reader looks for
        an unknown or misspelled key.
        """
        node = self.node
        if node is None:
            return Position(1, 1)
        mark = node.start_mark
        for i, step in enumerate(loc):
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value if k.value == str(step)), None)
                if pair is None:
                    continue
                key, node = pair
                mark = key.start_mark if i == len(loc) - 1 and not value else node.start_mark
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                node = node.value[step]
                mark = node.start_mark
            else:
                break
        return Position(mark.line + 1, mark.column + 1)

    def template_position(self, loc: Sequence[str | int], line: int) -> Position:
        """Where line ``line`` (1-based) of the string at ``loc`` sits in the file.

        Block scalars (``|``, ``>``) start one line below their key; a one-line
        scalar keeps its column.
        """
        node = self._find(loc)
        if node is None:
            return self.position(loc, value=True)
        start = node.start_mark
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            return Position(start.line + 1 + line, 1)
        if line == 1:
            return Position(start.line + 1, start.column + 1)
        return Position(start.line + line, 1)

    def template_place(self, loc: Sequence[str | int], line: int, col: int) -> Position:
        """Where line ``line``, column ``col`` (both 1-based) of the string at ``loc`` sits in the
        file: a block scalar's lines are indented there."""
        pos = self.template_position(loc, line)
        node = self._find(loc)
        lines = self.text.split("\n")
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">") and pos.line <= len(lines):
            written = lines[pos.line - 1]
            return Position(pos.line, len(written) - len(written.lstrip(" ")) + col)
        quoted = line == 1 and isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
        return Position(pos.line, pos.col + col - 1 + quoted)  # a quoted scalar's text starts after its quote

    def _find(self, loc: Sequence[str | int]) -> yaml.Node | None:
        node = self.node
        for step in loc:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(step)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                node = node.value[step] if 0 <= step < len(node.value) else None
            else:
                return None
        return node


def parse_yaml(text: str, path: str) -> YamlDocument:
    """Parse one YAML document; syntax errors, duplicate keys and documents that would
    expand past :data:`MAX_NODES` values or nest past :data:`MAX_DEPTH` raise :class:`InputError`."""
    from .files import MAX_TEXT_BYTES, check_size

    check_size(len(text), path, limit=MAX_TEXT_BYTES)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        _check_expansion(node, path)
        dup = _first_duplicate_key(node)
        if dup is not None:
            key, mark = dup
            hint = "YAML keeps only the last one; remove or rename the other"
            raise _at(mark, f"duplicate key '{key}'", path, hint)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            f"invalid YAML: {problem}",
            path=path,
            line=where.line + 1 if where else None,
            col=where.column + 1 if where else None,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", path=path) from None
    finally:
        loader.dispose()
    return YamlDocument(data, node, path, text)


def _check_expansion(root: yaml.Node | None, path: str) -> None:
    """Refuse a document whose aliases expand too far, measured without expanding them."""
    if root is None:
        return
    size: dict[int, tuple[int, int]] = {}  # id(node) -> (values once expanded, depth)
    open_: set[int] = set()  # nodes whose children are still being measured
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in open_:  # an alias inside its own anchor: it would expand forever
                raise _at(node.start_mark, "YAML alias refers to the value it is inside; refusing to load it", path)
            open_.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        open_.discard(id(node))
        count = 1 + sum(size[id(c)][0] for c in children)
        depth = 1 + max((size[id(c)][1] for c in children), default=0)
        if count > MAX_NODES or depth > MAX_DEPTH:
            what = f"expands to over {MAX_NODES:,} values" if count > MAX_NODES else f"nests deeper than {MAX_DEPTH}"
            hint = "anchors and aliases (&, *) repeat whole subtrees; write the data out plainly"
            raise _at(node.start_mark, f"YAML {what}; refusing to load it", path, hint)
        size[id(node)] = (count, depth)


def _at(mark: yaml.Mark, message: str, path: str, hint: str | None = None) -> InputError:
    return InputError(message, path=path, line=mark.line + 1, col=mark.column + 1, hint=hint)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _first_duplicate_key(node: yaml.Node | None) -> tuple[str, yaml.Mark] | None:
    stack = [node] if node is not None else []
    visited: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in visited:  # an alias: its node was checked where the anchor is
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        return key.value, key.start_mark
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def canonical_json(data: Any) -> str:
    """A stable text form of parsed data: key order, comments and layout do not matter."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, _file_mode())  # as open() would have made it: a bundle copied into a container stays readable
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def nesting_depth(value: Any, limit: int) -> int:
    """How deep a JSON-like ``value`` nests (counted without recursion, and no further than just
    past ``limit``), so that a value is refused before anything walks it recursively."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if depth <= limit and isinstance(item, (dict, list, tuple)):
            todo += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """0o666 less the process's umask: the mode a new file gets from open()."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask

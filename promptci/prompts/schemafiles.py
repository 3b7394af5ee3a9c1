"""Schemas kept in files of the repository: ``parameters: {$ref: schemas/order.json}``.

A tool's ``parameters``, a response format's ``schema``, or any schema inside them, may be a
``$ref`` to a JSON file, relative to the project root. The file is read when the prompt is (from
the working tree, or from the commit a version is read at) and put in the ref's place, so
everything after sees one schema: the content hash covers the file's bytes, a bundle carries
them, and a provider receives them. A file may refer to further files.

A ref to a file is refused, at its line, when it leaves the repository (an absolute path,
``..``), is not a ``.json`` file name, names a URL, is missing, larger than
:data:`MAX_FILE_BYTES`, not a JSON object, or refers back to a file that refers to it. At most
:data:`MAX_FILES` files are read for one prompt, at most :data:`MAX_DEPTH` deep.

Refs that begin with ``#`` are the schema's own and stay as they are; those inside a file put
below a schema's root are re-pointed to where the file now sits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import PromptciError

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 32
MAX_DEPTH = 8

Location = tuple[str | int, ...]
Reader = Callable[[str], "bytes | None"]  # a root-relative path -> its bytes; None where no file is

_FILE = re.compile(r"^(?:[A-Za-z0-9_\-][A-Za-z0-9_.\-]*/)*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*\.json$")


class SchemaFileError(Exception):
    """A schema file ref that cannot be read: where it is in the prompt, and why."""

    def __init__(self, at: Location, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def schema_roots(data: Mapping[str, Any]) -> Iterator[Location]:
    """Where a prompt's schemas begin: each tool's parameters, and the response format's schema."""
    tools = data.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and "parameters" in tool["function"]:
            yield ("tools", i, "function", "parameters")
    fmt = data.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict) and "schema" in fmt["json_schema"]:
        yield ("response_format", "json_schema", "schema")


def has_file_refs(data: Any) -> bool:
    """Whether any ``$ref`` in ``data`` names something other than a place in its own schema."""
    if isinstance(data, dict):
        ref = data.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(has_file_refs(v) for v in data.values())
    if isinstance(data, list):
        return any(has_file_refs(v) for v in data)
    return False


def inline(data: dict[str, Any], read: Reader) -> dict[str, Any]:
    """``data`` (a prompt file's mapping) with every schema file ref replaced by its file.

    Raises :class:`SchemaFileError` at the first ref that cannot be; ``data`` is not changed.
    """
    if not has_file_refs(data):
        return data
    out: dict[str, Any] = json.loads(json.dumps(data))
    state = _State(read)
    for root in schema_roots(data):
        parent = _at(out, root[:-1])
        parent[root[-1]] = state.resolve(parent[root[-1]], root, (), ())
    return out


class _State:
    def __init__(self, read: Reader) -> None:
        self.read = read
        self.files = 0

    def resolve(self, value: Any, at: Location, within: Location, chain: tuple[str, ...]) -> Any:
        """``value`` (found at ``at`` in the prompt, ``within`` its schema root) with its file refs
        inlined; ``chain`` is the files being read, outermost first."""
        if isinstance(value, list):
            return [self.resolve(v, (*at, i), (*within, i), chain) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            loaded = self.load(ref, (*at, "$ref"), chain)
            rest = {k: v for k, v in value.items() if k != "$ref"}
            merged = {**_rebase(loaded, within), **rest}
            return self.resolve(merged, at, within, (*chain, ref))
        return {k: self.resolve(v, (*at, k), (*within, k), chain) for k, v in value.items()}

    def load(self, ref: str, at: Location, chain: tuple[str, ...]) -> dict[str, Any]:
        where = f" (in {chain[-1]})" if chain else ""
        if "://" in ref or ref.startswith("//"):
            raise SchemaFileError(
                at, f"$ref '{_short(ref)}'{where} is a URL: no URL is fetched; keep the schema in the repository"
            )
        if not _FILE.match(ref) or any(part in (".", "..") for part in ref.split("/")):
            raise SchemaFileError(
                at,
                f"$ref '{_short(ref)}'{where} is not a .json file inside the repository"
                " (a path from its root, no '..')",
            )
        if ref in chain:
            loop = " → ".join((*chain[chain.index(ref) :], ref))
            raise SchemaFileError(at, f"recursive $ref: {loop}")
        if len(chain) >= MAX_DEPTH:
            raise SchemaFileError(at, f"$ref '{ref}' nests schema files deeper than {MAX_DEPTH}")
        self.files += 1
        if self.files > MAX_FILES:
            raise SchemaFileError(at, f"more than {MAX_FILES} schema files are referred to")
        try:
            data = self.read(ref)
        except PromptciError as exc:  # too large, unreadable: the reader says which
            raise SchemaFileError(at, f"$ref '{ref}'{where}: {exc.message}") from None
        if data is None:
            raise SchemaFileError(at, f"$ref '{ref}'{where}: no such file")
        if len(data) > MAX_FILE_BYTES:
            raise SchemaFileError(at, f"$ref '{ref}'{where}: schema file is larger than 1 MiB")
        try:
            loaded = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = exc.args[0] if isinstance(exc, ValueError) and exc.args else type(exc).__name__
            raise SchemaFileError(at, f"$ref '{ref}'{where}: not JSON ({_short(str(reason))})") from None
        if not isinstance(loaded, dict):
            raise SchemaFileError(at, f"$ref '{ref}'{where}: a schema file holds one JSON object")
        return loaded


def worktree(root: Path, limit: int = MAX_FILE_BYTES, what: str = "schema file") -> Reader:
    """A reader of the files in the working tree under ``root``: regular files only, none
    reached through a link out of it, none larger than ``limit`` (refused unread)."""

    def read(rel: str) -> bytes | None:
        path = root / rel
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
            return None
        from ..files import read_bytes

        return read_bytes(resolved, rel, limit=limit, what=what)

    return read


def at_commit(repo: Any, sha: str, to_git: Callable[[str], str]) -> Reader:
    """A reader of the files of commit ``sha`` (``to_git`` maps a root-relative path to git's)."""
    return lambda rel: repo.read_bytes(sha, to_git(rel), limit=MAX_FILE_BYTES, shown=f"{rel}@{sha[:12]}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _rebase(schema: Any, within: Location) -> Any:
    """A file's own ``#…`` refs, pointed at where the file now sits below its schema's root."""
    if not within:
        return schema
    prefix = "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in within)
    if isinstance(schema, dict):
        return {
            k: prefix + v[1:] if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rebase(v, within)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(v, within) for v in schema]
    return schema


def _at(data: Any, loc: Location) -> Any:
    for step in loc:
        data = data[step]
    return data


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "…"

"""A deploy bundle: every prompt and pipeline at the labels requested, resolved from git into one
deterministic JSON file.

::

    {"format": "promptci-bundle", "version": 1, "digest": "sha256:…",
     "prompts": {NAME: {
         "labels": {LABEL: [{"commit": SHA, "version": HASH, "weight": 1.0}, …]},
         "versions": {HASH: {"commit": SHA, "path": …, "source": …, "prompt": {…}}}}},
     "pipelines": {NAME: {"labels": …, "versions": {HASH: {…, "pipeline": {…},
         "steps": [{"id": STEP, "prompt": NAME, "version": HASH}, …]}}}}}

A label lists one version, or several with the shares of an A/B split, in the labels file's
order. ``digest`` is the sha256 of the canonical JSON of everything else: a truncated or edited
bundle is refused, and so is one of a newer format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ..errors import InputError, NotFoundError
from ..files import open_regular
from ..outcomes import Release, key_hash
from ..prompts.images import Images
from ..prompts.prompt import VARIABLE_TYPES, Prompt, PromptVersion
from ..prompts.split import Split

if TYPE_CHECKING:
    from ..prompts.spec import PromptSpec

FORMAT = "promptci-bundle"
VERSION = 1
BUNDLE_ENV = "PROMPTCI_BUNDLE"
MAX_BUNDLE_BYTES = 64 * 2**20


def canonical(data: Any) -> bytes:
    """The one byte form of ``data`` that the digest is taken over."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(body: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical({k: v for k, v in body.items() if k != "digest"})).hexdigest()


ROLES = ("system", "user", "assistant", "tool")
VARIABLE_FIELDS = ("type", "description", "required", "default")


@dataclass(frozen=True)
class Variable:
    type: str = "string"
    description: str = ""
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Part:
    """A text or image part of a message's content, as :class:`~promptci.prompts.spec.TextPart`
    and :class:`~promptci.prompts.spec.ImagePart` hold it."""

    type: str
    text: str = ""
    image: str = ""
    detail: str | None = None


@dataclass(frozen=True)
class Message:
    role: str | None
    content: str | tuple[Part, ...]
    tool_calls: tuple[dict[str, Any], ...] | None = None  # OpenAI's shape, as lint checked it
    tool_call_id: str | None = None
    history: str | None = None  # where a messages variable's turns go


@dataclass(frozen=True)
class Examples:
    """A prompt's example pool, as :class:`~promptci.prompts.spec.Examples` holds it."""

    from_: str
    answer: str = "answer"
    k: int = 3
    select: str = "similar"

    @classmethod
    def of(cls, data: Any) -> Examples | None:
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("from"), str):
            raise ValueError("bad examples")
        k, select, answer = data.get("k", 3), data.get("select", "similar"), data.get("answer", "answer")
        if not isinstance(k, int) or select not in ("similar", "first") or not isinstance(answer, str):
            raise ValueError("bad examples")
        return cls(data["from"], answer, k, select)


@dataclass(frozen=True)
class Spec:
    """A prompt's spec as the bundle holds it: the fields of
    :class:`~promptci.prompts.spec.PromptSpec`, already validated when the bundle was made, so
    rebuilt without pydantic."""

    name: str
    description: str = ""
    messages: tuple[Message, ...] | None = None
    template: str | None = None
    variables: dict[str, Variable] = field(default_factory=dict)
    model: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    tools: tuple[dict[str, Any], ...] = ()  # OpenAI's function-tool shape, as lint checked it
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    examples: Examples | None = None

    @classmethod
    def of(cls, data: Any) -> Spec:
        """From the bundle's JSON; a shape no bundle writer makes raises :class:`ValueError`."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError("no name")
        messages, template = data.get("messages"), data.get("template")
        if (messages is None) == (template is None) or not isinstance(template, (str, type(None))):
            raise ValueError("needs exactly one of messages or template")
        if messages is not None:
            if not isinstance(messages, list) or not all(_message_shape(m) for m in messages):
                raise ValueError("bad messages")
            messages = tuple(
                Message(
                    m.get("role"),
                    _content(m.get("content")),
                    tuple(m["tool_calls"]) if m.get("tool_calls") is not None else None,
                    m.get("tool_call_id"),
                    m.get("history"),
                )
                for m in messages
            )
        variables = data.get("variables") or {}
        if not isinstance(variables, dict):
            raise ValueError("bad variables")
        found = {}
        for name, v in variables.items():
            if (
                not isinstance(v, dict)
                or v.get("type", "string") not in VARIABLE_TYPES
                or set(v) - set(VARIABLE_FIELDS)
            ):
                raise ValueError(f"bad variable {name!r}")
            found[name] = Variable(**{k: v[k] for k in VARIABLE_FIELDS if k in v})
        model, metadata, tags = data.get("model"), data.get("metadata") or {}, data.get("tags") or []
        if not isinstance(model, (dict, type(None))) or not isinstance(metadata, dict) or not isinstance(tags, list):
            raise ValueError("bad model, metadata or tags")
        description = data.get("description") or ""
        tools, choice, fmt = data.get("tools") or [], data.get("tool_choice"), data.get("response_format")
        if not isinstance(tools, list) or not all(
            isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
            for t in tools
        ):
            raise ValueError("bad tools")
        if not isinstance(choice, (str, dict, type(None))) or not isinstance(fmt, (dict, type(None))):
            raise ValueError("bad tool_choice or response_format")
        return cls(
            data["name"], str(description), messages, template, found, model, tuple(map(str, tags)), metadata,
            tuple(tools), choice, fmt, Examples.of(data.get("examples")),
        )  # fmt: skip


def _content(content: Any) -> str | tuple[Part, ...]:
    if isinstance(content, list):
        return tuple(Part(p["type"], p.get("text") or "", p.get("image") or "", p.get("detail")) for p in content)
    return content or ""


def _part_shape(p: Any) -> bool:
    if not isinstance(p, dict) or p.get("type") not in ("text", "image"):
        return False
    key = "text" if p["type"] == "text" else "image"
    return isinstance(p.get(key), str) and isinstance(p.get("detail"), (str, type(None)))


def _message_shape(m: Any) -> bool:
    """Whether ``m`` is a message as a bundle writer makes one."""
    if isinstance(m, dict) and isinstance(m.get("history"), str):
        return not any(m.get(k) for k in ("role", "content", "tool_calls", "tool_call_id"))
    if not isinstance(m, dict) or m.get("role") not in ROLES:
        return False
    content = m.get("content", "")
    if not isinstance(content, str) and not (isinstance(content, list) and all(map(_part_shape, content))):
        return False
    calls = m.get("tool_calls")
    if calls is not None and not (
        isinstance(calls, list)
        and all(
            isinstance(c, dict)
            and isinstance(c.get("id"), str)
            and isinstance(c.get("function"), dict)
            and isinstance(c["function"].get("name"), str)
            and isinstance(c["function"].get("arguments", {}), (dict, str))
            for c in calls
        )
    ):
        return False
    return isinstance(m.get("tool_call_id"), (str, type(None)))


class Bundle:
    """An opened bundle. :meth:`open` reads each file once per change of it."""

    _opened: ClassVar[dict[tuple[str, int, int], Bundle]] = {}

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data, self.path = data, path
        self._prompts: dict[tuple[str, str], Prompt] = {}

    @classmethod
    def open(cls, path: str | Path | None = None) -> Bundle:
        """The bundle at ``path`` (default ``$PROMPTCI_BUNDLE``), checked whole."""
        where = str(path or os.environ.get(BUNDLE_ENV) or "")
        if not where:
            raise InputError(f"no bundle given, and ${BUNDLE_ENV} is not set", hint="write one with `promptci bundle`")
        try:
            stat = os.stat(where)
        except OSError as exc:
            raise NotFoundError(f"cannot read bundle: {exc.strerror}", path=where) from None
        cache_key = (where, stat.st_mtime_ns, stat.st_size)
        if cache_key not in cls._opened:
            cls._opened = {cache_key: cls(_read(where, stat.st_size), where)}  # the newest only
        return cls._opened[cache_key]

    def names(self, kind: str = "prompts") -> list[str]:
        return sorted(self.data[kind])

    def labels(self, name: str, kind: str = "prompts") -> list[str]:
        return sorted(self._entry(name, kind)["labels"])

    def prompt(self, name: str, label: str, key: str | None = None, outcomes: str | None = None) -> Prompt:
        """The version of prompt ``name`` that ``label`` points at; in an A/B split, the one ``key``
        (a user id) gets, always the same for the same key, or one drawn by the weights."""
        prompt = self._prompt(name, self.version(name, label, key))
        return replace(prompt, release=Release(label, key_hash(key), outcomes))

    def steps(self, name: str, label: str = "latest", key: str | None = None) -> dict[str, Prompt]:
        """Pipeline ``name`` at ``label``: each step's prompt, by step id in run order, at the version
        the pipeline was bundled with; an application runs them with its own model client."""
        version = self.version(name, label, key, kind="pipelines")
        held = self._entry(name, "pipelines")["versions"][version]
        steps = held.get("steps")
        if not isinstance(steps, list):
            raise InputError(f"pipeline '{name}' in the bundle has no steps", path=self.path)
        found = {}
        for ref in steps:
            if not isinstance(ref, dict) or not all(isinstance(ref.get(k), str) for k in ("id", "prompt")):
                raise InputError(f"pipeline '{name}' has a malformed step in the bundle", path=self.path)
            step, prompt, at = ref["id"], ref["prompt"], ref.get("version")
            if at not in self._entry(prompt, "prompts")["versions"]:
                raise InputError(f"pipeline '{name}' step '{step}' names a version the bundle lacks", path=self.path)
            found[str(step)] = self._prompt(prompt, str(at))
        return found

    def version(self, name: str, label: str, key: str | None = None, kind: str = "prompts") -> str:
        """The content hash ``label`` points ``key`` at."""
        entry = self._entry(name, kind)
        shares = entry["labels"].get(label)
        if not shares:
            known = ", ".join(sorted(entry["labels"])) or "none"
            raise NotFoundError(
                f"'{name}' has no label '{label}' in the bundle", path=self.path, hint=f"labels: {known}"
            )
        if len(shares) == 1:
            return str(shares[0]["version"])
        commit = Split(tuple((s["commit"], s["weight"]) for s in shares)).choose(name, label, key)
        return next(str(s["version"]) for s in shares if s["commit"] == commit)

    def _entry(self, name: str, kind: str) -> dict[str, Any]:
        entries = self.data[kind]
        if name not in entries:
            noun = kind.rstrip("s")
            raise NotFoundError(f"no {noun} named '{name}' in the bundle", path=self.path)
        return cast(dict[str, Any], entries[name])

    def _prompt(self, name: str, version: str) -> Prompt:
        found = self._prompts.get((name, version))
        if found is None:
            held = self._entry(name, "prompts")["versions"][version]
            try:
                spec = Spec.of(held["prompt"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"prompt '{name}' in the bundle is malformed ({exc})", path=self.path) from None
            identity = PromptVersion(version, held["commit"], False)
            found = Prompt(
                spec=cast("PromptSpec", spec),
                path=held["path"],
                source=held["source"],
                content_hash=version,
                rev=held["commit"],
                _commit_lookup=lambda: identity,
                images=_bundled_images(held.get("images")),
            )
            self._prompts[(name, version)] = found
        return found


def _bundled_images(held: Any) -> Images:
    """The repository images a version carries (path -> base64), as its prompt reads them."""
    carried = held if isinstance(held, dict) else {}

    def read(rel: str, most: int) -> bytes | None:
        data = carried.get(rel)
        return base64.b64decode(data, validate=True) if isinstance(data, str) else None

    return Images(read, MAX_BUNDLE_BYTES)


def _read(path: str, size: int) -> dict[str, Any]:
    if size > MAX_BUNDLE_BYTES:
        raise InputError(f"bundle of {size} bytes is over the limit of {MAX_BUNDLE_BYTES}", path=path)
    with open_regular(Path(path), path, limit=MAX_BUNDLE_BYTES, what="bundle") as fh:  # no FIFO, no device
        raw = fh.read(MAX_BUNDLE_BYTES + 1)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError("bundle is damaged: not valid JSON (cut short?)", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError("not a promptci bundle", path=path, hint="write one with `promptci bundle`")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InputError(
            f"bundle format version {version!r} is newer than this promptci reads ({VERSION})",
            path=path,
            hint="upgrade promptci",
        )
    if data.get("digest") != digest(data):
        raise InputError("bundle digest does not match its content: it was edited or damaged", path=path)
    for kind in ("prompts", "pipelines"):
        if not isinstance(data.get(kind), dict):
            raise InputError(f"bundle has no '{kind}' table", path=path)
        for name, entry in data[kind].items():
            problem = _entry_problem(entry)
            if problem:
                raise InputError(f"bundle entry '{name}' is malformed: {problem}", path=path)
    return data


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one entry's shape, which the digest alone cannot rule out (a digest
    recomputed over edited content)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("labels"), dict):
        return "no labels"
    versions = entry.get("versions")
    if not isinstance(versions, dict):
        return "no versions"
    for held in versions.values():
        if not isinstance(held, dict) or not all(isinstance(held.get(k), str) for k in ("path", "source")):
            return "a version without its path and source"
        if not isinstance(held.get("commit"), (str, type(None))):
            return "a version with a bad commit"
    for label, shares in entry["labels"].items():
        if not isinstance(shares, list) or not shares:
            return f"label '{label}' points at nothing"
        for share in shares:
            if not isinstance(share, dict) or share.get("version") not in versions:
                return f"label '{label}' points at a version the bundle lacks"
            weight = share.get("weight")
            if (
                not isinstance(share.get("commit"), str)
                or isinstance(weight, bool)
                or not isinstance(weight, (int, float))
            ):
                return f"label '{label}' has a share without its commit and weight"
        if len(shares) > 1:
            try:
                Split.of({s["commit"]: s["weight"] for s in shares})
            except InputError as exc:
                return f"label '{label}': {exc.message}"
    return None

"""What an API server sends back, bounded and checked before promptci uses any of it.

A server is outside promptci's control: a proxy answers 200 with an HTML page, a load balancer
cuts a body short, a buggy or hostile endpoint reports ``NaN`` or negative token counts, or
drips a body one byte at a time. Each of these is :class:`BadReply`, which the provider turns
into that case's error with its reason; the run goes on, and every answer already given is kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..yamlio import canonical_json

MAX_BODY_BYTES = 2 * 1024 * 1024  # a chat completion is a few KB; 2 MiB holds any real one
MAX_REPLY_CHARS = 200_000  # of reply text kept: longer is no answer any scorer should read
MAX_TOKENS = 10_000_000  # a token count above this, in one reply, is no count
MAX_JSON_DEPTH = 64


# A reply that calls tools is kept as one canonical JSON text, so that the results table, the
# cache, compare and every export carry it unchanged: {"content": …, "refusal": …, "tool_calls":
# [{"name": …, "arguments": "<the raw JSON text>"}]}. The arguments stay as the model wrote them.
MAX_CALLS = 128  # tool calls read from one reply: more is a malformed reply
MAX_ARGUMENT_DEPTH = 64


@dataclass(frozen=True)
class Call:
    name: str
    raw: str  # the arguments as the model wrote them

    def arguments(self) -> tuple[dict[str, Any] | None, str | None]:
        """The parsed arguments (an object), or None with the reason they could not be read."""
        if (
            _bracket_depth(self.raw or "", MAX_ARGUMENT_DEPTH) > MAX_ARGUMENT_DEPTH
        ):  # measured before the parser recurses
            return None, f"{self.name}: its arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels"
        try:
            value = json.loads(self.raw or "{}")
        except (ValueError, RecursionError):
            return None, f"{self.name}: its arguments are not valid JSON"
        if not isinstance(value, dict):
            return None, f"{self.name}: its arguments are a JSON {type(value).__name__}, not an object"
        return value, None


@dataclass(frozen=True)
class ToolReply:
    content: str | None
    calls: tuple[Call, ...]
    refusal: str | None = None


def encode(content: str | None, calls: Sequence[Call], refusal: str | None = None) -> str:
    """The stored text of a reply that calls tools."""
    return canonical_json(
        {"content": content, "refusal": refusal, "tool_calls": [{"name": c.name, "arguments": c.raw} for c in calls]}
    )


def decode(output: str | None) -> ToolReply | None:
    """The tool calls a stored output holds; None for a plain text reply."""
    if not output or not output.startswith('{"content":'):
        return None
    try:
        data = json.loads(output)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("tool_calls"), list):
        return None
    calls = tuple(
        Call(str(c.get("name", "")), str(c.get("arguments", ""))) for c in data["tool_calls"] if isinstance(c, Mapping)
    )
    content, refusal = data.get("content"), data.get("refusal")
    return ToolReply(
        content if isinstance(content, str) else None, calls, refusal if isinstance(refusal, str) else None
    )


def readable(output: str | None) -> str | None:
    """An output as a reviewer reads it: a reply's tool calls as ``name(arg=value, …)``, one whose
    arguments are not valid JSON marked so, then any text; plain text as it is."""
    reply = decode(output)
    if reply is None:
        return output
    text = "; ".join(call_text(c.name, c.arguments()[0]) for c in reply.calls) or "no tool call"
    if reply.refusal:
        text += f" [refused: {reply.refusal}]"
    return f"{text} — {reply.content}" if reply.content else text


def call_text(name: str, arguments: dict[str, Any] | None, missing: str = "invalid arguments") -> str:
    """A call as a reviewer reads it, ``name(arg=value, …)``; ``missing`` stands where there are no
    arguments to show (they did not parse, or an expected call leaves them open)."""
    inner = missing if arguments is None else ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"{name}({inner})"


class BadReply(Exception):
    """A reply that cannot be used; its message is the reason, as stored with the case."""


class Reply(NamedTuple):
    text: str | None
    tokens_in: int | None
    tokens_out: int | None
    calls: tuple[Call, ...] = ()
    refusal: str | None = None


def read_body(chunks: Iterable[bytes], limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused once it passes ``limit`` bytes (nothing past the limit is read)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BadReply(f"the reply's body is over {limit // 1024} KiB")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """``body`` as JSON: strict UTF-8, no NaN or Infinity, bounded depth."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadReply("the reply is not UTF-8") from None
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        first = " ".join(stripped[:60].split())
        raise BadReply(f"the reply is not JSON (it begins {first!r})" if first else "the reply is empty")
    if _bracket_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:  # before the parser recurses into it, not after
        raise BadReply(f"the reply's JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BadReply("the reply's JSON nests too deep") from None
    except ValueError as exc:
        raise BadReply(f"the reply is not valid JSON ({str(exc).split(':')[0]})") from None
    return value


_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')  # a whole string, or a bracket outside one


def _bracket_depth(text: str, limit: int) -> int:
    """How deep ``text``'s brackets nest outside strings, counted in one pass and no further than
    just past ``limit``: a parser that recursed 100,000 levels would reach Python's recursion
    limit, where a finalizer that runs at that moment fails too."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif token in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def chat_reply(data: Any) -> Reply:
    """The text and token counts of an OpenAI-shaped chat completion, each checked."""
    if not isinstance(data, Mapping):
        raise BadReply(f"the reply is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise BadReply("the reply's `choices` is not a list")
    text: str | None = None
    calls: tuple[Call, ...] = ()
    refusal: str | None = None
    if choices:
        first = choices[0]
        message = first.get("message") if isinstance(first, Mapping) else None
        if not isinstance(message, Mapping):
            raise BadReply("the reply's first choice has no message")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise BadReply(f"the reply's message content is a {type(content).__name__}, not text")
        if content is not None and len(content) > MAX_REPLY_CHARS:
            raise BadReply(f"the reply's text is over {MAX_REPLY_CHARS:,} characters")
        text = content
        calls = _calls(message.get("tool_calls"))
        refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, Mapping):
        raise BadReply("the reply's `usage` is not an object")
    usage = usage or {}
    return Reply(text, token_count(usage, "prompt_tokens"), token_count(usage, "completion_tokens"), calls, refusal)


def _calls(found: Any) -> tuple[Call, ...]:
    """A message's tool calls, each a function's name and its arguments as the model wrote them."""
    if found is None:
        return ()
    if not isinstance(found, list):
        raise BadReply("the reply's `tool_calls` is not a list")
    if len(found) > MAX_CALLS:
        raise BadReply(f"the reply makes {len(found):,} tool calls, more than {MAX_CALLS}")
    calls = []
    for call in found:
        function = call.get("function") if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        arguments = function.get("arguments", "") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not isinstance(arguments, (str, type(None))):
            raise BadReply("a tool call of the reply has no function name and arguments")
        if len(name) > 256 or len(arguments or "") > MAX_REPLY_CHARS:
            raise BadReply("a tool call of the reply is too long")
        calls.append(Call(name, arguments or ""))
    return tuple(calls)


def token_count(usage: Mapping[str, Any], name: str) -> int | None:
    """A token count as a server reports it: absent, or an integer from 0 to :data:`MAX_TOKENS`."""
    value = usage.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise BadReply(f"the reply's `usage.{name}` is {_shown(value)}, not a whole number")
    if not 0 <= value <= MAX_TOKENS:
        raise BadReply(f"the reply's `usage.{name}` is {_shown(value)}, outside 0 to {MAX_TOKENS:,}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:23] + "…"


def retry_after(header: str | None, ceiling: float) -> float | None:
    """A server's ``Retry-After`` in seconds, clamped to ``[0, ceiling]``; None where it is
    missing or no finite number (an HTTP date, ``nan``), so that the caller's backoff applies."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), ceiling)


class Deadline:
    """Closes ``close`` (an HTTP response) once ``seconds`` have passed, so that a body dripped a
    byte at a time ends at the call's timeout rather than whenever the server stops."""

    def __init__(self, seconds: float, close: Any) -> None:
        self.passed = False
        self._close = close
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.passed = True
        with contextlib.suppress(Exception):  # best effort: the read it interrupts reports the failure
            self._close()

    def cancel(self) -> None:
        self._timer.cancel()

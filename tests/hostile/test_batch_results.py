"""Property tests over what a provider's batch endpoints and a warm worker's socket send back:
whatever the bytes, a batch result becomes answers for the requests asked (or an error on one
of them), and a message on the worker's socket is read or refused with WireError; nothing else
is raised, and nothing past the bounds is read."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from promptci.providers.base import GenParams, Request
from promptci.providers.batch import BatchOptions, BatchProvider
from promptci.providers.batch_apis import OpenAIBatches, _message_reply
from promptci.providers.openai_api import OpenAIProvider
from promptci.providers.replies import BadReply
from promptci.worker.wire import MAX_MESSAGE, WireError, receive
from tests.hostile.conftest import FUZZ

KEYS = ["a" * 64, "b" * 64]
REQUEST = Request(messages=(("user", "hi"),), params=GenParams(max_tokens=4))
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


class Lines:
    """A batch API whose results are ``lines``, read through the OpenAI reading of each."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.api = OpenAIProvider("m", base_url="http://127.0.0.1:9/v1", api_key="k")
        self.reader = OpenAIBatches(self.api)

    def results(self, batch_id: str) -> Iterator[str]:
        yield from self.lines

    def answer(self, entry: dict[str, Any], request: Request, meta: dict[str, Any], discount: float) -> Any:
        return self.reader.answer(entry, request, meta, discount)


def provider(lines: list[str]) -> BatchProvider:
    found = object.__new__(BatchProvider)
    found.backend = Lines(lines)  # type: ignore[assignment]
    found.options, found.discount = BatchOptions(notify=lambda _: None), 0.5
    return found


def result_line(key: Any, body: Any, status: Any) -> str:
    return json.dumps({"custom_id": key, "response": {"status_code": status, "body": body}, "error": None})


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.text(max_size=200),
            st.builds(result_line, st.sampled_from([*KEYS, "c", 7, None]), JSONISH, st.sampled_from([200, 500, "x"])),
        ),
        max_size=12,
    )
)
def test_any_result_lines_give_answers_only_for_the_requests_asked(lines: list[str]) -> None:
    found = provider(lines)._read("batch_1", {KEYS[0]: REQUEST, KEYS[1]: REQUEST})
    assert set(found) <= set(KEYS)
    for completion in found.values():
        assert (completion.text is None) != (completion.error is None) or completion.error == "empty reply"
        assert completion.meta["batch"] == "batch_1"


@FUZZ
@given(JSONISH)
def test_any_anthropic_message_is_read_or_refused(message: Any) -> None:
    try:
        reply = _message_reply(message, REQUEST)
    except BadReply:
        return
    assert reply.text is None or isinstance(reply.text, str)


@FUZZ
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=2**32 - 1))
def test_any_bytes_on_the_worker_socket_are_a_message_or_a_wire_error(data: bytes, size: int) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(struct.pack(">I", size) + data)
        theirs.shutdown(socket.SHUT_WR)
        try:
            message, fds = receive(ours)
        except WireError as exc:
            assert size > MAX_MESSAGE or size > len(data) or "JSON" in str(exc) or "object" in str(exc)
            return
        assert isinstance(message, dict) and fds == []

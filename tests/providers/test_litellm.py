"""`provider: litellm`: the same answers as the openai provider through LiteLLM's
OpenAI-compatible route on a real llm-katan server, and the Anthropic route against a local
fake of the Anthropic Messages API, with promptci's own retries, tokens and redaction."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import duckdb
import pytest

from promptci.errors import ExitCode

from ..conftest import Katan, Repo, json_server

pytestmark = pytest.mark.slow

CASES = "cases:\n" + "".join(f"  - {{vars: {{review: 'review {i}'}}, expected: positive}}\n" for i in range(4))


def _suite(provider: str, model: str, **params: object) -> str:
    settings = {"backoff": 0.01, "max_retries": 2, **params}
    return (
        "prompts: [sentiment]\n"
        f"model: {{provider: {provider}, model: '{model}', max_tokens: 32, params: {json.dumps(settings)}}}\n"
        "scorers: [{type: contains, value: positive}]\n" + CASES
    )


def _rows(repo: Repo) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT case_id, model_id, output, error, tokens_in, tokens_out FROM results ORDER BY case_id, model_id"
        ).fetchall()
    finally:
        con.close()


def test_the_openai_route_answers_as_the_openai_provider_does(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo")
    repo.write("evals/sentiment.yaml", _suite("openai", "echo-model", base_url=server.base_url))
    assert repo.run("eval").code in (ExitCode.OK, ExitCode.FAILED)
    repo.write("evals/sentiment.yaml", _suite("litellm", "openai/echo-model", base_url=server.base_url))
    result = repo.run("eval")
    assert result.code in (ExitCode.OK, ExitCode.FAILED), result.err
    rows = _rows(repo)
    by_model: dict[str, dict[str, tuple[Any, ...]]] = {}
    for case_id, model_id, *rest in rows:
        output, *counts = rest  # the echo names the time it answered: the rest must match
        untimed = re.sub(r"time=\S+", "time=T", output) if output else output
        by_model.setdefault(model_id.split(":", 1)[0], {})[case_id] = (untimed, *counts)
    assert set(by_model) == {"openai", "litellm"}
    assert by_model["litellm"] == by_model["openai"]  # the same replies and token counts
    for output, error, tokens_in, tokens_out in by_model["litellm"].values():
        assert error is None and "[echo] model=echo-model" in output and tokens_in > 0 and tokens_out > 0
    (litellm_id,) = {m for _, m, *_ in rows if m.startswith("litellm:")}
    assert litellm_id.startswith("litellm:openai/echo-model@127.0.0.1:")  # which provider answered, and where


class FakeAnthropic:
    """The Anthropic Messages API as far as a chat completion needs it; ``fail_first`` requests
    answer 529 (overloaded) first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def handle(self, h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        with self.lock:
            self.requests.append((h.path, {k.lower(): v for k, v in h.headers.items()}, body))
            failing = len(self.requests) <= self.fail_first
        if failing:
            return 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        review = body["messages"][-1]["content"]
        review = review if isinstance(review, str) else review[0]["text"]
        return 200, {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": "positive" if "review" in review else "negative"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 21, "output_tokens": 1},
        }


def test_the_anthropic_route_sends_a_messages_request_and_retries_with_our_backoff(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-test-0123456789abcdef"
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", key)
    fake = FakeAnthropic(fail_first=1)
    with json_server(fake.handle) as url:
        suite = _suite(
            "litellm", "anthropic/claude-3-5-haiku-20241022", base_url=url, api_key_env="FAKE_ANTHROPIC_KEY",
            concurrency=1,
        )  # fmt: skip
        repo.write("evals/sentiment.yaml", suite)
        result = repo.run("eval")
    assert result.code == ExitCode.OK, result.out + result.err
    rows = _rows(repo)
    assert len(rows) == 4
    for _, model_id, output, error, tokens_in, tokens_out in rows:
        assert (output, error, tokens_in, tokens_out) == ("positive", None, 21, 1)
        assert model_id.startswith("litellm:anthropic/claude-3-5-haiku-20241022@127.0.0.1")
    # One 529, retried once by promptci (not by LiteLLM or the SDK): five requests for four cases.
    assert len(fake.requests) == 5
    path, headers, body = fake.requests[-1]
    assert path.endswith("/v1/messages")
    assert headers["x-api-key"] == key and "anthropic-version" in headers
    assert body["model"] == "claude-3-5-haiku-20241022" and body["max_tokens"] == 32
    # The prompt's system message goes in Anthropic's own field; the user turn is the one message.
    assert "label product reviews" in json.dumps(body["system"])
    assert [m["role"] for m in body["messages"]] == ["user"] and "review 3" in json.dumps(body["messages"])
    assert key not in result.out + result.err


def test_every_retry_is_ours_and_a_dead_server_is_an_error_per_case(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "k" * 20)
    fake = FakeAnthropic(fail_first=10**6)
    with json_server(fake.handle) as url:
        suite = _suite("litellm", "anthropic/claude-3-5-haiku-20241022", base_url=url, api_key_env="FAKE_ANTHROPIC_KEY")
        repo.write("evals/sentiment.yaml", suite)
        result = repo.run("eval")
    assert result.code == ExitCode.FAILED
    rows = _rows(repo)
    assert len(rows) == 4
    assert all(r[2] is None and "after 2 retries" in r[3] and "Overloaded" in r[3] for r in rows), rows
    assert len(fake.requests) == 4 * 3  # each case: one try and max_retries=2 retries


def test_lint_refuses_a_litellm_model_without_its_provider(repo: Repo) -> None:
    prompt = (repo.path / "prompts/sentiment.yaml").read_text()
    assert "model:\n  temperature: 0\n" in prompt
    repo.write(
        "prompts/sentiment.yaml",
        prompt.replace(
            "model:\n  temperature: 0\n", "model:\n  provider: litellm\n  model: claude-3-haiku\n  temperature: 0\n"
        ),
    )
    result = repo.run("lint")
    assert result.code == ExitCode.FAILED
    line = next(i for i, text in enumerate(prompt.splitlines(), 1) if text == "model:") + 2
    assert f"prompts/sentiment.yaml:{line}:" in result.out + result.err
    assert "is not PROVIDER/MODEL" in result.out + result.err


def tool_use(model: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages reply that calls ``name`` with ``arguments``."""
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "tool_use", "id": "tu_1", "name": name, "input": arguments}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 40, "output_tokens": 9},
    }  # fmt: skip


def test_tools_go_to_anthropic_in_its_own_shape_and_its_tool_use_comes_back_as_calls(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ..prompts.test_tools import ROUTER

    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "k" * 20)
    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        bodies.append(body)
        return 200, tool_use(body["model"], "order_status", {"order_id": "7"})

    with json_server(handle) as url:
        settings = {"base_url": url, "api_key_env": "FAKE_ANTHROPIC_KEY", "max_retries": 0}
        repo.write("prompts/router.yaml", ROUTER)
        repo.write(
            "evals/router.yaml",
            "prompts: [router]\n"
            f"model: {{provider: litellm, model: anthropic/claude-3-5-haiku-20241022, max_tokens: 64,"
            f" params: {json.dumps(settings)}}}\n"
            "scorers: [{type: tool-call}]\n"
            "cases:\n  - vars: {shop: Acme, question: Where is order 7?}\n"
            "    expected: {name: order_status, arguments: {order_id: '7'}}\n",
        )
        result = repo.run("eval", "router")
    assert result.code == ExitCode.OK, result.out + result.err
    (body,) = bodies
    assert [t["name"] for t in body["tools"]] == ["order_status", "refund"]
    assert body["tools"][0]["input_schema"]["required"] == ["order_id"]
    assert body["tools"][0]["description"] == "Where an order of Acme is."
    assert body["tool_choice"] == {"type": "auto"}
    ((_, _, output, error, _, _),) = _rows(repo)
    assert error is None
    assert json.loads(output)["tool_calls"][0]["name"] == "order_status"


INVOICE_SUITE = """\
prompts: [invoice]
model: {{provider: litellm, model: {model}, max_tokens: 64, params: {params}}}
scorers: [{{type: json, fields: true}}]
cases:
  - vars: {{text: 'Invoice A-12, total 30 EUR'}}
    expected: {{number: A-12, total: 30}}
"""


def test_a_schema_prompt_goes_through_litellms_anthropic_route_as_a_forced_tool(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ..prompts.test_tools import INVOICE

    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "k" * 20)
    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        bodies.append(body)
        return 200, tool_use(body["model"], body["tools"][0]["name"], {"number": "A-12", "total": 30})

    with json_server(handle) as url:
        params = json.dumps({"base_url": url, "api_key_env": "FAKE_ANTHROPIC_KEY", "max_retries": 0})
        repo.write("prompts/invoice.yaml", INVOICE)
        repo.write(
            "evals/invoice.yaml", INVOICE_SUITE.format(model="anthropic/claude-3-5-haiku-20241022", params=params)
        )
        result = repo.run("eval", "invoice")
    assert result.code == ExitCode.OK, result.out + result.err
    (body,) = bodies
    # Anthropic's recipe: the schema as the one tool's input_schema, and that tool forced.
    (tool,) = body["tools"]
    assert tool["input_schema"]["properties"] == {"number": {"type": "string"}, "total": {"type": "number"}}
    assert body["tool_choice"]["type"] == "tool" and body["tool_choice"]["name"] == tool["name"]
    (message,) = body["messages"]
    assert message["role"] == "user" and "Invoice A-12, total 30 EUR" in json.dumps(message["content"])
    ((_, _, output, error, _, _),) = _rows(repo)
    assert error is None and json.loads(output) == {"number": "A-12", "total": 30}


def test_tools_and_a_schema_go_through_litellms_openai_route_in_openais_shape(repo: Repo) -> None:
    from ..evals.test_tool_calls import call, reply
    from ..prompts.test_tools import INVOICE, ROUTER

    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        bodies.append(body)
        if "tools" in body:
            return 200, reply(calls=[call("order_status", '{"order_id": "7"}')])
        return 200, reply('{"number": "A-12", "total": 30}')

    with json_server(handle) as url:
        params = json.dumps({"base_url": url + "/v1", "api_key_env": "FAKE_KEY", "max_retries": 0})
        repo.write("prompts/router.yaml", ROUTER)
        repo.write("prompts/invoice.yaml", INVOICE)
        repo.write("evals/invoice.yaml", INVOICE_SUITE.format(model="openai/m", params=params))
        repo.write(
            "evals/router.yaml",
            f"prompts: [router]\nmodel: {{provider: litellm, model: openai/m, max_tokens: 64, params: {params}}}\n"
            "scorers: [{type: tool-call}]\ncases:\n  - vars: {shop: Acme, question: Where is order 7?}\n"
            "    expected: {name: order_status, arguments: {order_id: '7'}}\n",
        )
        import os

        os.environ["FAKE_KEY"] = "k" * 20
        try:
            result = repo.run("eval", "invoice", "router")
        finally:
            del os.environ["FAKE_KEY"]
    assert result.code == ExitCode.OK, result.out + result.err
    tooled = next(b for b in bodies if "tools" in b)
    assert [t["type"] for t in tooled["tools"]] == ["function", "function"]
    assert tooled["tools"][0]["function"]["name"] == "order_status" and tooled["tools"][0]["function"]["strict"] is True
    assert tooled["tool_choice"] == "auto"
    formatted = next(b for b in bodies if "response_format" in b)
    assert formatted["response_format"]["type"] == "json_schema"
    assert formatted["response_format"]["json_schema"]["name"] == "invoice"
    assert formatted["response_format"]["json_schema"]["strict"] is True
    assert [r[3] for r in _rows(repo)] == [None, None]

"""Tool prompts evaluated against a scripted OpenAI-compatible server: the request carries the tools,
the reply's calls are stored whole, and the tool-call scorers read them, a malformed call being a
wrong answer with its reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.conftest import Repo, json_server, request_json
from tests.prompts.test_tools import ROUTER

SUITE = """\
prompts: [router]
model: {{provider: openai, model: m, max_tokens: 64, params: {{base_url: '{url}/v1', max_retries: 0}}}}
scorers: [{{type: tool-call, checks: {{amount: {{tolerance: 0.01}}}}}}]
threshold: 0.5
cases:
  - vars: {{shop: Acme, question: Where is order 7?}}
    expected: {{name: order_status, arguments: {{order_id: "7"}}}}
  - vars: {{shop: Acme, question: Refund 12.50 on order 9}}
    expected: {{name: refund, arguments: {{order_id: "9", amount: 12.5}}}}
  - vars: {{shop: Acme, question: Refund order 3}}
    expected: {{name: refund, arguments: {{order_id: "3"}}}}
  - vars: {{shop: Acme, question: Hello there}}
    expected: null
"""


def call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}


def reply(content: str | None = None, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls is not None:
        message["tool_calls"] = calls
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


ANSWERS: dict[str, Callable[[], dict[str, Any]]] = {
    "order 7": lambda: reply(calls=[call("order_status", '{"order_id": "7"}')]),
    "12.50": lambda: reply(calls=[call("refund", '{"order_id": "9", "amount": 12.501}')]),
    "order 3": lambda: reply(calls=[call("refund", '{"order_id": "3", ')]),  # arguments cut short
    "Hello": lambda: reply("Hello! How can I help?"),
}


@pytest.fixture
def served(repo: Repo) -> Iterator[tuple[Repo, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        body = request_json(h)
        bodies.append(body)
        question = body["messages"][-1]["content"]
        return 200, next(answer() for key, answer in ANSWERS.items() if key in question)

    with json_server(handle) as url:
        repo.write("prompts/router.yaml", ROUTER)
        repo.write("evals/router.yaml", SUITE.format(url=url))
        repo.commit("a tool router and its suite")
        yield repo, bodies


def test_the_request_carries_the_tools_and_the_calls_are_scored(served: tuple[Repo, list[dict[str, Any]]]) -> None:
    repo, bodies = served
    out = repo.path / "router.json"
    r = repo.run("eval", "router", "-o", str(out))
    assert r.code == 0, r  # 3 of 4 cases right, over the 0.5 threshold
    body = bodies[0]
    assert [t["function"]["name"] for t in body["tools"]] == ["order_status", "refund"]
    assert body["tools"][0]["function"]["description"] == "Where an order of Acme is."
    assert body["tools"][0]["function"]["strict"] is True and body["tool_choice"] == "auto"
    results = {row["case_name"]: row for row in json.loads(out.read_text())["results"]}
    assert [results[f"case {i}"]["score"] for i in range(1, 5)] == [1.0, 1.0, 0.0, 1.0]
    stored = json.loads(results["case 1"]["output"])
    assert stored["tool_calls"] == [{"name": "order_status", "arguments": '{"order_id": "7"}'}]
    assert "refund: its arguments are not valid JSON" in results["case 3"]["note"]  # wrong, with its reason
    assert all(row["error"] is None for row in results.values())
    again = repo.run("eval", "router")
    assert again.code == 0 and len(bodies) == 4  # every answer, tool calls too, came from the cache


def test_a_changed_tool_description_is_a_new_request_and_compare_shows_the_flips(
    served: tuple[Repo, list[dict[str, Any]]],
) -> None:
    repo, bodies = served
    assert repo.run("eval", "router").code == 0
    ANSWERS["order 7"] = lambda: reply(calls=[call("refund", '{"order_id": "7"}')])  # the new wording misleads
    try:
        path = repo.path / "prompts/router.yaml"
        path.write_text(path.read_text().replace("Where an order of {{ shop }} is.", "Anything about an order."))
        compared = repo.run("compare", "--run-missing", "--format", "json")
    finally:
        ANSWERS["order 7"] = lambda: reply(calls=[call("order_status", '{"order_id": "7"}')])
    assert len(bodies) == 8  # a new description is a new request for every case
    suite = json.loads(compared.out)["suites"][0]
    (flip,) = suite["flips"]
    assert flip["direction"] == "pass→fail"
    assert json.loads(flip["head"]["output"])["tool_calls"][0]["name"] == "refund"
    assert flip["change"] == "order_status → refund"
    # The viewer's and the report's flip table: the calls read as calls, and what changed.
    from promptci.report.html import environment

    html = str(environment().get_template("macros.html.j2").module.flips(json.loads(compared.out)))  # type: ignore[attr-defined]
    assert "<pre>order_status(order_id=&#39;7&#39;)</pre>" in html and "<pre>refund(order_id=&#39;7&#39;)</pre>" in html
    assert '<p class="change">changed: order_status → refund</p>' in html
    # The comment reads the calls as calls, with their arguments, on both sides.
    markdown = repo.run("compare", "--format", "markdown").out
    assert "order\\_status(order\\_id='7')" in markdown and "refund(order\\_id='7')" in markdown
    assert "| what changed |" in markdown and "| order\\_status → refund |" in markdown


def test_ten_thousand_tool_calls_are_a_malformed_reply(served: tuple[Repo, list[dict[str, Any]]]) -> None:
    repo, _ = served
    ANSWERS["Hello"] = lambda: reply(calls=[call("refund", "{}")] * 10_000)
    try:
        out = repo.path / "r.json"
        repo.run("eval", "router", "-o", str(out))
    finally:
        ANSWERS["Hello"] = lambda: reply("Hello! How can I help?")
    results = {row["case_name"]: row for row in json.loads(out.read_text())["results"]}
    assert "makes 10,000 tool calls, more than 128" in results["case 4"]["error"]
    assert results["case 1"]["score"] == 1.0  # the others are answered as ever


def test_a_json_schema_prompt_sends_its_format_and_is_scored_field_by_field(repo: Repo) -> None:
    from tests.conftest import chat_reply
    from tests.prompts.test_tools import INVOICE

    formats: list[Any] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        body = request_json(h)
        formats.append(body.get("response_format"))
        text = body["messages"][-1]["content"]
        answer = {"number": "A-12", "total": 30.0} if "A-12" in text else {"number": "B-7", "total": "a lot"}
        return 200, chat_reply("m", json.dumps(answer))

    with json_server(handle) as url:
        repo.write("prompts/invoice.yaml", INVOICE)
        repo.write(
            "evals/invoice.yaml",
            "prompts: [invoice]\n"
            f"model: {{provider: openai, model: m, params: {{base_url: '{url}/v1', max_retries: 0}}}}\n"
            "scorers: [{type: json, fields: true, schema: {type: object, required: [number, total],"
            " properties: {total: {type: number}}}}]\n"
            "cases:\n"
            "  - {vars: {text: 'Invoice A-12, total 30 EUR'}, expected: {number: A-12, total: 30}}\n"
            "  - {vars: {text: 'Invoice B-7, total 9 EUR'}, expected: {number: B-7, total: 9}}\n",
        )
        repo.commit("an extraction prompt")
        out = repo.path / "inv.json"
        repo.run("eval", "invoice", "-o", str(out))
    assert formats[0]["type"] == "json_schema" and formats[0]["json_schema"]["name"] == "invoice"
    rows = sorted(json.loads(out.read_text())["results"], key=lambda r: r["case_name"])
    assert [r["score"] for r in rows] == [1.0, 0.0]
    assert rows[1]["note"] == "json: schema: at /total: 'a lot' is not of type 'number'"

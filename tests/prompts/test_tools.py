"""Tools and structured outputs in the prompt format: validated, linted at their place, part of the
version's identity, shipped in bundles, and handed to each SDK in its own shape."""

from __future__ import annotations

import itertools
import json

import pytest

import promptci
from tests.conftest import REPO_ROOT, Repo
from tests.hostile.conftest import one_line

ROUTER = """\
name: router
description: Pick the tool that answers a customer.
messages:
  - role: system
    content: You route questions for {{ shop }}.
  - role: user
    content: "{{ question }}"
variables:
  shop: string
  question: string
tools:
  - type: function
    function:
      name: order_status
      description: Where an order of {{ shop }} is.
      parameters:
        type: object
        properties:
          order_id: {type: string, description: the order number}
        required: [order_id]
        additionalProperties: false
      strict: true
  - type: function
    function:
      name: refund
      description: Start a refund.
      parameters:
        type: object
        properties:
          order_id: {type: string}
          amount: {type: number, minimum: 0}
        required: [order_id]
tool_choice: auto
"""

INVOICE = """\
name: invoice
template: "Extract the invoice fields: {{ text }}"
variables: {text: string}
response_format:
  type: json_schema
  json_schema:
    name: invoice
    strict: true
    schema:
      type: object
      properties:
        number: {type: string}
        total: {type: number}
      required: [number, total]
      additionalProperties: false
"""


@pytest.fixture
def tooled(repo: Repo) -> Repo:
    repo.write("prompts/router.yaml", ROUTER)
    repo.write("prompts/invoice.yaml", INVOICE)
    repo.commit("a tool router and an extraction prompt")
    return repo


def test_tools_and_schemas_are_valid_prompts_and_lint_clean(tooled: Repo) -> None:
    linted = tooled.run("lint")
    assert linted.code == 0, linted.out
    shown = json.loads(tooled.run("show", "router", "--format", "json").out)
    assert [t["function"]["name"] for t in shown["spec"]["tools"]] == ["order_status", "refund"]


def test_openai_kwargs_render_descriptions_and_keep_schemas_as_data(tooled: Repo) -> None:
    router = promptci.load("router", root=tooled.path)
    kwargs = router.openai_kwargs(shop="Acme", question="Where is order 7?")
    assert kwargs["messages"][0] == {"role": "system", "content": "You route questions for Acme."}
    first, second = kwargs["tools"]
    assert first == {
        "type": "function",
        "function": {
            "name": "order_status",
            "description": "Where an order of Acme is.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "description": "the order number"}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
    assert "strict" not in second["function"] and kwargs["tool_choice"] == "auto"
    invoice = promptci.load("invoice", root=tooled.path).openai_kwargs(text="No. 12, 30 EUR")
    assert invoice["response_format"]["type"] == "json_schema"
    assert invoice["response_format"]["json_schema"]["name"] == "invoice"
    assert invoice["response_format"]["json_schema"]["strict"] is True
    assert invoice["response_format"]["json_schema"]["schema"]["required"] == ["number", "total"]


def test_anthropic_kwargs_in_the_messages_api_shape(tooled: Repo) -> None:
    router = promptci.load("router", root=tooled.path)
    kwargs = router.anthropic_kwargs(shop="Acme", question="Where is order 7?")
    assert kwargs["system"] == "You route questions for Acme."
    assert kwargs["messages"] == [{"role": "user", "content": "Where is order 7?"}]
    assert kwargs["tools"][0]["name"] == "order_status" and "input_schema" in kwargs["tools"][0]
    assert kwargs["tool_choice"] == {"type": "auto"}
    invoice = promptci.load("invoice", root=tooled.path).anthropic_kwargs(text="No. 12")
    assert invoice["tool_choice"] == {"type": "tool", "name": "invoice"}  # structured output as a forced tool
    assert invoice["tools"][0]["input_schema"]["properties"]["total"] == {"type": "number"}


def test_a_changed_tool_description_is_a_new_version(tooled: Repo) -> None:
    before = promptci.load("router", root=tooled.path).content_hash
    path = tooled.path / "prompts/router.yaml"
    path.write_text(path.read_text().replace("Start a refund.", "Start a refund, up to the order total."))
    assert promptci.load("router", root=tooled.path).content_hash != before
    diff = tooled.run("diff", "router", "HEAD")
    assert diff.code == 0 and "+      description: Start a refund, up to the order total." in diff.out


def test_a_bundle_carries_tools_and_the_runtime_hands_them_on(tooled: Repo) -> None:
    assert tooled.run("label", "set", "router", "production").code == 0
    assert tooled.run("bundle", "-o", "b.json").code == 0
    from_git = promptci.load("router", label="production", root=tooled.path)
    from_bundle = promptci.load("router", label="production", bundle=tooled.path / "b.json")
    variables = {"shop": "Acme", "question": "Refund order 9"}
    assert from_bundle.openai_kwargs(**variables) == from_git.openai_kwargs(**variables)
    assert from_bundle.anthropic_kwargs(**variables) == from_git.anthropic_kwargs(**variables)


BROKEN = [
    # (what in ROUTER, replaced by what, what lint says at its place)
    ("required: [order_id]\n        additionalProperties: false\n      strict: true",
     "required: [order_id]\n      strict: true", "strict mode needs additionalProperties: false"),
    ("name: refund", "name: order_status", "tool 'order_status' is defined twice"),
    ("tool_choice: auto", "tool_choice: {type: function, function: {name: lookup}}",
     "tool_choice names 'lookup', which is no tool here"),
    ("amount: {type: number, minimum: 0}", "amount: {type: 7}", "not a valid JSON Schema"),
    ("amount: {type: number, minimum: 0}", "amount: {$ref: ../../etc/passwd}", "is not a .json file inside the repository"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "message"), BROKEN)
def test_a_broken_tool_is_a_lint_error_at_its_place(repo: Repo, old: str, new: str, message: str) -> None:
    assert old in ROUTER
    repo.write("prompts/router.yaml", ROUTER.replace(old, new))
    linted = repo.run("lint")
    assert linted.code == 1, linted.out
    line = next(x for x in linted.out.splitlines() if message in x)
    assert line.startswith("prompts/router.yaml:") and "[tools]" in line


@pytest.mark.parametrize("name", ["../../x", "; rm -rf", "a" * 65, "with space", ""])
def test_a_tool_name_outside_the_providers_rules_is_refused(repo: Repo, name: str) -> None:
    repo.write("prompts/router.yaml", ROUTER.replace("name: refund", f"name: {json.dumps(name)}"))
    linted = repo.run("lint")
    assert linted.code == 1 and "prompts/router.yaml:" in linted.out and "name" in linted.out
    shown = repo.run("render", "router", "--var", "shop=A", "--var", "question=q")
    assert shown.code == 2 and "prompts/router.yaml" in one_line(shown.err)


def test_a_schema_that_is_not_a_schema_or_nests_forever_is_refused(repo: Repo) -> None:
    deep = "{type: array, items: " * 40 + "{type: string}" + "}" * 40
    repo.write("prompts/router.yaml", ROUTER.replace("amount: {type: number, minimum: 0}", f"amount: {deep}"))
    linted = repo.run("lint")
    assert linted.code == 1 and "nests deeper than 32 levels" in linted.out
    recursive = ROUTER.replace("amount: {type: number, minimum: 0}", "amount: {$ref: '#/properties/amount'}")
    repo.write("prompts/router.yaml", recursive)
    assert repo.run("lint").code == 0  # a ref inside the schema is JSON Schema's own, and never read as a file


def test_worked_calls_and_results_reach_each_sdk_and_survive_a_bundle(repo: Repo) -> None:
    repo.write("prompts/route_request.yaml", (REPO_ROOT / "prompts/route_request.yaml").read_text())
    repo.commit("a prompt with worked calls")
    assert repo.run("lint").code == 0
    prompt = promptci.load("route_request", root=repo.path)
    openai = prompt.openai_kwargs(request="Set a timer for 5 minutes.")
    worked = openai["messages"][2]
    assert worked["role"] == "assistant" and worked["content"] == ""
    assert worked["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Madrid"}'}}
    ]
    assert openai["messages"][3] == {
        "role": "tool", "tool_call_id": "call_1", "content": '{"city": "Madrid", "sky": "sunny", "celsius": 24}'
    }  # fmt: skip
    anthropic = prompt.anthropic_kwargs(request="Set a timer for 5 minutes.")
    assert anthropic["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Madrid"}}],
    }
    assert anthropic["messages"][2]["content"][0] == {
        "type": "tool_result", "tool_use_id": "call_1", "content": '{"city": "Madrid", "sky": "sunny", "celsius": 24}'
    }  # fmt: skip
    roles = [m["role"] for m in anthropic["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))  # Anthropic's turns alternate
    assert repo.run("label", "set", "route_request", "production").code == 0
    assert repo.run("bundle", "-o", "b.json").code == 0
    bundled = promptci.load("route_request", label="production", bundle=repo.path / "b.json")
    assert bundled.openai_kwargs(request="x") == prompt.openai_kwargs(request="x")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("name: get_weather, arguments: {city: Madrid}", "name: get_news, arguments: {city: Madrid}",
         "'get_news' is no tool here"),
        ("tool_call_id: call_1", "tool_call_id: call_9", "tool_call_id 'call_9' answers no earlier tool call"),
        ("arguments: {minutes: 30}", "arguments: '{minutes: 30'", "arguments are not JSON"),
    ],
)  # fmt: skip
def test_a_worked_call_that_cannot_be_is_a_lint_error_at_its_line(repo: Repo, old: str, new: str, message: str) -> None:
    source = (REPO_ROOT / "prompts/route_request.yaml").read_text()
    assert old in source
    repo.write("prompts/route_request.yaml", source.replace(old, new))
    linted = repo.run("lint")
    assert linted.code == 1
    (line,) = [x for x in linted.out.splitlines() if message in x]
    assert line.startswith("prompts/route_request.yaml:") and line.endswith("[tools]")

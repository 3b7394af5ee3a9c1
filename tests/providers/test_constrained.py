"""Tools and response formats on the local model: the grammar a reply is decoded under, the text
the model reads, its calls read back, and, on the real SmolLM2, the shipped examples' replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import llguidance
import pytest
from transformers import AutoTokenizer

from promptci.providers import constrained, models, replies, structured
from promptci.providers.structured import Shape

from ..conftest import REPO_ROOT, Repo
from .test_prefix import shipped_project

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"],
        },
    },
}
TIMER = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "parameters": {
            "type": "object",
            "$defs": {"minutes": {"type": "integer", "minimum": 1}},
            "properties": {"minutes": {"$ref": "#/$defs/minutes"}},
            "required": ["minutes"],
        },
    },
}
ADDRESS = {
    "type": "json_schema",
    "json_schema": {
        "name": "address",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "postcode": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["city", "postcode"],
        },
    },
}


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(models.converted_dir(models.default_gguf())))


def accepts(tokenizer: Any, shape: Shape, text: str, parallel: bool = False) -> bool:
    """Whether ``text``, then the end of the reply, is within the shape's grammar."""
    grammar = structured.grammar(shape, parallel)
    assert grammar is not None and constrained.check(grammar, tokenizer) == ""
    matcher = llguidance.LLMatcher(constrained._tokenizer(tokenizer), grammar, log_level=0)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return bool(matcher.consume_tokens(ids) and matcher.is_accepting() and not matcher.is_error())


def shape(**pieces: Any) -> Shape:
    return Shape.of(json.dumps(pieces))


def call(name: str, **arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def test_a_required_call_must_name_a_tool_and_meet_its_schema(tokenizer: Any) -> None:
    required = shape(tools=[WEATHER, TIMER], tool_choice="required")
    assert accepts(tokenizer, required, call("get_weather", city="Oslo"))
    assert accepts(tokenizer, required, call("set_timer", minutes=5))  # its $ref, rebased, still resolves
    assert not accepts(tokenizer, required, call("set_timer", minutes=0))  # below its minimum
    assert not accepts(tokenizer, required, call("delete_files", path="/"))  # no such tool
    assert not accepts(tokenizer, required, call("get_weather", city="Oslo", extra=1))  # an unlisted argument
    assert not accepts(tokenizer, required, call("get_weather", city="x" * 21))  # past maxLength
    assert not accepts(tokenizer, required, "It is sunny.")  # required: no text instead
    assert not accepts(tokenizer, required, call("get_weather", city="A") + "\n" + call("get_weather", city="B"))
    assert accepts(tokenizer, required, call("get_weather", city="A") + "\n" + call("set_timer", minutes=2), True)


def test_auto_allows_text_or_a_call_and_a_named_choice_only_that_tool(tokenizer: Any) -> None:
    auto = shape(tools=[WEATHER, TIMER])
    assert accepts(tokenizer, auto, "It is sunny, 20 degrees.")
    assert accepts(tokenizer, auto, call("get_weather", city="Oslo"))
    named = shape(tools=[WEATHER, TIMER], tool_choice={"type": "function", "function": {"name": "set_timer"}})
    assert accepts(tokenizer, named, call("set_timer", minutes=3))
    assert not accepts(tokenizer, named, call("get_weather", city="Oslo"))
    assert structured.grammar(shape(tools=[WEATHER], tool_choice="none")) is None  # free text


def test_a_response_format_is_its_schema_written_as_json_dumps_spaces_it(tokenizer: Any) -> None:
    fmt = shape(response_format=ADDRESS)
    assert accepts(tokenizer, fmt, '{"city": "Oslo", "postcode": "01234"}')
    assert not accepts(tokenizer, fmt, '{"city": "Oslo", "postcode": "1234"}')  # the pattern holds
    assert not accepts(tokenizer, fmt, '{"postcode": "01234", "city": "Oslo"}')  # the schema's order
    assert not accepts(tokenizer, fmt, '{"city": "Oslo", "postcode": "01234"} and more')
    assert not accepts(tokenizer, fmt, '{"city":  "Oslo", "postcode": "01234"}')  # no room to spin on spaces
    assert accepts(tokenizer, shape(response_format={"type": "json_object"}), '{"any": [1, 2]}')


def test_a_property_named_like_a_keyword_stays_a_property() -> None:
    schema = {"type": "object", "properties": {"properties": {"type": "object", "properties": {"x": {}}}}}
    closed = structured._closed(schema)
    assert set(closed["properties"]) == {"properties"}
    assert closed["additionalProperties"] is False
    assert closed["properties"]["properties"]["additionalProperties"] is False
    assert structured._closed({**schema, "additionalProperties": True})["additionalProperties"] is True


def test_calls_are_read_back_in_the_hosted_providers_stored_form() -> None:
    tools = shape(tools=[WEATHER, TIMER])
    stored = structured.read_reply(call("get_weather", city="Oslo"), tools)
    reply = replies.decode(stored)
    assert reply is not None and reply.content is None
    assert [(c.name, c.arguments()[0]) for c in reply.calls] == [("get_weather", {"city": "Oslo"})]
    cut = replies.decode(structured.read_reply('<tool_call>{"name": "set_timer", "arguments": {"minu', tools))
    assert cut is not None and cut.calls[0].name == "set_timer"  # cut off at max_tokens: invalid arguments
    assert cut.calls[0].arguments()[0] is None and cut.calls[0].arguments()[1]
    assert structured.read_reply("Just text.", tools) == "Just text."
    assert structured.read_reply('{"city": "Oslo"}', shape(response_format=ADDRESS)) == '{"city": "Oslo"}'


def test_earlier_calls_and_results_are_written_as_the_model_is_to_write_them() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "clear"}'},
    ]
    text = structured.tool_messages(messages, shape(tools=[WEATHER], tool_choice="required"))
    assert text[0]["role"] == "system" and text[0]["content"].startswith("Be brief.\n\nYou can call these tools.")
    assert '"name": "get_weather"' in text[0]["content"] and "You must call one of them." in text[0]["content"]
    assert text[2] == {"role": "assistant", "content": call("get_weather", city="Oslo")}
    assert text[3] == {"role": "user", "content": '<tool_response>\n{"sky": "clear"}\n</tool_response>'}
    assert structured.tool_messages(messages[:2], Shape()) == messages[:2]  # nothing to show: unchanged


def test_a_grammar_llguidance_refuses_is_that_cases_error_in_one_line(tokenizer: Any) -> None:
    lookbehind = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=a)b"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": lookbehind}}
    grammar = structured.grammar(shape(response_format=fmt))
    assert grammar is not None
    mask = constrained.GrammarMask(tokenizer, [grammar, None])
    assert mask.errors == ["error: look-around, including look-ahead and look-behind, is not supported", ""]
    assert constrained.check(grammar, tokenizer) == mask.errors[0]


def validates(output: str, schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(json.loads(output), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


@pytest.mark.slow
def test_every_shipped_extraction_reply_validates_and_every_route_is_a_valid_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = shipped_project(tmp_path / "repo")
    repo.capsys = capsys
    assert repo.run("eval", "extract_address", "route_request", "-q").code == 0
    rows = repo.sql("SELECT suite, output, score FROM results ORDER BY ALL")
    import yaml

    address = yaml.safe_load((REPO_ROOT / "prompts/extract_address.yaml").read_text())
    schema = address["response_format"]["json_schema"]["schema"]
    extracted = [output for suite, output, _ in rows if suite == "extract_address"]
    assert len(extracted) == 40 and all(validates(o, schema) for o in extracted)
    router = yaml.safe_load((REPO_ROOT / "prompts/route_request.yaml").read_text())
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in router["tools"]}
    routed = [replies.decode(output) for suite, output, _ in rows if suite == "route_request"]
    assert len(routed) == 40
    for reply in routed:
        assert reply is not None and len(reply.calls) == 1 and reply.calls[0].name in schemas
        arguments, why = reply.calls[0].arguments()
        assert arguments is not None, why
        jsonschema.validate(arguments, schemas[reply.calls[0].name])
    # Free decoding of the same router: its replies are measured beside, and are not all calls.
    config = repo.path / "promptci.yaml"
    config.write_text(
        config.read_text().replace("  max_tokens: 16\n", "  max_tokens: 16\n  params: {constrain: false}\n")
    )
    (repo.path / ".promptci/results.duckdb").unlink()
    assert repo.run("eval", "route_request", "-q").code in (0, 1)
    free = repo.sql("SELECT output FROM results")
    assert len(free) == 40 and sum(replies.decode(o) is not None for (o,) in free) < 40


@pytest.mark.slow
def test_a_local_tool_reply_cut_short_is_a_wrong_answer_with_its_reason(repo: Repo) -> None:
    shutil_copy(repo, "prompts/route_request.yaml")
    repo.write(
        "evals/route.yaml",
        "prompts: [route_request]\nmodel: {max_tokens: 6}\nscorers: [{type: tool-call}]\ncases:\n"
        "  - vars: {request: Set a timer for 5 minutes.}\n"
        "    expected: {name: set_timer, arguments: {minutes: 5}}\n",
    )
    out = repo.path / "r.json"
    repo.run("eval", "route", "-o", str(out))
    (row,) = json.loads(out.read_text())["results"]
    assert row["error"] is None and row["score"] == 0.0
    assert "invalid arguments" in row["note"] or "not JSON" in row["note"], row["note"]


def shutil_copy(repo: Repo, rel: str) -> None:
    repo.write(rel, (REPO_ROOT / rel).read_text())


# A chat template that takes tools, as Qwen's and Hermes' do: tools listed in the system turn,
# earlier calls as <tool_call> blocks, results as <tool_response> in a user turn.
TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n{% for t in tools %}{{ t.function.name }}: {{ t.function.description }}\n"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ 'user' if m.role == 'tool' else m.role }}\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} "
    "{{ c.function.arguments.city }}</tool_call>{% endfor %}"
    "{% elif m.role == 'tool' %}<tool_response>{{ m.content }}</tool_response>{% else %}{{ m.content }}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.slow
def test_a_template_that_takes_tools_renders_them_and_earlier_calls_itself() -> None:
    from promptci.providers.base import GenParams, Request
    from promptci.providers.local import TransformersProvider

    provider = TransformersProvider(models.resolve(None, Path(".")), device="cpu", dtype="float32", batch_size=2)
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "clear"},
        {"role": "user", "content": "And in Bergen?"},
    ]
    request = Request(
        tuple((m["role"], m["content"]) for m in messages),
        GenParams(8),
        tools=json.dumps({"tools": [WEATHER], "tool_choice": "required"}),
        turns=json.dumps(messages),
    )
    fallback = provider.format(request)  # SmolLM2's own template takes no tools: the preamble
    assert "You can call these tools. You must call one of them." in fallback
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>' in fallback
    provider.tokenizer.chat_template = TOOLS_TEMPLATE
    native = provider.format(request)
    assert native.startswith("<|im_start|>system\nget_weather: The weather in a city.\n<|im_end|>")
    assert "<tool_call>get_weather Oslo</tool_call>" in native  # its arguments as a mapping, as templates read them
    assert "<|im_start|>user\n<tool_response>clear</tool_response>" in native
    assert "You can call these tools" not in native

"""Rendering: strict variables, types, defaults and the sandbox."""

from __future__ import annotations

import pytest

import promptci
from promptci.errors import InputError, RenderError
from promptci.prompts.prompt import coerce
from promptci.prompts.spec import Variable

from ..conftest import SUMMARIZE, Repo


@pytest.fixture
def summarize(repo: Repo) -> promptci.Prompt:
    repo.write("prompts/summarize.yaml", SUMMARIZE)
    return promptci.load("summarize", root=repo.path)


def test_render_fills_variables_and_defaults(summarize: promptci.Prompt) -> None:
    messages = summarize.render(text="The cat sat.")
    assert messages == [
        {"role": "system", "content": "You write short summaries."},
        {"role": "user", "content": "Summarize in at most 50 words:\nThe cat sat."},
    ]
    assert summarize.render(text="x", words=5, style="dry")[0]["content"] == "You write dry summaries."


def test_missing_required_variable_is_named(summarize: promptci.Prompt) -> None:
    with pytest.raises(RenderError, match="missing required variable 'text' \\(string\\) — the text"):
        summarize.render()


def test_undeclared_variable_is_named(summarize: promptci.Prompt) -> None:
    with pytest.raises(RenderError, match="undeclared variable 'txt' \\(declared: style, text, words\\)"):
        summarize.render(txt="oops")


def test_wrong_type_is_refused(summarize: promptci.Prompt) -> None:
    with pytest.raises(RenderError, match="'words' should be integer, got str"):
        summarize.render(text="x", words="fifty")
    with pytest.raises(RenderError, match="'words' should be integer, got bool"):
        summarize.render(text="x", words=True)


def test_template_prompt_renders_one_user_message(repo: Repo) -> None:
    repo.write("prompts/t.yaml", "name: t\ntemplate: 'Q: {{ q }}'\nvariables: {q: string}\n")
    assert promptci.load("t", root=repo.path).render(q="why?") == [{"role": "user", "content": "Q: why?"}]


def test_sandbox_blocks_unsafe_attribute_access(repo: Repo) -> None:
    repo.write("prompts/evil.yaml", "name: evil\ntemplate: \"{{ ''.__class__.__mro__ }}\"\n")
    with pytest.raises(InputError, match="template error"):
        promptci.load("evil", root=repo.path).render()


def test_trim_blocks_leave_no_blank_lines(repo: Repo) -> None:
    source = "name: l\ntemplate: |\n  Options:\n  {% for o in opts %}\n  - {{ o }}\n  {% endfor %}\n  End\nvariables: {opts: array}\n"
    repo.write("prompts/l.yaml", source)
    text = promptci.load("l", root=repo.path).render(opts=["a", "b"])[0]["content"]
    assert text == "Options:\n- a\n- b\nEnd"


@pytest.mark.parametrize(
    "kind,raw,value",
    [
        ("integer", "3", 3),
        ("number", "2.5", 2.5),
        ("boolean", "yes", True),
        ("boolean", "0", False),
        ("array", '["a", 1]', ["a", 1]),
        ("object", '{"k": 2}', {"k": 2}),
        ("string", "3", "3"),
    ],
)
def test_cli_values_are_coerced_by_declared_type(kind: str, raw: str, value: object) -> None:
    assert coerce(Variable(type=kind), raw, "v") == value  # type: ignore[arg-type]


def test_bad_cli_value_is_refused() -> None:
    with pytest.raises(RenderError, match="variable 'n' expects integer, cannot read 'many'"):
        coerce(Variable(type="integer"), "many", "n")


def test_render_command(repo: Repo) -> None:
    repo.write("prompts/summarize.yaml", SUMMARIZE)
    result = repo.run("render", "summarize", "--var", "text=Hello", "--var", "words=7")
    assert result.code == 0
    assert "[user]\nSummarize in at most 7 words:\nHello" in result.out
    vars_file = repo.write("vars.yaml", "text: From file\nwords: 3\n")
    result = repo.run("render", "summarize", "--vars-file", str(vars_file), "--var", "words=9", "--format", "json")
    assert '"content": "Summarize in at most 9 words:\\nFrom file"' in result.out
    bad = repo.run("render", "summarize", "--var", "words=lots", "--var", "text=x")
    assert bad.code == 2 and "expects integer" in bad.err
    assert repo.run("render", "summarize", "--var", "novalue").code == 2

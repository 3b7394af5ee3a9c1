"""Pipeline files: the format, lint at file:line:col, loading, identity and ``--changed``.
No model runs here."""

from __future__ import annotations

import contextlib
import json

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.errors import ExitCode, InputError
from promptci.evals.changes import changed_suites
from promptci.evals.plan import build_plan, suite_files
from promptci.pipelines.graph import references
from promptci.pipelines.load import Pipelines
from promptci.pipelines.spec import Parse
from promptci.pipelines.steps import StepError, read
from promptci.project import Project

from ..conftest import Repo

DRAFT = """\
name: draft
description: Write a reply.
messages:
  - role: user
    content: "Reply to: {{ review }}"
variables:
  review: {type: string, description: the review}
"""

CHECK = """\
name: check
description: Label the reply.
messages:
  - role: user
    content: "Review: {{ review }}\\nReply ({{ tone }}): {{ reply }}\\nSentiment:"
variables:
  review: string
  reply: string
  tone: {type: string, default: plain}
"""

PIPELINE = """\
name: reply_then_label
description: Draft a reply, then label the review with the reply in view.
inputs:
  review: {type: string, description: the review}
steps:
  - id: draft
    prompt: draft
    vars:
      review: "{{ inputs.review }}"
  - id: label
    prompt: check
    vars:
      review: "{{ inputs.review }}"
      reply: "{{ steps.draft.output }}"
    parse: {regex: '(positive|negative)'}
output: label
"""

SUITE = """\
prompts: [reply_then_label]
scorers: [{type: exact}]
cases:
  - vars: {review: "Works perfectly."}
    expected: positive
"""


@pytest.fixture
def piped(repo: Repo) -> Repo:
    repo.write("prompts/draft.yaml", DRAFT)
    repo.write("prompts/check.yaml", CHECK)
    repo.write("pipelines/reply_then_label.yaml", PIPELINE)
    repo.write("evals/piped.yaml", SUITE)
    repo.commit("a pipeline")
    return repo


def test_a_good_pipeline_lints_clean_and_loads(piped: Repo) -> None:
    result = piped.run("lint")
    assert result.code == 0, result.out + result.err
    assert "6 files, 0 errors, 0 warnings" in result.err
    pipeline = Pipelines(Project.discover(piped.path)).get("reply_then_label")
    assert [p.name for p in pipeline.prompts] == ["draft", "check"]
    assert pipeline.path == "pipelines/reply_then_label.yaml"
    version = pipeline.version
    assert version.commit == piped.git("rev-parse", "HEAD") and not version.dirty


BROKEN = [
    # (what, replace this, with this, line, col, code)
    ("unknown step prompt", "prompt: check", "prompt: chek", 11, 13, "unknown-prompt"),
    (
        "an unbound variable",
        '      review: "{{ inputs.review }}"\n      reply',
        "      reply",
        11,
        13,
        "unbound-variable",
    ),
    ("an undeclared variable", "    parse: {regex", "      mood: x\n    parse: {regex", 15, 7, "unknown-variable"),
    (
        "a later step",
        'review: "{{ inputs.review }}"\n  - id: label',
        'review: "{{ steps.label.output }}"\n  - id: label',
        6,
        9,
        "cycle",
    ),
    ("an unknown step", "steps.draft.output", "steps.drafts.output", 14, 14, "unknown-step"),
    (
        "an unknown input",
        'review: "{{ inputs.review }}"\n  - id: label',
        'review: "{{ inputs.text }}"\n  - id: label',
        9,
        15,
        "unknown-input",
    ),
    ("a parse regex that does not compile", "regex: '(positive|negative)'", "regex: '(positive'", 15, 13, "schema"),
    ("a step nothing reads", 'reply: "{{ steps.draft.output }}"', 'reply: "{{ inputs.review }}"', 6, 9, "unused-step"),
    ("an output that is no step", "output: label", "output: labels", 16, 9, "unknown-step"),
    ("a template that does not parse", "steps.draft.output }}", "steps.draft.output }", 14, 14, "jinja"),
    (
        "a template past its limits",
        "steps.draft.output }}",
        "steps.draft.output ~ 'a' * 10**10 }}",
        14,
        14,
        "template-limit",
    ),
]


@pytest.mark.parametrize(("what", "old", "new", "line", "col", "code"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_problem_is_a_lint_error_at_its_position(
    piped: Repo, what: str, old: str, new: str, line: int, col: int, code: str
) -> None:
    assert old in PIPELINE, what
    piped.write("pipelines/reply_then_label.yaml", PIPELINE.replace(old, new))
    result = piped.run("lint")
    assert result.code == ExitCode.FAILED, result.err
    where = f"pipelines/reply_then_label.yaml:{line}:{col}: error:"
    found = [x for x in result.out.splitlines() if x.startswith(where) and x.endswith(f"[{code}]")]
    assert found, result.out
    # Loading it for a run is refused at the same place, exit 2, before any model is loaded.
    result = piped.run("run", "reply_then_label", "--var", "review=x")
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("error: pipelines/reply_then_label.yaml:"), result.err


def test_a_pipeline_named_like_a_prompt_is_refused(piped: Repo) -> None:
    piped.write("pipelines/reply_then_label.yaml", PIPELINE.replace("name: reply_then_label", "name: draft"))
    piped.write("evals/piped.yaml", SUITE.replace("reply_then_label", "draft"))
    result = piped.run("lint")
    assert (
        "pipelines/reply_then_label.yaml:1:1: error: pipeline name 'draft' is also declared in prompts/draft.yaml"
        in result.out
    )
    result = piped.run("eval", "evals/piped.yaml")
    assert result.code == ExitCode.USAGE
    assert "'draft' names both a prompt (prompts/draft.yaml) and a pipeline" in result.err


def test_the_version_covers_the_step_prompts(piped: Repo) -> None:
    project = Project.discover(piped.path)
    before = Pipelines(project).get("reply_then_label")
    piped.write("prompts/check.yaml", CHECK.replace("Sentiment:", "Sentiment (one word):"))
    after = Pipelines(project).get("reply_then_label")
    assert after.file_hash == before.file_hash and after.content_hash != before.content_hash
    assert after.version.dirty and after.version.commit is None
    piped.commit("edit the second step")
    committed = Pipelines(project).get("reply_then_label")
    assert committed.version.commit == piped.git("rev-parse", "HEAD")
    # At a revision, a step named without @ is read at that same revision.
    old = Pipelines(project).get("reply_then_label", "HEAD~1")
    assert old.content_hash == before.content_hash
    assert "Sentiment:" in old.prompts[1].source and "(one word)" not in old.prompts[1].source


def test_a_changed_step_prompt_selects_the_pipelines_suites(piped: Repo) -> None:
    project = Project.discover(piped.path)
    base = piped.git("rev-parse", "HEAD")
    piped.write("evals/other.yaml", "prompts: [draft]\nscorers: [{type: exact}]\ncases: [{vars: {review: a}}]\n")
    piped.commit("another suite")
    suites = suite_files(project)
    assert changed_suites(project, suites, base)[0] == [piped.path / "evals/other.yaml"]
    piped.write("prompts/check.yaml", CHECK.replace("Sentiment:", "Label:"))
    selected, _ = changed_suites(project, suites, base)
    assert piped.path / "evals/piped.yaml" in selected


def test_a_pipeline_task_names_every_steps_model(piped: Repo) -> None:
    project = Project.discover(piped.path)
    piped.write(
        "pipelines/reply_then_label.yaml",
        PIPELINE.replace(
            '      review: "{{ inputs.review }}"\n  - id',
            '      review: "{{ inputs.review }}"\n'
            "    model: {provider: openai, model: drafter, params: {base_url: 'http://127.0.0.1:9/v1'}}\n  - id",
        ),
    )
    (task,) = build_plan(project, [piped.path / "evals/piped.yaml"]).tasks
    assert [s.step.id for s in task.stages] == ["draft", "label"]
    assert task.model_id.startswith("openai:drafter@") and " + SmolLM2-135M-Instruct" in task.model_id
    first = task.params.digest()
    piped.write(
        "pipelines/reply_then_label.yaml",
        PIPELINE.replace("vars:\n      review", "model: {max_tokens: 5}\n    vars:\n      review", 1),
    )
    (again,) = build_plan(project, [piped.path / "evals/piped.yaml"]).tasks
    assert again.params.digest() != first  # a step's parameters are part of the task's identity


def test_loglik_scoring_of_a_pipeline_is_refused(piped: Repo) -> None:
    piped.write("evals/piped.yaml", SUITE.replace("[{type: exact}]", "[{type: choice, choices: [a, b], mode: loglik}]"))
    result = piped.run("eval", "evals/piped.yaml")
    assert result.code == ExitCode.USAGE
    assert "evals/piped.yaml:2:" in result.err and "is a pipeline" in result.err


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        ({"regex": r"\(([A-F])\)"}, "I think (B) fits", "B"),
        ({"regex": r"\d+"}, "about 12 or 13", "12"),
        ({"strip": True}, "  yes \n", "yes"),
        ({"json": "answer"}, 'Sure! {"answer": "C", "why": "…"} done', "C"),
        ({"json": "items.1"}, '{"items": [1, 2, 3]}', 2),
        ({"json": ""}, "[1, 2]", [1, 2]),
    ],
)
def test_parse_reads_the_output(parse: dict[str, object], text: str, expected: object) -> None:
    assert read(Parse.model_validate(parse), text) == expected


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        ({"regex": r"\(([A-F])\)"}, "no letter here", "parse: no match for /\\(([A-F])\\)/"),
        ({"json": "answer"}, "not json at all", "parse: no JSON value"),
        ({"json": "answer"}, '{"other": 1}', "parse: the JSON has no 'answer'"),
        ({"json": ""}, "[" * 100_000, "parse: no JSON value"),  # nested past recursion: no value, no crash
    ],
)
def test_a_parse_that_finds_nothing_is_a_step_error(parse: dict[str, object], text: str, message: str) -> None:
    with pytest.raises(StepError) as caught:
        read(Parse.model_validate(parse), text)
    assert str(caught.value).startswith(message)


def test_parse_takes_exactly_one_way() -> None:
    with pytest.raises(ValueError, match="exactly one of 'regex', 'json' or 'strip'"):
        Parse.model_validate({"regex": "a", "strip": True})


def test_a_missing_step_prompt_at_a_revision_names_the_step(piped: Repo) -> None:
    piped.git("rm", "-q", "prompts/check.yaml")
    piped.commit("drop the second step's prompt")
    with pytest.raises(InputError, match="step 'label': no prompt named 'check'"):
        Pipelines(Project.discover(piped.path)).get("reply_then_label", "HEAD")


def test_a_pipeline_opts_in_to_optimizer_passes(piped: Repo) -> None:
    piped.write(
        "pipelines/reply_then_label.yaml",
        PIPELINE + "optimize: {suite: piped, method: textgrad, budget: {calls: 50}}\n",
    )
    piped.commit("opt the pipeline in")
    assert piped.run("lint").code == 0
    assert json.loads(piped.run("optimize", "--all", "--plan").out) == ["reply_then_label"]
    assert json.loads(piped.run("optimize", "--changed", "--base", "HEAD", "--plan").out) == []
    piped.write("prompts/check.yaml", CHECK.replace("Sentiment:", "Label:"))  # a step's prompt, not the pipeline
    assert json.loads(piped.run("optimize", "--changed", "--base", "HEAD", "--plan").out) == ["reply_then_label"]
    piped.write("pipelines/reply_then_label.yaml", PIPELINE + "optimize: {suite: piped, method: demos}\n")
    result = piped.run("optimize", "reply_then_label", "--suite", "piped", "--method", "demos", "--dry-run")
    assert result.code == ExitCode.USAGE and "method 'demos' does not optimize a pipeline" in result.err


TEMPLATE_BITS = st.sampled_from(
    ["{{ ", " }}", "{% ", " %}", "inputs", "steps", ".", "[", "]", "'a'", "output", "raw", "x", "|", "tojson", " ", "1"]
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(source=st.one_of(st.text(max_size=60), st.lists(TEMPLATE_BITS, max_size=20).map("".join)))
def test_any_step_template_is_read_without_running_it(source: str) -> None:
    try:
        refs = references(source)
    except jinja2.TemplateSyntaxError:
        return
    assert all(isinstance(k, str) for k in refs.steps) and all(isinstance(k, str) for k in refs.inputs)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    text=st.text(max_size=200),
    way=st.sampled_from([{"json": ""}, {"json": "a.0"}, {"regex": r"(\d+)"}, {"strip": True}]),
)
def test_any_output_parses_or_is_a_step_error(text: str, way: dict[str, object]) -> None:
    with contextlib.suppress(StepError):  # anything else fails the test
        read(Parse.model_validate(way), text)

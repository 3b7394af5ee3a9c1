"""Pipelines evaluated and run end to end: the real SmolLM2, a real llm-katan server, a real DuckDB file."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from promptci.errors import ExitCode

from ..conftest import Katan, Repo
from .test_format import CHECK, DRAFT, PIPELINE

pytestmark = pytest.mark.slow

SUITE = """\
prompts: [reply_then_label]
scorers: [{type: exact}]
model: {max_tokens: 8}
cases:
  - vars: {review: "Works perfectly, I use it every day."}
    expected: positive
  - vars: {review: "Broke after two days and support never answered."}
    expected: negative
  - vars: {review: "Great value for the price, would buy again."}
    expected: positive
"""


@pytest.fixture
def piped(repo: Repo) -> Repo:
    repo.write("prompts/draft.yaml", DRAFT)
    repo.write("prompts/check.yaml", CHECK)
    repo.write("pipelines/reply_then_label.yaml", PIPELINE.replace("(positive|negative)", "(\\w+)"))
    repo.write("evals/piped.yaml", SUITE)
    repo.commit("a pipeline")
    return repo


def _eval(repo: Repo) -> dict[str, int]:
    out = repo.path / "out.json"
    result = repo.run("eval", "evals/piped.yaml", "-o", str(out))
    assert result.code in (ExitCode.OK, ExitCode.FAILED), result.err
    return json.loads(out.read_text())["usage"]


def test_each_step_is_stored_and_feeds_the_next(piped: Repo) -> None:
    assert _eval(piped)["calls"] == 6  # 3 cases x 2 steps
    (run_id,) = piped.sql("SELECT id FROM runs")[0]
    results = piped.sql("SELECT case_id, prompt, output, score, error FROM results ORDER BY case_id")
    assert len(results) == 3 and {r[1] for r in results} == {"reply_then_label"}
    steps = piped.sql(
        "SELECT case_id, step_index, step_id, step_prompt, input, output, parsed, error, cached, run_id"
        " FROM steps ORDER BY case_id, step_index",
    )
    assert [(s[1], s[2], s[3]) for s in steps] == [(0, "draft", "draft"), (1, "label", "check")] * 3
    assert {s[9] for s in steps} == {run_id}
    for (case_id, output, _score, error), (draft, label) in zip(
        [(r[0], r[2], r[3], r[4]) for r in results], zip(steps[::2], steps[1::2], strict=True), strict=True
    ):
        assert draft[0] == label[0] == case_id
        # The second step reads the first one's answer.
        assert draft[5] and draft[5].strip() in json.loads(label[4])[0]["content"]
        assert error is None and output == label[6]  # the parsed word is what is scored
        assert label[6] in label[5]


def test_only_the_changed_step_and_those_after_it_call_the_model(piped: Repo) -> None:
    _eval(piped)
    assert _eval(piped) == {**_eval(piped), "calls": 0, "cached": 3}
    piped.write("prompts/check.yaml", CHECK.replace("Sentiment:", "Sentiment, in one word:"))
    usage = _eval(piped)
    assert usage["calls"] == 3  # the draft step came from the cache
    last = piped.sql("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
    cached = piped.sql(f"SELECT step_id, bool_and(cached) FROM steps WHERE run_id = '{last}' GROUP BY 1 ORDER BY 1")
    assert cached == [("draft", True), ("label", False)]
    hashes = piped.sql("SELECT count(DISTINCT prompt_hash) FROM results")
    assert hashes == [(2,)]  # the edited step prompt made a new pipeline version


def test_a_reply_the_parse_rule_cannot_read_is_a_wrong_answer_with_its_reason(piped: Repo) -> None:
    piped.write("pipelines/reply_then_label.yaml", PIPELINE.replace("(positive|negative)", "NEVER-SAID-(\\d{9})"))
    usage = _eval(piped)
    assert usage["calls"] == 6 and usage["errors"] == 0
    rows = piped.sql("SELECT score, passed, error, note, output FROM results")
    assert all(
        score == 0.0 and passed is False and error is None and output for score, passed, error, _, output in rows
    )
    assert {n.split(" in ")[0] for *_, n, _ in rows} == {"step 'label': parse: no match for /NEVER-SAID-(\\d{9})/"}
    steps = piped.sql("SELECT step_id, error IS NOT NULL, parsed IS NULL FROM steps ORDER BY case_id, step_index")
    assert steps == [("draft", False, False), ("label", True, True)] * 3
    # The model answered every step: a second run asks it nothing, and reads the same wrong answers.
    assert _eval(piped)["calls"] == 0


def test_provider_errors_are_recorded_at_their_step(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo", "--error-rate", "1.0")
    params = {"base_url": server.base_url, "backoff": 0.01, "max_retries": 1}
    model = f"model: {{provider: openai, model: echo-model, params: {json.dumps(params)}}}"
    repo.write("prompts/draft.yaml", DRAFT)
    repo.write("prompts/check.yaml", CHECK)
    repo.write("pipelines/reply_then_label.yaml", PIPELINE)
    repo.write("evals/piped.yaml", SUITE.replace("model: {max_tokens: 8}", model))
    usage = _eval(repo)
    assert usage["errors"] == 3
    steps = repo.sql("SELECT step_id, error FROM steps ORDER BY case_id")
    assert [s[0] for s in steps] == ["draft"] * 3  # each case ended at its first step
    assert all(e.startswith("provider: HTTP 500 after 1 retry") for _, e in steps), steps
    results = repo.sql("SELECT score, error FROM results")
    assert all(score is None and error.startswith("step 'draft': provider: ") for score, error in results)
    assert repo.sql("SELECT count(*) FROM cache") == [(0,)]


def test_run_prints_the_trace_and_reuses_the_cache(piped: Repo) -> None:
    args = ("run", "reply_then_label", "--var", "review=Broke after two days.", "--format", "json")
    first = piped.run(*args)
    assert first.code == ExitCode.OK, first.err
    trace = json.loads(first.out)
    assert [s["id"] for s in trace["steps"]] == ["draft", "label"] and trace["calls"] == 2
    draft, label = trace["steps"]
    assert draft["messages"][0]["content"] == "Reply to: Broke after two days."
    assert draft["output"].strip() in label["messages"][0]["content"]
    assert trace["output"] == label["parsed"] and trace["error"] is None
    again = json.loads(piped.run(*args).out)
    assert (again["calls"], again["cached"]) == (0, 2) and again["output"] == trace["output"]
    text = piped.run("run", "reply_then_label", "--var", "review=Broke after two days.")
    assert "== step draft · draft ·" in text.out and "output: " + trace["output"] in text.out


RELAY = {
    "prompts/first.yaml": "name: first\ntemplate: 'Pass this on: {{ text }}'\nvariables: {text: string}\n",
    "prompts/second.yaml": "name: second\ntemplate: 'Answer from the note: {{ note }}'\nvariables: {note: string}\n",
    "pipelines/relay.yaml": """\
name: relay
inputs: {review: string}
steps:
  - id: first
    prompt: first
    vars: {text: "{{ inputs.review }}"}
  - id: second
    prompt: second
    vars: {note: "{{ steps.first.output }}"}
    parse: {strip: true}
output: second
""",
}


def test_the_python_api_runs_a_pipeline(repo: Repo, katan: Callable[..., Katan]) -> None:
    import promptci

    server = katan("-b", "echo")
    for path, text in RELAY.items():
        repo.write(path, text)
    repo.use_model_server(server.base_url)
    result = promptci.run("relay", {"review": "I feel positive about it"}, root=repo.path)
    assert result.trace.error is None and "I feel positive about it" in result.output
    assert [s.stage.step.id for s in result.trace.steps] == ["first", "second"] and result.usage.calls == 2
    assert promptci.run("relay", {"review": "I feel positive about it"}, root=repo.path).usage.calls == 0
    with pytest.raises(promptci.PromptciError, match="missing required variable 'review'"):
        promptci.run("relay", {}, root=repo.path)


def test_breaking_the_first_step_fails_compare_and_names_it(repo: Repo, katan: Callable[..., Katan]) -> None:
    """The echo server repeats what it reads, so the second step's answer holds the review only
    while the first step passes it on."""
    server = katan("-b", "echo")
    params = {"base_url": server.base_url, "backoff": 0.01}
    cases = "".join(
        f"  - {{vars: {{review: 'review {i}: I feel {label} about it'}}, expected: {label}}}\n"
        for i, label in enumerate(["positive", "negative"] * 4)
    )
    suite = f"prompts: [relay]\nmodel: {{provider: openai, model: echo-model, params: {json.dumps(params)}}}\n"
    suite += "scorers: [{type: contains}]\ncases:\n" + cases
    for path, text in {**RELAY, "evals/relay.yaml": suite}.items():
        repo.write(path, text)
    (repo.path / "evals/sentiment.yaml").unlink()
    repo.commit("a relay pipeline")
    assert repo.run("eval").code == ExitCode.OK
    repo.write("prompts/first.yaml", RELAY["prompts/first.yaml"].replace("Pass this on: {{ text }}", "Say nothing."))
    repo.commit("break the first step")
    out = repo.path / "compare.json"
    result = repo.run("compare", "HEAD~1", "HEAD", "--run-missing", "-o", str(out), "-o", str(repo.path / "c.md"))
    assert result.code == ExitCode.FAILED, result.out + result.err
    report = json.loads(out.read_text())
    relay = next(s for s in report["suites"] if s["prompt"] == "relay")
    assert relay["verdict"] == "regressed" and len(relay["flips"]) == 8
    assert relay["steps"] == [
        {"step": "first", "changed": 8, "total": 8},
        {"step": "second", "changed": 8, "total": 8},
    ]
    for flip in relay["flips"]:
        assert flip["direction"] == "pass→fail" and flip["first_step"] == "first"
        first, second = flip["trace"]
        assert second["step"] == "second" and second["base"] != second["head"]
        assert "I feel" in first["base"] and "I feel" not in first["head"]
    md = (repo.path / "c.md").read_text()
    assert "changed per step: first 8/8, second 8/8" in md and "| first step to differ |" in md
    assert "(first step to differ: first)" in result.out
    page = repo.path / "report.html"
    assert repo.run("report", "--html", str(page), "--compare", str(out)).code == ExitCode.OK
    html = page.read_text()
    assert "Changed per step: <strong>first</strong> 8/8" in html
    assert html.count(", step by step</summary>") == 8
    assert html.count("← first to differ") == 8


class _Recorder:
    """A progress bar that remembers how it was moved."""

    def __init__(self) -> None:
        self.total, self.moves, self.statuses = 0, [], []

    def start(self, total: int, cached: int) -> None:
        self.total = total

    def advance(self, n: int = 1) -> None:
        self.moves.append(n)

    def status(self, text: str) -> None:
        self.statuses.append(text)


def test_the_progress_bar_moves_at_every_step(piped: Repo) -> None:
    from promptci.evals.plan import build_plan
    from promptci.evals.runner import run_eval
    from promptci.project import Project

    project = Project.discover(piped.path)
    recorder = _Recorder()
    run_eval(project, build_plan(project, [piped.path / "evals/piped.yaml"]), progress=recorder)
    assert recorder.total == 6  # 3 cases x 2 steps
    assert recorder.moves[:2] == [3, 3] and sum(recorder.moves) == 6  # each step moves it, not only the last
    assert [s.split(" (")[0] for s in recorder.statuses] == ["step draft", "step label"]
    # A case that fails at its first step moves the bar past the steps it never asks for.
    piped.write("pipelines/reply_then_label.yaml", PIPELINE.replace("{{ inputs.review }}", "{{ inputs.review.nope }}"))
    recorder = _Recorder()
    run_eval(project, build_plan(project, [piped.path / "evals/piped.yaml"]), progress=recorder)
    assert recorder.total == 6 and sum(recorder.moves) == 6

"""compare scoped to what was run: named suites, a prompt, eval's own case filters, and by default
only the suites that differ between the sides."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from promptci.errors import ExitCode
from tests.conftest import Katan, Repo

TONE_PROMPT = "name: tone\ntemplate: 'Is this polite? {{ text }}'\nvariables: {text: string}\n"
TONE_SUITE = "prompts: [tone]\nscorers: [{type: icontains}]\ncases:\n" + "".join(
    f"  - {{vars: {{text: 'message {i}'}}, expected: polite}}\n" for i in range(6)
)


@pytest.fixture
def two(repo: Repo, katan: Callable[..., Katan]) -> Repo:
    """The example suite and a second one with a prompt of its own, answered by llm-katan's echo backend."""
    server = katan("-b", "echo")
    repo.use_model_server(server.base_url)
    repo.write("prompts/tone.yaml", TONE_PROMPT)
    repo.write("evals/tone.yaml", TONE_SUITE)
    repo.commit("a second suite, and the model server")
    return repo


def _change_sentiment(repo: Repo) -> None:
    path = repo.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text().replace("Review: {{ review }}", "Product review: {{ review }}"))
    repo.commit("reword the sentiment prompt")


def _compare(repo: Repo, *args: str) -> tuple[int, dict[str, object], str]:
    result = repo.run("compare", *args, "--format", "json")
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def test_a_suite_evaluated_alone_at_both_commits_compares(two: Repo) -> None:
    assert two.run("eval", "sentiment").code in (ExitCode.OK, ExitCode.FAILED)
    _change_sentiment(two)
    assert two.run("eval", "evals/sentiment.yaml").code in (ExitCode.OK, ExitCode.FAILED)
    code, report, err = _compare(two, "HEAD~1", "HEAD", "evals/sentiment.yaml")
    assert code in (ExitCode.OK, ExitCode.FAILED), err
    assert [(s["suite"], s["n"]) for s in report["suites"]] == [("sentiment", 6)]  # type: ignore[index]
    # By name as well; and with no suite named, the one the change did not touch is left out.
    assert _compare(two, "HEAD~1", "HEAD", "sentiment")[1] == report
    code, unnamed, err = _compare(two, "HEAD~1", "HEAD")
    assert code in (ExitCode.OK, ExitCode.FAILED), err
    assert [s["suite"] for s in unnamed["suites"]] == ["sentiment"]  # type: ignore[index]
    assert "left out 1 suite(s) the same on both sides" in err and "tone" in err


def test_a_sampled_eval_compares_to_a_sampled_eval(two: Repo) -> None:
    assert two.run("eval", "sentiment", "--sample", "3").code in (ExitCode.OK, ExitCode.FAILED)
    first = set(two.sql("SELECT case_id FROM results"))
    _change_sentiment(two)
    assert two.run("eval", "sentiment", "--sample", "3").code in (ExitCode.OK, ExitCode.FAILED)
    assert set(two.sql("SELECT case_id FROM results")) == first  # the same 3 cases: a seeded sample
    code, report, err = _compare(two, "HEAD~1", "HEAD", "sentiment", "--sample", "3")
    assert code in (ExitCode.OK, ExitCode.FAILED), err
    assert [(s["suite"], s["n"]) for s in report["suites"]] == [("sentiment", 3)]  # type: ignore[index]
    missing = two.run("compare", "HEAD~1", "HEAD", "sentiment")  # all six cases: three were never run
    assert missing.code == ExitCode.USAGE and "no stored results for 3 case(s)" in missing.err


def test_a_prompt_and_a_filter_narrow_it_and_a_filter_matching_nothing_exits_5(two: Repo) -> None:
    assert two.run("eval").code in (ExitCode.OK, ExitCode.FAILED)
    code, report, err = _compare(two, "HEAD", "HEAD", "--prompt", "tone", "tone")
    assert code == ExitCode.OK, err
    assert [s["prompt"] for s in report["suites"]] == ["tone"]  # type: ignore[index]
    nothing = two.run("compare", "HEAD", "HEAD", "tone", "--filter", "no-such-case")
    assert nothing.code == ExitCode.NOTHING_SELECTED and "no case matches --filter 'no-such-case'" in nothing.err
    assert two.run("eval", "--filter", "no-such-case").code == ExitCode.NOTHING_SELECTED


def test_eval_names_a_suite_it_cannot_find(two: Repo) -> None:
    result = two.run("eval", "no-such-suite")
    assert result.code == ExitCode.USAGE
    assert "no suite 'no-such-suite'" in result.err and "suites: sentiment, tone" in result.err

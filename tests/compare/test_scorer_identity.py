"""A stored score belongs to the scorer configuration that gave it: after a scorer changes, compare
refuses the stale sides, and never reads "unchanged" from scores the new scorer never gave."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.conftest import Repo, chat_reply, json_server, request_json


def _answer(h: BaseHTTPRequestHandler) -> tuple[int, Any]:
    text = json.dumps(request_json(h)["messages"][-1])
    return 200, chat_reply("m", "negative" if any(w in text for w in ("Broke", "dies", "cracked")) else "positive")


@pytest.fixture
def served(repo: Repo) -> Any:
    with json_server(_answer) as url:
        config = (repo.path / "promptci.yaml").read_text()
        settings = json.dumps({"base_url": url + "/v1", "max_retries": 0})
        repo.write(
            "promptci.yaml",
            config.replace(
                "model:\n  temperature: 0\n", f"model:\n  provider: openai\n  model: m\n  params: {settings}\n"
            ),
        )
        repo.commit("scripted model", "promptci.yaml")
        assert repo.run("eval").code == 0
        yield repo


@pytest.mark.parametrize(
    "scorer",
    [
        "  - type: contains\n    value: zzz\n",
        "  - type: choice\n    choices: [negative, positive, neutral]\n",
    ],
)
def test_a_changed_scorer_is_never_read_as_unchanged(served: Repo, scorer: str) -> None:
    repo = served
    suite = repo.path / "evals/sentiment.yaml"
    text = suite.read_text()
    start = text.index("scorers:\n") + len("scorers:\n")
    end = text.index("threshold:")
    suite.write_text(text[:start] + scorer + text[end:])
    first = repo.run("compare", "--run-missing")
    assert first.code == 2, first
    assert "not comparable" in first.err and "scorers or thresholds differ" in first.err
    assert "unchanged" not in first.out
    again = repo.run("compare")  # the working tree's results are stored now: still not comparable
    assert again.code == 2 and "scorers or thresholds differ" in again.err, again
    forced = repo.run("compare", "--allow-mismatch", "--format", "json")
    if "zzz" in scorer:
        assert forced.code == 1, forced  # every case fails under the new scorer: a regression
        suites = json.loads(forced.out)["suites"]
        assert suites[0]["head_mean"] == 0.0 and suites[0]["base_mean"] == 1.0


def test_an_unchanged_scorer_still_compares(served: Repo) -> None:
    r = served.run("compare", "HEAD", "HEAD", "sentiment")
    assert r.code == 0 and "unchanged" in r.out, r


@pytest.mark.parametrize(
    "command", [["eval", "--prompt", "sentimnt"], ["compare", "HEAD", "HEAD", "--prompt", "nosuch"]]
)
def test_a_prompt_that_does_not_exist_is_bad_usage(served: Repo, command: list[str]) -> None:
    r = served.run(*command)
    assert r.code == 2, r
    assert "no prompt or pipeline named" in r.err


def test_repeated_rows_are_one_case_with_one_score_everywhere(served: Repo) -> None:
    """A dataset that repeats rows: eval, history and compare count the same cases and agree."""
    repo = served
    rows = [("Works perfectly.", "positive"), ("Broke at once.", "negative"), ("Great value.", "negative")]
    lines = [json.dumps({"review": r, "sentiment": s}) for r, s in rows]
    repo.write("evals/reviews.jsonl", "\n".join(lines * 5 + lines[:1] * 4) + "\n")  # 19 rows, 3 cases
    repo.write(
        "evals/repeats.yaml",
        "prompts: [sentiment]\nscorers: [{type: choice, choices: [positive, negative]}]\n"
        "dataset: {path: reviews.jsonl, vars: {review: review}, expected: sentiment}\n",
    )
    lint = repo.run("lint")
    assert "16 row(s) repeat an earlier case" in lint.out + lint.err, lint
    out = repo.path / "eval.json"
    assert repo.run("eval", "repeats", "-o", str(out)).code == 0
    evaluated = json.loads(out.read_text())
    suite = next(s for s in evaluated["suites"] if s["suite"] == "repeats")
    assert suite["cases"] == 3 and abs(suite["score"] - 2 / 3) < 1e-9, suite
    history = repo.run("history", "--format", "json")
    point = next(p for p in json.loads(history.out) if p["suite"] == "repeats")
    assert point["cases"] == 3 and abs(point["score"] - 2 / 3) < 1e-9, point

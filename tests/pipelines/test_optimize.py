"""Optimizing a pipeline as one system on the real SmolLM2: one step at a time, scored end to
end with the steps before it from the cache, blame stored, a winner across several files."""

from __future__ import annotations

import json

import pytest

from promptci.errors import ExitCode
from promptci.optimize.credit import Credit, _split_reply, blamed_step, named_step
from promptci.optimize.pipeline import describe_state, read_state, state_text

from ..conftest import Repo
from .test_format import CHECK, DRAFT, PIPELINE

REVIEWS = [
    ("Works perfectly, I use it every day.", "positive"),
    ("Broke after two days and support never answered.", "negative"),
    ("Great value for the price, would buy again.", "positive"),
    ("The battery dies within an hour. Waste of money.", "negative"),
    ("Exactly as described and arrived early.", "positive"),
    ("Cheap plastic, it cracked the first time I used it.", "negative"),
    ("My kids love it and it still looks new.", "positive"),
    ("It stopped charging after a week.", "negative"),
    ("Comfortable, quiet and easy to clean.", "positive"),
    ("The screen flickers and the seller ignored me.", "negative"),
    ("Fast delivery and it works like a charm.", "positive"),
    ("Smells of chemicals and the zip broke.", "negative"),
]


def test_blame_is_read_from_the_reply() -> None:
    steps = ["reason", "answer"]
    assert named_step("The answer step is most to blame.", steps) == "answer"
    assert named_step("reason", steps) == "reason"
    assert named_step("The reasoning went wrong", steps) is None  # a word, not a part of one
    assert named_step("Both: answer, then reason", steps) == "answer"  # the first named
    credits = [Credit("a", blamed="answer"), Credit("b", blamed="reason"), Credit("c")]
    assert blamed_step(credits, steps) == "reason"  # a tie goes to the earlier step
    assert blamed_step([Credit("a")], steps) is None
    assert _split_reply("Instruction: say the date first\nInput: nothing") == ("say the date first", "nothing")
    assert _split_reply("It should be shorter.") == ("It should be shorter.", "It should be shorter.")


def test_a_pipeline_state_is_one_json_text() -> None:
    text = state_text({"draft": "Be kind.", "label": ""})
    assert read_state(text) == {"draft": "Be kind.", "label": ""}
    assert read_state("not json") is None and read_state('["a"]') is None
    assert describe_state(text) == "draft: Be kind. · label: (none)"


@pytest.fixture
def piped(repo: Repo) -> Repo:
    repo.write("prompts/draft.yaml", DRAFT)
    repo.write("prompts/check.yaml", CHECK)
    repo.write("pipelines/reply_then_label.yaml", PIPELINE.replace("(positive|negative)", "(\\w+)"))
    cases = "".join(f"  - vars: {{review: {json.dumps(r)}}}\n    expected: {label}\n" for r, label in REVIEWS)
    repo.write(
        "evals/piped.yaml",
        "prompts: [reply_then_label]\nmodel: {max_tokens: 6}\nscorers: [{type: exact}]\ncases:\n" + cases,
    )
    (repo.path / "evals/sentiment.yaml").unlink()
    repo.commit("a pipeline and its suite")
    return repo


ARGS = ("--suite", "piped", "--steps", "2", "--candidates", "2", "--split", "0.5/0.25/0.25", "--dry-run")


@pytest.mark.slow
def test_steps_take_turns_and_a_candidate_reuses_the_steps_before_it(piped: Repo) -> None:
    result = piped.run("optimize", "reply_then_label", "--method", "gpo", "--credit", "round-robin", *ARGS)
    assert result.code == ExitCode.OK, result.err
    ((opt_id, prompt, suite),) = piped.sql("SELECT id, prompt, suite FROM optimizations")
    assert (prompt, suite) == ("reply_then_label", "piped")
    rows = piped.sql(f"SELECT step, target, text, status, dev_run FROM trajectory WHERE optimization_id = '{opt_id}'")
    initial = [r for r in rows if r[0] == 0]
    assert len(initial) == 1 and read_state(initial[0][2]) == {"draft": "", "label": ""}
    assert {r[1] for r in rows if r[0] == 1} == {"draft"} and {r[1] for r in rows if r[0] == 2} == {"label"}
    for _, _, text, status, _ in rows:
        if status not in ("unparsable", "error"):
            assert set(read_state(text) or {}) == {"draft", "label"}
    assert piped.sql("SELECT count(*) FROM credit") == [(0,)]  # no blame asked for
    # A candidate for the second step is scored with the first step's answers from the cache.
    checked = set()
    for step, target, _, status, dev_run in rows:
        if status != "scored" or not dev_run:
            continue
        cached = dict(piped.sql(f"SELECT step_id, bool_and(cached) FROM steps WHERE run_id = '{dev_run}' GROUP BY 1"))
        if target == "label":
            assert cached["draft"] is True, step
        else:
            assert cached["draft"] is False and cached["label"] is False, step
        checked.add(target)
    assert checked, rows  # at least one scored candidate was checked: hygiene may refuse the others
    assert "over 3 paired cases" in result.out  # every test case, scored outside the budget
    assert "### Credit: the step each search step changed" in result.out
    assert "| 1 | draft | its turn |" in result.out and "| 2 | label | its turn |" in result.out


@pytest.mark.slow
def test_textgrad_changes_the_blamed_step_from_its_feedback(piped: Repo) -> None:
    args = (*ARGS[:3], "1", *ARGS[4:])  # one search step
    result = piped.run("optimize", "reply_then_label", "--method", "textgrad", *args)
    assert result.code == ExitCode.OK, result.err
    credit = piped.sql("SELECT step, case_id, step_id, feedback, blamed FROM credit ORDER BY case_id, step_id")
    assert credit, "the initial pipeline fails some train cases, so their traces are read"
    assert {c[2] for c in credit} == {"draft", "label"} and all(c[3] for c in credit)
    per_case: dict[str, int] = {}
    for _, case_id, _, _, blamed in credit:
        per_case[case_id] = per_case.get(case_id, 0) + int(blamed)
    assert all(n <= 1 for n in per_case.values())
    votes = {s: sum(1 for c in credit if c[2] == s and c[4]) for s in ("draft", "label")}
    targets = {t for (t,) in piped.sql("SELECT DISTINCT target FROM trajectory WHERE step = 1")}
    expected = max(votes, key=lambda s: (votes[s], s == "draft")) if any(votes.values()) else "draft"
    assert targets == {expected}
    assert "| 1 | " + expected in result.out


@pytest.mark.slow
def test_a_stopped_pipeline_optimization_resumes_where_it_stopped(piped: Repo) -> None:
    args = (*ARGS[:3], "1", *ARGS[4:])  # one search step, then one more on resume
    first = piped.run("optimize", "reply_then_label", "--method", "textgrad", *args)
    assert first.code == ExitCode.OK, first.err
    ((opt_id,),) = piped.sql("SELECT id FROM optimizations")
    before = piped.sql(f"SELECT step, candidate, text, target FROM trajectory WHERE optimization_id = '{opt_id}'")
    credit = piped.sql("SELECT step, case_id, step_id, feedback FROM credit ORDER BY ALL")
    resumed = piped.run("optimize", "--resume", opt_id, "--steps", "2", "--dry-run")
    assert resumed.code == ExitCode.OK, resumed.err
    after = piped.sql(f"SELECT step, candidate, text, target FROM trajectory WHERE optimization_id = '{opt_id}'")
    assert [r for r in after if r[0] <= 1] == before  # what was done stays as it was
    assert {r[0] for r in after} == {0, 1, 2} and piped.sql("SELECT count(*) FROM optimizations") == [(1,)]
    again = piped.sql("SELECT step, case_id, step_id, feedback FROM credit ORDER BY ALL")
    assert [c for c in again if c[0] == 1] == [c for c in credit if c[0] == 1]  # step 1's feedback, once
    assert "| 1 | " in resumed.out and "| 2 | " in resumed.out  # the credit table covers both steps

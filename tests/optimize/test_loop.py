"""The optimizer loop's mechanics without model calls: filtering, dedupe, choice, retrieval, storage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from promptci.evals.plan import build_plan, suite_files
from promptci.optimize.context import Context
from promptci.optimize.engine import Proposal, classify
from promptci.optimize.evaluate import Evaluator
from promptci.optimize.methods.gpo import Gpo
from promptci.optimize.methods.opro import Opro
from promptci.optimize.output import HeldOut
from promptci.optimize.session import refusal
from promptci.optimize.settings import Settings
from promptci.optimize.split import split_cases
from promptci.optimize.trajectory import new_row
from promptci.project import Project
from promptci.providers.base import Completion
from promptci.settings import ModelSettings
from promptci.store import Store, TrajectoryRow

from ..conftest import Repo
from .conftest import set_limit


def context(repo: Repo, **settings: object) -> Context:
    project = Project.discover(repo.path)
    (task,) = build_plan(project, suite_files(project, (str(repo.path / "evals/navigate.yaml"),))).tasks
    s = Settings(**{"method": "gpo", "steps": 6, **settings})  # type: ignore[arg-type]
    split = split_cases(task.cases, s.split, s.seed)
    return Context(
        "opt-1", project, s, Evaluator(project, task), split, ModelSettings(), project.path(".promptci/r.duckdb"),
        "c" * 40,
    )  # fmt: skip


def row(
    step: int, cand: int, text: str, dev: float | None = None, train: float | None = None, **kw: object
) -> TrajectoryRow:
    status = str(kw.pop("status", "scored"))
    return new_row("opt-1", step, cand, None, text, status, train_score=train, dev_score=dev, **kw)


def test_replies_are_parsed_filtered_and_deduplicated(navigate: Repo) -> None:
    ctx = context(navigate)
    parent = row(0, 0, "Answer True or False.", dev=0.5, status="initial", accepted=True)
    seen = {parent.text_hash: parent}
    proposal = Proposal("meta", parent, 42)
    method = Gpo(ctx)

    def check(reply: Completion) -> TrajectoryRow:
        return classify(ctx, method, 1, 0, reply, proposal, seen)

    new = check(Completion("Thinking...\n<START>Answer True or False, after tracking each step.<END>"))
    assert (new.status, new.text, new.edit_distance, new.edit_budget) == (
        "new",
        "Answer True or False, after tracking each step.",
        5,  # "False." -> "False," and four words added
        42,
    )
    assert (new.parent_step, new.parent_candidate) == (0, 0)
    duplicate = check(Completion("<START>  answer true or false  <END>"))
    assert duplicate.status == "duplicate" and duplicate.dev_score == 0.5  # keeps its earlier score
    assert check(Completion("<START>" + "word " * 120 + "<END>")).status == "too-long"
    assert check(Completion("<START>Put the answer after the < /start> tag<END>")).status == "has-tag"
    # Tag names inside words, or as words, are words: only a tag is a tag.
    words = check(Completion("<START>Recommend one answer: it depends on where you end, and START there.<END>"))
    assert words.status == "new"
    assert check(Completion("<START>Answer {{ instructions }} now<END>")).status == "invalid"
    # The reply continues the prefilled opening tag: its first paragraph is the candidate.
    assert check(Completion("Track every step.\n\nThis works because")).text == "Track every step."
    unparsable = check(Completion("\n\nI would suggest:\n- think\n- answer"))
    assert unparsable.status == "unparsable" and unparsable.text.startswith("\n\nI would suggest")
    assert check(Completion(error="HTTP 500 after 3 retries")).status == "error"
    # Hygiene, before anything is scored: each refusal keeps its reason as the status.
    assert check(Completion("<START>Here is the improved prompt: Answer True or False.<END>")).status == "about-rewrite"
    assert check(Completion("<START>@ Answer True or False.<END>")).status == "unreadable"
    assert check(Completion("<START>Output: True<END>")).status == "not-instruction"


def test_gpo_moves_to_the_best_candidate_not_chosen_before(navigate: Repo) -> None:
    ctx = context(navigate)
    ctx.rows = [
        row(0, 0, "A", dev=0.5, status="initial", accepted=True),
        row(1, 0, "B", dev=0.75, accepted=True),
        row(1, 1, "C", dev=0.25),
    ]
    gpo = Gpo(ctx)
    step = [
        row(2, 0, "A", dev=0.5, status="duplicate"),  # chosen before: not again
        row(2, 1, "B", dev=0.75, status="duplicate"),  # chosen before, though the best
        row(2, 2, "D", dev=0.25),
        row(2, 3, "C", dev=0.25, status="duplicate"),  # scored before but never chosen: allowed
        row(2, 4, "junk", status="unparsable"),
    ]
    chosen = [r.text for r in gpo.choose(2, step) if r.accepted]
    assert chosen == ["D"]  # ties go to the earlier candidate
    ctx.rows += gpo.choose(2, step)
    assert [r.text for r in gpo.history()] == ["A", "B", "D"]
    assert gpo.final().text == "B"  # the best dev score overall, though the search moved on


def test_gpo_always_moves_even_downhill(navigate: Repo) -> None:
    ctx = context(navigate)
    ctx.rows = [row(0, 0, "A", dev=0.9, status="initial", accepted=True)]
    step = [row(1, 0, "worse", dev=0.1), row(1, 1, "worst", dev=0.0)]
    assert [r.text for r in Gpo(ctx).choose(1, step) if r.accepted] == ["worse"]


def test_opro_final_is_the_best_dev_among_confirmed_then_train_then_earliest(navigate: Repo) -> None:
    ctx = context(navigate)
    ctx.rows = [
        row(0, 0, "init", train=0.4, dev=0.5, status="initial", accepted=True),
        row(1, 0, "x", train=0.9),  # best train, never confirmed on dev
        row(1, 1, "y", train=0.4, dev=0.5, accepted=True),  # ties the initial on dev and train
        row(2, 0, "z", train=0.7, dev=0.25, accepted=True),
    ]
    assert Opro(ctx).final().text == "init"
    ctx.rows.append(row(3, 0, "v", train=0.6, dev=0.5, accepted=True))
    assert Opro(ctx).final().text == "v"  # same dev, better train
    ctx.rows.append(row(4, 0, "w", train=0.5, dev=0.75, accepted=True))
    assert Opro(ctx).final().text == "w"


def test_opro_meta_prompt_comes_from_the_trajectory(navigate: Repo) -> None:
    ctx = context(navigate, config={"exemplars": 3})
    ctx.rows = [
        row(0, 0, "", train=0.25, dev=0.5, status="initial", accepted=True),
        row(1, 0, "Track the position.", train=0.75),
        row(1, 1, "Junk reply", status="unparsable"),
    ]
    proposal = Opro(ctx).propose(2)
    assert proposal.parent is not None and proposal.parent.text == "Track the position."
    text = proposal.text
    assert text.index("text:\n\nscore:\n25") < text.index("text:\nTrack the position.\nscore:\n75")
    assert "Junk reply" not in text
    assert text.count("<INS>\nIf you follow these instructions") == 3  # the exemplars, placeholder first
    assert Opro(ctx).propose(2).text == text and Opro(ctx).propose(3).text != text  # seeded by the step


def test_gpo_retrieves_the_current_prompt_then_the_most_similar(navigate: Repo) -> None:
    ctx = context(navigate, config={"k": 3})
    texts = ["Count the apples in the basket.", "Say True or False after following the moves.", "Follow each move."]
    ctx.rows = [row(i, 0, t, dev=0.5, accepted=True) for i, t in enumerate(texts)]
    current = "Follow the moves, then say True or False."
    ctx.rows.append(row(3, 0, current, dev=0.5, accepted=True))
    gpo = Gpo(ctx)
    retrieved = gpo.retrieve(gpo.history())
    assert [r.text for r in retrieved] == [current, texts[1], texts[2]]  # current first, then by similarity
    proposal = gpo.propose(4)
    assert proposal.edit_budget == 10 + int(40 * 0.5 * (1 + __import__("math").cos(__import__("math").pi * 4 / 6)))
    assert f"The current prompt is: {current}" in proposal.text
    assert "Count the apples" not in proposal.text
    assert f"change up to {proposal.edit_budget} words" in proposal.text


def test_trajectory_round_trips_through_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as store:
        store.start_optimization(
            "20260101-000000-abcdef", prompt="p", suite="s", method="gpo", base_commit="c" * 40,
            settings=Settings(method="gpo", steps=3).to_json(), initial="Be brief.",
        )  # fmt: skip
        rows = [row(0, 0, "Be brief.", dev=0.5, status="initial", accepted=True), row(1, 0, "x", dev=0.25)]
        rows = [replace(r, optimization_id="20260101-000000-abcdef") for r in rows]
        store.add_trajectory(rows)
        assert store.trajectory("20260101-000000-abcdef") == rows
        record = store.optimization("20260101-000000")  # a unique prefix is enough
        assert record is not None and record["status"] == "running"
        assert Settings.from_json(record["settings"]) == Settings(method="gpo", steps=3)
        store.update_optimization(record["id"], status="complete", test_before=0.5, test_after=0.75)
        assert store.optimization(record["id"])["test_after"] == 0.75  # type: ignore[index]
        with pytest.raises(ValueError, match="not updatable"):
            store.update_optimization(record["id"], prompt="other")


def test_a_suite_too_small_to_split_is_refused_with_the_minimum(navigate: Repo) -> None:
    set_limit(navigate, "navigate", 6)
    result = navigate.run("optimize", "navigate", "--suite", "navigate")
    assert result.code == 2
    assert "the suite has 6 cases: too few to split 0.2/0.2/0.6" in result.err
    assert "at least 15 cases" in result.err


def test_bad_invocations_exit_2(navigate: Repo) -> None:
    unconfigured = navigate.run("optimize", "navigate")  # no --suite: the prompt's configured pass
    assert unconfigured.code == 2 and "prompt 'navigate' has no optimize settings" in unconfigured.err
    assert "or pass --suite" in unconfigured.err
    assert "give a prompt NAME and --suite" in navigate.run("optimize", "--steps", "2").err
    missing = navigate.run("optimize", "--resume", "nope")
    assert missing.code == 2 and "no optimization 'nope'" in missing.err
    other = navigate.run("optimize", "sentiment", "--suite", "navigate")
    assert other.code == 2 and "does not use prompt 'sentiment'" in other.err
    assert navigate.run("optimize", "navigate", "--suite", "nosuch").code == 2
    assert "bad --split" in navigate.run("optimize", "navigate", "--suite", "navigate", "--split", "0.5/0.6/0.1").err
    assert "three positive fractions" in navigate.run("optimize", "navigate", "--suite", "navigate", "--split", "x").err


def _held_out(flips: tuple[int, int], n: int = 24) -> HeldOut:
    """A held-out result with ``flips`` = (pass -> fail, fail -> pass) over ``n`` cases, through the real test."""
    import numpy as np

    from promptci.compare.stats import paired

    lose, gain = flips
    base = np.array([1.0] * lose + [0.0] * gain + [0.0] * (n - lose - gain))
    head = np.array([0.0] * lose + [1.0] * gain + [0.0] * (n - lose - gain))
    result = paired(base, head, base >= 1, head >= 1, binary=True)
    return HeldOut(result, int(base.sum()), int(head.sum()))


def test_only_a_significant_held_out_gain_makes_a_branch() -> None:
    assert refusal(False, "complete", _held_out((0, 0))) == "no candidate beat the initial instruction on dev"
    assert refusal(True, "complete", _held_out((1, 1))) == "the held-out score did not rise (+0.000)"
    small = _held_out((0, 2))  # two cases gained, none lost: p = 0.5
    assert refusal(True, "complete", small) == "no significant gain (p = 0.5, α = 0.05)"
    assert refusal(True, "complete", small, allow_insignificant=True) is None
    assert refusal(True, "complete", small, min_gain=0.1, allow_insignificant=True) == (
        "the held-out gain +0.083 is below the minimum 0.1"
    )
    large = _held_out((0, 8))  # p = 0.0078
    assert large.significant and refusal(True, "budget", large) is None
    held_back = 'its dev score 0.500 does not beat the best constant answer on dev, 0.550 ("Yes")'
    assert refusal(False, "complete", large, held_back=held_back) == f"the search's choice was not taken: {held_back}"
    assert not replace(large, alpha=0.005).significant


def test_no_candidate_wins_without_beating_the_constant_answer_on_dev(navigate: Repo) -> None:
    from promptci.optimize.engine import below_constant

    ctx = context(navigate)
    constant = ctx.baseline("dev")
    assert constant is not None and 0 < constant.score <= 1 and constant.n == len(ctx.split.dev)
    initial = row(0, 0, "Answer True or False.", dev=0.2, status="initial")
    tied = row(1, 0, "Say True or False.", dev=constant.score)
    above = row(1, 1, "Track each step. Say True or False.", dev=constant.score + 0.01)
    assert "does not beat the best constant answer" in below_constant(ctx, tied, initial)
    assert below_constant(ctx, above, initial) == ""
    assert below_constant(ctx, initial, initial) == ""

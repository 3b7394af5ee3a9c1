"""GReaTer: the candidate set, the position schedule, extractors, and short runs on the real
SmolLM2 (the model's gradients are tested in tests/providers/test_differentiable.py)."""

from __future__ import annotations

import json
import random

import duckdb
import pytest

from promptci.optimize.hygiene import REASONS
from promptci.optimize.methods.greater import candidate_set, default_extractor, next_position

from ..conftest import Repo
from .conftest import set_limit


def test_candidates_are_the_union_of_intersections_over_random_groups() -> None:
    topk = [{1, 2, 3, 9}, {1, 2, 4, 9}, {1, 3, 4, 9}, {1, 2, 3, 4}]
    found = candidate_set(topk, random.Random(0), rounds=6, group=2)
    assert 1 in found  # in every case's top-k
    assert found <= {1, 2, 3, 4, 9}
    assert candidate_set(topk, random.Random(0), rounds=6, group=2) == found  # seeded
    assert candidate_set(topk, random.Random(0), rounds=3, group=10) == {1}  # a group larger than the cases


def test_the_position_moves_on_wraps_after_a_sentence_and_otherwise_grows() -> None:
    assert next_position(0, [5, 6, 7], False, 99) == (1, [5, 6, 7])
    assert next_position(2, [5, 6, 7], True, 99) == (0, [5, 6, 7])  # the instruction ends a sentence: wrap
    assert next_position(2, [5, 6, 7], False, 99) == (3, [5, 6, 7, 99])  # no sentence end yet: grow


def test_default_extractors_by_answer_kind() -> None:
    choice = default_extractor(["choice"], ["plausible", "implausible"])
    assert choice.phrase == "Therefore, the final answer (use exactly 'plausible' or 'implausible') is"
    assert default_extractor(["numeric"]).phrase.endswith("(a number) is")
    assert default_extractor(["exact"]).phrase == "Therefore, the final answer is"


@pytest.mark.slow
def test_a_short_run_moves_only_to_a_lower_train_loss_and_stores_the_trajectory(repo: Repo) -> None:
    from .conftest import add_task

    add_task(repo, "sports_understanding", 20)
    set_limit(repo, "sports_understanding", 20)
    result = repo.run(
        "optimize", "sports_understanding", "--suite", "sports_understanding", "--method", "greater",
        "--steps", "3", "--set", "greater.examples=3", "--set", "greater.reasoning_tokens=12", "--set", "topk=20",
        "--split", "0.3/0.2/0.5",
        "--dry-run", "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT step, candidate, status, loss, accepted, text FROM trajectory ORDER BY step, candidate"
    ).fetchall()
    assert rows[0][2] == "initial" and rows[0][3] is not None
    assert {r[0] for r in rows} == {0, 1, 2, 3}
    assert all(len([r for r in rows if r[0] == s]) == 3 for s in (1, 2, 3))  # the top 3 by gradient
    # Each step takes its best trial only if it beats the current instruction (whose greedy
    # reasoning, and so loss, is the same every time it is scored); otherwise nothing moves.
    current = rows[0][3]
    judged = 0  # steps whose trials were weighed: a run where hygiene refused everything checks nothing
    for step in (1, 2, 3):
        trials = [r for r in rows if r[0] == step and r[3] is not None]  # hygiene's refusals have no loss
        assert all(r[2] in REASONS for r in rows if r[0] == step and r[3] is None)
        moved = [r for r in trials if r[4]]
        if not trials:
            assert not moved
            continue
        judged += 1
        best = min(r[3] for r in trials)
        if moved:
            assert moved == [next(r for r in trials if r[3] == best)] and best < current
            current = best
        else:
            assert best >= current
    assert judged >= 1, "no step had a trial to weigh"
    (status, best) = con.execute("SELECT status, best FROM optimizations").fetchone()  # type: ignore[misc]
    assert status == "complete" and best in {r[5] for r in rows}


@pytest.mark.slow
def test_catalyst_alternates_token_steps_with_proposals_used_as_restarts(repo: Repo) -> None:
    from .conftest import add_task

    add_task(repo, "sports_understanding", 20)
    result = repo.run(
        "optimize", "sports_understanding", "--suite", "sports_understanding", "--method", "catalyst",
        "--steps", "2", "--set", "catalyst.block=2", "--candidates", "2", "--set", "catalyst.examples=2",
        "--set", "catalyst.reasoning_tokens=8", "--set", "catalyst.topk=20", "--split", "0.3/0.2/0.5", "--dry-run",
    )  # fmt: skip
    assert result.code == 0, result.err
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT step, status, loss, edit_distance, accepted FROM trajectory ORDER BY step, candidate"
    ).fetchall()
    token_step = [r for r in rows if r[0] == 1]
    proposal_step = [r for r in rows if r[0] == 2]
    assert len(token_step) == 3 and all(1 <= r[3] <= 2 for r in token_step)  # one token: one word, or two merged
    assert len(proposal_step) == 2  # one row per optimizer sample
    for _, status, loss, _, accepted in proposal_step:
        assert status in ("scored", "unparsable", "duplicate", "too-long", *REASONS)  # refused by hygiene
        assert (loss is not None) == (status == "scored")
        assert not accepted or status == "scored"


@pytest.mark.slow
def test_a_budget_spent_before_the_dev_re_ranking_keeps_the_initial_instruction(repo: Repo) -> None:
    """The token search overspends a small call budget within a step; the re-ranking on dev then
    has nothing left, and the initial instruction stays instead of the run failing."""
    from .conftest import add_task

    add_task(repo, "sports_understanding", 20)
    result = repo.run(
        "optimize", "sports_understanding", "--suite", "sports_understanding", "--method", "greater",
        "--steps", "5", "--budget", "calls=20", "--set", "greater.examples=3", "--set", "greater.reasoning_tokens=8",
        "--set", "greater.topk=20", "--split", "0.3/0.2/0.5", "--dry-run", "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["status"] == "budget" and out["best"] == out["initial"]
    assert out["reason"] == "the budget ran out before any candidate beat the initial instruction on dev"

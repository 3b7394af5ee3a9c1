"""GReaTer: the candidate set, the position schedule, extractors, and, on the real SmolLM2,
the one-hot gradient against finite differences, gold-token alignment and a short run."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import duckdb
import pytest

from promptci.optimize.greater import (
    MARK,
    Example,
    GreaterModel,
    candidate_set,
    default_extractor,
    next_position,
)

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


def load(**options: object) -> GreaterModel:
    from promptci.providers import models
    from promptci.providers.local import TransformersProvider

    provider = TransformersProvider(models.resolve(None, Path(".")), device="cpu", dtype="float32")
    return GreaterModel(provider, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lm() -> GreaterModel:
    return load()


def example(lm: GreaterModel, sentence: str, gold: str) -> tuple[Example, list[int]]:
    messages = [
        {"role": "system", "content": MARK},
        {"role": "user", "content": f"Is the following sentence plausible?\nSentence: {sentence}\nAnswer:"},
    ]
    before, after = lm.layout(messages)
    prompt = lm.encode("Answer with one word, plausible or implausible.")
    ex = Example(None, before, after, lm.encode(" Therefore, the final answer is"), lm.encode(gold), [])  # type: ignore[arg-type]
    ex.reasoning = lm.reason([ex], prompt, 12)[0]
    return ex, prompt


@pytest.mark.slow
def test_the_one_hot_gradient_matches_finite_differences(lm: GreaterModel) -> None:
    import torch

    ex, prompt = example(lm, "Joao Moutinho caught the screen pass in the NFC championship.", " implausible")
    for i in (1, 4):
        candidates = sorted(lm.topk([ex], prompt, i, 8)[0] | {prompt[i]})
        grad = lm.gradient([ex], prompt, i, candidates)
        current = candidates.index(prompt[i])
        base = torch.zeros(len(candidates), dtype=torch.float64)
        base[current] = 1.0
        with torch.no_grad():
            eps = 1e-2  # central differences: the error is O(eps^2), float32 noise stays small
            predicted, measured = [], []
            for j in range(len(candidates)):
                if j == current:
                    continue
                direction = torch.zeros(len(candidates), dtype=torch.float64)
                direction[current], direction[j] = -1.0, 1.0
                plus = float(lm.soft_loss([ex], prompt, i, candidates, (base + eps * direction).float()))
                minus = float(lm.soft_loss([ex], prompt, i, candidates, (base - eps * direction).float()))
                measured.append((plus - minus) / (2 * eps))
                predicted.append(float(grad[j] - grad[current]))
        for p, m in zip(predicted, measured, strict=True):
            assert (p > 0) == (m > 0), (predicted, measured)
            assert abs(p - m) <= 0.03 * abs(m) + 0.01, (predicted, measured)
        rank_p = sorted(range(len(predicted)), key=predicted.__getitem__)
        rank_m = sorted(range(len(measured)), key=measured.__getitem__)
        assert rank_p[0] == rank_m[0] and rank_p[-1] == rank_m[-1]  # the same best and worst candidate
        assert _spearman(predicted, measured) > 0.95


SENTENCES = [
    ("Kevin Durant hit a three pointer.", " plausible"),
    ("Joao Moutinho caught the screen pass in the NFC championship.", " implausible"),
    ("Sergio Busquets was flagged for holding in the Stanley Cup final last night.", " implausible"),
]


@pytest.mark.slow
def test_batched_passes_equal_one_example_at_a_time(lm: GreaterModel) -> None:
    """Right-padded batches of unequal lengths give each example's own top-k, losses and
    gradient; the shared one-hot's gradient is the sum of the examples' gradients."""
    import torch

    pairs = [example(lm, sentence, gold) for sentence, gold in SENTENCES]
    examples, prompt = [ex for ex, _ in pairs], pairs[0][1]
    assert len({len(lm.sequence(ex, prompt)[0]) for ex in examples}) > 1  # padding is exercised
    i = 3
    alone = [lm.topk([ex], prompt, i, 20)[0] for ex in examples]
    assert lm.topk(examples, prompt, i, 20) == alone
    candidates = sorted(set.union(*alone) | {prompt[i]})
    summed = sum(lm.gradient([ex], prompt, i, candidates) for ex in examples)
    for batch in (2, 8):  # an uneven split into batches, and one batch
        lm.batch = batch
        try:
            torch.testing.assert_close(lm.gradient(examples, prompt, i, candidates), summed, atol=2e-3, rtol=1e-3)
            batched = lm.losses(examples, prompt)
        finally:
            lm.batch = 8
        for (loss, mistake, nll), ex in zip(batched, examples, strict=True):
            one = lm.loss(ex, prompt)
            assert mistake == one[1]
            assert loss == pytest.approx(one[0], rel=1e-4) and nll == pytest.approx(one[2], rel=1e-4)


@pytest.mark.slow
def test_gradient_checkpointing_keeps_fewer_activations_and_gives_the_same_gradient(lm: GreaterModel) -> None:
    import torch

    ex, prompt = example(lm, "Kevin Durant hit a three pointer.", " plausible")
    candidates = sorted(lm.topk([ex], prompt, 2, 10)[0] | {prompt[2]})

    def gradient(model: GreaterModel) -> tuple[torch.Tensor, int]:
        kept = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal kept
            kept += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            grad = model.gradient([ex], prompt, 2, candidates)
        return grad, kept

    plain, plain_bytes = gradient(lm)
    lean = load(checkpointing=True)
    try:
        grad, lean_bytes = gradient(lean)
        assert not lean.model.training  # back in eval mode after the pass
    finally:
        lean.model.activation_checkpointing_disable()
    assert lean_bytes < 0.5 * plain_bytes, (lean_bytes, plain_bytes)  # activations are recomputed, not kept
    torch.testing.assert_close(grad, plain, atol=1e-4, rtol=1e-4)


def _spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[int]:
        order = sorted(range(len(x)), key=x.__getitem__)
        out = [0] * len(x)
        for r, k in enumerate(order):
            out[k] = r
        return out

    ra, rb, n = ranks(a), ranks(b), len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb, strict=True)) / (n * (n * n - 1))


@pytest.mark.slow
def test_gold_tokens_close_the_sequence_and_mistakes_are_argmax_misses(lm: GreaterModel) -> None:
    ex, prompt = example(lm, "Kevin Durant hit a three pointer.", " plausible")
    ids, start, answer_at = lm.sequence(ex, prompt)
    assert ids[start : start + len(prompt)] == prompt
    assert ids[answer_at:] == ex.gold and lm.decode(ids[answer_at:]) == " plausible"
    # Teacher-forced: the answer the model itself predicts is no mistake; another one is.
    import torch

    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids[:answer_at]])).logits[0, -1]
    own = [int(logits.argmax())]
    ex.gold = own
    assert lm.loss(ex, prompt)[1] is False
    ex.gold = [own[0] + 1]
    assert lm.loss(ex, prompt)[1] is True


@pytest.mark.slow
def test_a_short_run_lowers_the_train_loss_and_stores_the_trajectory(repo: Repo) -> None:
    from .conftest import add_task

    add_task(repo, "sports_understanding", 20)
    set_limit(repo, "sports_understanding", 20)
    result = repo.run(
        "optimize", "sports_understanding", "--suite", "sports_understanding", "--method", "greater",
        "--steps", "3", "--examples", "3", "--reasoning-tokens", "12", "--topk", "20", "--split", "0.3/0.2/0.5",
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
    path = [r[3] for r in rows if r[4]]  # the loss of every instruction moved to
    assert all(b < a for a, b in itertools.pairwise(path))  # each move lowers the train loss
    assert min(r[3] for r in rows) <= rows[0][3]
    (status, best) = con.execute("SELECT status, best FROM optimizations").fetchone()  # type: ignore[misc]
    assert status == "complete" and best in {r[5] for r in rows}


@pytest.mark.slow
def test_catalyst_alternates_token_steps_with_proposals_used_as_restarts(repo: Repo) -> None:
    from .conftest import add_task

    add_task(repo, "sports_understanding", 20)
    result = repo.run(
        "optimize", "sports_understanding", "--suite", "sports_understanding", "--method", "catalyst",
        "--steps", "2", "--catalyst-block", "2", "--candidates", "2", "--examples", "2", "--reasoning-tokens", "8",
        "--topk", "20", "--split", "0.3/0.2/0.5", "--dry-run",
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
        assert status in ("scored", "unparsable", "duplicate", "too-long")
        assert (loss is not None) == (status == "scored")
        assert not accepted or status == "scored"

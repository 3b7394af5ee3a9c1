"""Log-likelihoods from the local model: what choice scoring by likelihood and the hygiene
screen's fluency test read."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptci.optimize.hygiene import Hygiene, Reference, verdict
from promptci.providers import models
from promptci.providers.local import TransformersProvider

pytestmark = pytest.mark.slow

NAV = "You track positions on a grid. Answer with one word, True or False."
SPORTS = "You are a sports expert. Answer with one word, plausible or implausible."
# GReaTer's one-token swaps on the shipped tasks: those a reader would keep, and those not.
FLUENT = [
    (NAV, "You track positions for a grid. Answer with one word, True or False."),
    (NAV, "You track positions on a graph. Answer with one word, True or False."),
    (NAV, "You track data on a grid. Answer with one word, True or False."),
    (SPORTS, "You are a time expert. Answer with one word, plausible or implausible."),
]
BROKEN = [
    (SPORTS, "It are a sports expert. Answer with one word, plausible or implausible."),
    (SPORTS, "You would a sports expert. Answer with one word, plausible or implausible."),
    (SPORTS, "You are An sports expert. Answer with one word, plausible or implausible."),
    (SPORTS, "You are a time el. Answer with one word, plausible or implausible."),
    (SPORTS, "You are a time expert chat Answer with one word, plausible or implausible."),
    (NAV, "You track positions on iOS grid. Answer with one word, True or False."),
]


@pytest.fixture(scope="module")
def provider() -> TransformersProvider:
    return TransformersProvider(models.resolve(None, Path(".")), device="cpu", dtype="float32", batch_size=4)


def test_loglik_matches_one_sequence_at_a_time_and_counts_tokens(provider: TransformersProvider) -> None:
    pairs = [("The capital of France is", " Paris"), ("The capital of France is", " a banana"), ("", NAV)]
    batched = provider.loglik(pairs)
    alone = [provider.loglik([p])[0] for p in pairs]
    for (a, n), (b, m) in zip(batched, alone, strict=True):
        assert n == m and a == pytest.approx(b, abs=1e-3)
    assert batched[0][1] == len(provider.encode(" Paris"))
    assert batched[0][0] > batched[1][0]  # Paris is likelier than a banana
    assert all(total < 0 for total, _ in batched)


def test_fluency_refuses_broken_token_swaps_and_keeps_fluent_ones(provider: TransformersProvider) -> None:
    def fluency(text: str) -> float:
        total, n = provider.loglik([("", text)])[0]
        return total / n

    def check(parent: str, text: str) -> str | None:
        return verdict(text, Reference(parent=parent), Hygiene(), fluency)

    assert [check(p, t) for p, t in FLUENT] == [None] * len(FLUENT)
    assert [check(p, t) for p, t in BROKEN] == ["unreadable"] * len(BROKEN)

"""The shared-prefix cache: how rows are batched, a store that stays within its bytes, and, on
the real SmolLM2, the same greedy tokens and likelihoods with the cache as without it."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.providers import models
from promptci.providers.base import GenParams
from promptci.providers.local import TransformersProvider
from promptci.providers.prefix import (
    CLUSTER_MARGIN,
    Layers,
    PrefixStore,
    common_prefix,
    nbytes,
    plan_batches,
    shared_prefix,
)

from ..conftest import REPO_ROOT, Repo, git

token_rows = st.lists(st.lists(st.integers(0, 3), max_size=12), min_size=1, max_size=40)


@given(token_rows, st.integers(1, 9))
def test_every_row_is_batched_once_within_the_batch_size(rows: list[list[int]], size: int) -> None:
    batches = plan_batches(rows, size)
    assert sorted(i for b in batches for i in b) == list(range(len(rows)))
    assert all(0 < len(b) <= size for b in batches)


@given(token_rows)
def test_the_shared_prefix_is_what_every_row_starts_with(rows: list[list[int]]) -> None:
    n = shared_prefix(rows)
    assert all(r[:n] == rows[0][:n] for r in rows)
    assert n == min(len(r) for r in rows) or len({tuple(r[n : n + 1]) for r in rows}) > 1


def test_rows_of_one_instruction_share_a_batch_and_go_by_length() -> None:
    rnd = random.Random(0)
    header = [1, 2, 3]
    candidates = [[100 + c] * (CLUSTER_MARGIN + 4) for c in range(3)]  # three instructions after the header
    rows, owner = [], []
    for _ in range(30):  # their dev cases, interleaved as an optimizer sends them
        c = rnd.randrange(3)
        rows.append(header + candidates[c] + [rnd.randrange(50, 60) for _ in range(rnd.randrange(1, 9))])
        owner.append(c)
    batches = plan_batches(rows, 4)
    mixed = [b for b in batches if len({owner[i] for i in b}) > 1]
    assert len(mixed) <= 1  # only the rest of each instruction's rows, packed into one batch
    for b in batches:
        if b not in mixed:
            assert [len(rows[i]) for i in b] == sorted(len(rows[i]) for i in b)
    # Rows that share nothing past the header are batched by length.
    loose = [header + [rnd.randrange(50, 99) for _ in range(rnd.randrange(1, 30))] for _ in range(12)]
    lengths = [len(loose[i]) for b in plan_batches(loose, 4) for i in b]
    assert lengths == sorted(lengths)


class Fake:
    """An ``extend`` that makes one-layer states whose values are the token ids, and counts tokens."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (start, length)

    def __call__(self, base: Layers | None, ids: Sequence[int], start: int) -> Layers:
        self.calls.append((start, len(ids)))
        new = torch.tensor(list(ids[start:]), dtype=torch.float32).view(1, 1, -1, 1)
        if base is None:
            return [(new, new.clone())]
        assert base[0][0].shape[2] == start
        return [(torch.cat([base[0][0], new], dim=2), torch.cat([base[0][1], new], dim=2))]


def test_the_store_reuses_the_longest_match_and_computes_only_the_rest() -> None:
    fake = Fake()
    store = PrefixStore(fake, limit=10_000)
    first = store.states([1, 2, 3, 4, 5, 6])
    assert fake.calls == [(0, 6)] and first[0][0].flatten().tolist() == [1, 2, 3, 4, 5, 6]
    assert store.states([1, 2, 3, 4, 5, 6]) is first and fake.calls == [(0, 6)]  # a hit runs nothing
    longer = store.states([1, 2, 3, 4, 5, 6, 7, 8])
    assert fake.calls[-1] == (6, 8) and longer[0][0].flatten().tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert len(store) == 1  # the longer prefix replaced the one it contains
    other = store.states([1, 2, 3, 9])  # shares three tokens: those are cut from the stored states
    assert fake.calls[-1] == (3, 4) and other[0][0].flatten().tolist() == [1, 2, 3, 9]
    assert len(store) == 2 and store.bytes == nbytes(longer) + nbytes(other)
    assert store.states([7, 7])[0][0].flatten().tolist() == [7, 7] and fake.calls[-1] == (0, 2)
    calls = len(fake.calls)
    inside = store.states([1, 2, 3, 4])  # inside a stored prefix: cut from it, nothing run
    assert inside[0][0].flatten().tolist() == [1, 2, 3, 4] and len(fake.calls) == calls


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=30), min_size=1, max_size=60), st.integers(0, 600))
def test_the_store_stays_within_its_limit_and_returns_the_right_states(rows: list[list[int]], limit: int) -> None:
    store = PrefixStore(Fake(), limit=limit)
    for ids in rows:
        states = store.states(ids)
        assert states[0][0].flatten().tolist() == ids
        assert store.bytes <= limit
        assert store.bytes == sum(nbytes(v) for v in store._entries.values())


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert shared_prefix([]) == 0 and shared_prefix([[1, 2], [1, 2, 3], [1]]) == 1


@pytest.fixture(scope="module")
def pair() -> tuple[TransformersProvider, TransformersProvider]:
    source = models.resolve(None, Path("."))
    on = TransformersProvider(source, device="cpu", dtype="float32", batch_size=4, prefix_cache_mb=8)
    off = TransformersProvider(source, device="cpu", dtype="float32", batch_size=4, prefix_cache_mb=None)
    return on, off


SYSTEM = "You are a careful assistant. Read the review, then answer with one word: positive or negative."
REVIEWS = [
    "Works perfectly, I use it every day.",
    "Broke after two days and support never answered.",
    "Great value.",
    "The battery dies within an hour. Waste of money, really, a terrible experience overall.",
    "Exactly as described and arrived early.",
    "Cheap plastic.",
]


@pytest.mark.slow
def test_greedy_tokens_are_the_same_with_the_cache_and_without(
    pair: tuple[TransformersProvider, TransformersProvider],
) -> None:
    on, off = pair
    shared = [
        on.encode(on.chat_text([{"role": "system", "content": SYSTEM}, {"role": "user", "content": r}]))
        for r in REVIEWS
    ]
    alone = [on.encode(r) for r in REVIEWS]  # no chat template: rows that share no prefix
    params = GenParams(10, 0.0)
    for rows in (shared, alone, shared[:3] + alone[:3]):
        assert on.generate_ids(rows, params) == off.generate_ids(rows, params)
    assert on.prefixes is not None and len(on.prefixes) == 1 and on.prefixes.computed < len(shared[0])
    before = on.prefixes.computed
    assert on.generate_ids(shared[::-1], params) == off.generate_ids(shared[::-1], params)
    assert on.prefixes.computed == before  # the next batch of the same prompt starts from the store


@pytest.mark.slow
def test_choice_likelihoods_agree_with_the_cache_and_without(
    pair: tuple[TransformersProvider, TransformersProvider],
) -> None:
    on, off = pair
    contexts = [on.chat_text([{"role": "system", "content": SYSTEM}, {"role": "user", "content": r}]) for r in REVIEWS]
    pairs = [(c, choice) for c in contexts for choice in ("positive", "negative", " neutral, then more words")]
    pairs += [("", "positive"), ("", "a"), (REVIEWS[0], ""), (REVIEWS[1], " and")]  # no context, no continuation
    with_cache, without = on.loglik(pairs), off.loglik(pairs)
    for (a, n), (b, m) in zip(with_cache, without, strict=True):
        assert n == m and a == pytest.approx(b, abs=1e-4)


@pytest.mark.slow
def test_the_store_stays_bounded_over_a_long_run(pair: tuple[TransformersProvider, TransformersProvider]) -> None:
    on, _ = pair
    assert on.prefixes is not None
    params = GenParams(2, 0.0)
    for k in range(12):  # twelve different instructions, each one ~0.6 MB of states at this length
        system = f"Instruction {k}: " + " ".join(["Answer with one word, positive or negative."] * (k + 1))
        rows = [
            on.encode(on.chat_text([{"role": "system", "content": system}, {"role": "user", "content": r}]))
            for r in REVIEWS[:2]
        ]
        on.generate_ids(rows, params)
        assert on.prefixes.bytes <= on.prefixes.limit == 8 * 2**20
    assert 1 <= len(on.prefixes) < 12


def shipped_project(path: Path) -> Repo:
    path.mkdir()
    for name in ("prompts", "evals", "pipelines"):
        shutil.copytree(REPO_ROOT / name, path / name)
    shutil.copy(REPO_ROOT / "promptci.yaml", path / "promptci.yaml")
    (path / ".gitignore").write_text(".promptci/\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "the shipped suites")
    return Repo(path, None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_every_shipped_suite_answers_the_same_with_the_cache_and_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = shipped_project(tmp_path / "repo")
    repo.capsys = capsys
    config = repo.path / "promptci.yaml"
    outputs = []
    for switch in ("true", "false"):
        config.write_text(
            config.read_text().replace(
                "  max_tokens: 16\n", f"  max_tokens: 16\n  params: {{prefix_cache: {switch}}}\n"
            )
        )
        result = repo.run("eval", "--all", "--head", "6", "--no-cache", "-q")
        assert result.code in (0, 1), result.err
        finals = repo.sql("SELECT suite, case_id, output FROM results ORDER BY ALL")
        steps = repo.sql("SELECT case_id, step_id, output FROM steps ORDER BY ALL")
        outputs.append((finals, steps))
        config.write_text((REPO_ROOT / "promptci.yaml").read_text())
        (repo.path / ".promptci/results.duckdb").unlink()
    (finals, steps), (finals_off, steps_off) = outputs
    assert len({suite for suite, _, _ in finals}) == len(list((REPO_ROOT / "evals").glob("*.yaml")))
    assert len(finals) >= 8 * 6 and len(steps) >= 2 * 2 * 6
    assert finals == finals_off and steps == steps_off

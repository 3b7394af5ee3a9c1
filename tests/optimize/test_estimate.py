"""`optimize --estimate`: the split, the calls a scoring and the search may make, and the price,
before anything runs; then a real run on the embedded model makes no more calls than that."""

from __future__ import annotations

import json

import pytest

from promptci.errors import ExitCode

from ..conftest import Repo

WORDS = ["great", "awful", "fine", "broken", "lovely", "useless", "perfect", "cheap"]


@pytest.fixture
def forty(repo: Repo) -> Repo:
    rows = []
    for i in range(40):
        word = WORDS[i % 8]
        label = "positive" if i % 2 == 0 else "negative"
        rows.append(json.dumps({"review": f"It is {word}, item {i}.", "sentiment": label}))
    repo.write("evals/forty.jsonl", "\n".join(rows) + "\n")
    repo.write(
        "evals/forty.yaml",
        "prompts: [sentiment]\nscorers: [{type: choice, choices: [positive, negative]}]\n"
        "dataset: {path: forty.jsonl, vars: {review: review}, expected: sentiment}\n",
    )
    repo.commit("forty reviews")
    return repo


def estimate(repo: Repo, *args: str) -> dict[str, object]:
    done = repo.run("optimize", "sentiment", "--suite", "forty", *args, "--estimate", "--format", "json")
    assert done.code == ExitCode.OK, done.err
    found: dict[str, object] = json.loads(done.out)
    return found


def test_the_estimate_counts_the_split_the_search_and_the_test(forty: Repo) -> None:
    found = estimate(forty, "--method", "gpo", "--steps", "2", "--candidates", "4")
    assert found["cases"] == {"train": 8, "dev": 8, "test": 24}
    assert found["scoring_calls"] == 8 and found["search_calls"] == 2 * 4 * 8 and found["test_calls"] == 48
    assert found["calls"] == 64 + 48 and found["optimizer_calls"] == 8
    assert found["cost_max"] == 0.0 and found["bounded_by"] == "2 step(s) × 4 candidates"
    assert found["prompt_tokens"] > 0 and found["tokens_counted_by"] == "the model's tokenizer and chat template"
    capped = estimate(forty, "--method", "gpo", "--budget", "calls=30")
    assert capped["search_calls"] == 30 and capped["bounded_by"] == "--budget calls=30"
    assert capped["calls"] == 30 + 48 and capped["optimizer_calls"] == 0
    too_many = forty.run("optimize", "sentiment", "--suite", "forty", "--method", "gpo", "--steps", "2",
                         "--candidates", "4", "--max-calls", "100")  # fmt: skip
    assert too_many.code == ExitCode.USAGE and "120 new model calls, over --max-calls 100" in too_many.err
    unpriced = forty.run("optimize", "sentiment", "--suite", "forty", "--task-model", "openai:house-model-7",
                         "--max-cost", "1")  # fmt: skip
    assert unpriced.code == ExitCode.USAGE and "no price is known" in unpriced.err
    assert not (forty.path / ".promptci/results.duckdb").exists()  # an estimate runs and stores nothing


@pytest.mark.slow
def test_a_real_run_stays_within_its_estimate(forty: Repo) -> None:
    args = ("--method", "demos", "--steps", "2", "--candidates", "3")
    found = estimate(forty, *args)
    done = forty.run("optimize", "sentiment", "--suite", "forty", *args, "--dry-run", "--format", "json")
    assert done.code == ExitCode.OK, done.err
    assert f"estimate: at most {found['calls']:,} task-model calls" in done.err  # said before it ran
    used = json.loads(done.out)["calls"]
    print(
        f"demos, 2 steps x 3 candidates: estimated at most {found['calls']} + {found['optimizer_calls']}, used {used}"
    )
    assert 0 < used <= int(found["calls"]) + int(found["optimizer_calls"])  # type: ignore[call-overload]

"""The demos method: sets drawn from train only, balanced, written into the prompt as literal messages."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import duckdb
import pytest
import yaml

from promptci.errors import InputError
from promptci.optimize.methods.demos import Demos
from promptci.optimize.split import split_cases

from ..conftest import Repo
from .test_loop import context


def demos(repo: Repo, **options: object) -> Demos:
    ctx = context(repo, method="demos", split=(0.4, 0.2, 0.4), config={"bootstrapped": False, **options})
    return Demos(ctx)


def test_no_dev_or_test_case_ever_becomes_a_demonstration(navigate: Repo) -> None:
    method = demos(navigate, k=4)
    split = method.ctx.split
    train = {c.id for c in split.train}
    held = {c.id for c in (*split.dev, *split.test)}
    rng = random.Random(0)
    seen: set[str] = set()
    for _ in range(200):
        drawn = method.draw(rng)
        swapped = method.swap(drawn, rng)
        for demo in (*drawn, *swapped):
            assert demo.case in train and demo.case not in held
            seen.add(demo.case)
    assert len(seen) > len(train) / 2  # the search reaches across the train split


def test_sets_are_balanced_across_answers_and_shuffled(navigate: Repo) -> None:
    method = demos(navigate, k=4)
    rng = random.Random(1)
    orders = set()
    for _ in range(50):
        drawn = method.draw(rng)
        assert Counter(d.label for d in drawn) == {"true": 2, "false": 2}
        assert len({d.case for d in drawn}) == 4
        orders.add(tuple(d.label for d in drawn))
    assert len(orders) > 2  # not always the same label order (recency bias)
    unbalanced = demos(navigate, k=4, balanced=False)
    assert {d.label for d in unbalanced.pool} == {""}


def test_the_prompt_holds_the_demonstrations_as_literal_messages(navigate: Repo) -> None:
    method = demos(navigate, k=2)
    drawn = method.draw(random.Random(2))
    text = json.dumps([{"case": d.case, "user": d.user, "assistant": d.assistant} for d in drawn])
    source = method.compose(text)
    messages = yaml.safe_load(source)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == drawn[0].user and messages[2]["content"] == drawn[0].assistant
    prompt = method.ctx.evaluator.variant(text)
    case = method.ctx.split.test[0]
    rendered = prompt.render(**case.vars)
    assert rendered[1]["content"] == drawn[0].user  # rendered as written, not as a template
    assert method.compose("[]") == method.ctx.evaluator.task.prompt.source
    braces = json.dumps([{"case": drawn[0].case, "user": "What is {{ x }}?", "assistant": "{% raw %}"}])
    assert method.ctx.evaluator.variant(braces).render(**case.vars)[1]["content"] == "What is {{ x }}?"


def test_k_beyond_the_train_split_is_refused_with_the_counts(navigate: Repo) -> None:
    n_train = len(split_cases(context(navigate).evaluator.task.cases, (0.4, 0.2, 0.4), 0).train)
    with pytest.raises(
        InputError, match=rf"demos.k = 30 needs 30 train cases, and the train split has {n_train} of 40"
    ):
        demos(navigate, k=30)


@pytest.mark.slow
def test_demos_end_to_end_on_smollm2(navigate: Repo) -> None:
    result = navigate.run(
        "optimize", "navigate", "--suite", "navigate", "--method", "demos", "--steps", "2", "--candidates", "2",
        "--split", "0.4/0.2/0.4", "--set", "demos.k=2", "--allow-insignificant",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "best constant answer" in result.out and "tokens per call" in result.out
    db = duckdb.connect(str(navigate.path / ".promptci/results.duckdb"), read_only=True)
    (opt_id,) = db.execute("SELECT id FROM optimizations").fetchone()  # type: ignore[misc]
    texts = [t for (t,) in db.execute("SELECT text FROM trajectory WHERE optimization_id = ?", [opt_id]).fetchall()]
    ctx = context(navigate, split=(0.4, 0.2, 0.4))
    train = {c.id for c in ctx.split.train}
    used = {d["case"] for t in texts if t.startswith("[") for d in json.loads(t)}
    assert any(t.startswith('{"select": "similar"') for t in texts)  # choosing per case, beside the fixed sets
    assert used and used <= train
    assert len(texts) == 1 + 2 * 2
    db.close()
    resumed = navigate.run("optimize", "--resume", opt_id, "--steps", "3", "--dry-run")
    assert resumed.code == 0, resumed.err
    db = duckdb.connect(str(navigate.path / ".promptci/results.duckdb"), read_only=True)
    again = db.execute("SELECT count(*) FROM trajectory WHERE optimization_id = ?", [opt_id]).fetchone()
    assert again == (1 + 3 * 2,)


@pytest.mark.slow
def test_a_chain_runs_its_links_in_turn_under_one_budget(navigate: Repo) -> None:
    """gpo+demos in one command: demos starts from GPO's choice, both share the budget, and the PR
    body holds one held-out test and each link's dev contribution."""
    out = navigate.path / "pr.md"
    result = navigate.run(
        "optimize", "navigate", "--suite", "navigate", "--method", "gpo+demos", "--steps", "1", "--candidates", "2",
        "--split", "0.4/0.2/0.4", "--set", "demos.k=2", "--budget", "calls=90", "--allow-insignificant",
        "--dry-run", "-o", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    body = out.read_text()
    assert "with GPO+DEMOS" in body and body.count("**Held-out test:") == 1
    assert "### Each link on dev" in body and "| gpo |" in body and "| demos |" in body
    db = duckdb.connect(str(navigate.path / ".promptci/results.duckdb"), read_only=True)
    runs = db.execute("SELECT method, calls, base_commit FROM optimizations ORDER BY started_at").fetchall()
    db.close()
    assert [m for m, _, _ in runs] == ["gpo", "demos"]
    assert sum(c for _, c, _ in runs) <= 90  # one budget for the chain
    assert "link 1 of 2: gpo" in result.err and "link 2 of 2: demos" in result.err
    bad = navigate.run("optimize", "navigate", "--suite", "navigate", "--method", "gpo+demos", "--set", "k=2")
    assert bad.code == 2 and "in a chain, write METHOD.KNOB=VALUE" in bad.err
    unknown = navigate.run("optimize", "navigate", "--suite", "navigate", "--method", "gpo+nope")
    assert unknown.code == 2 and "unknown method 'nope'" in unknown.err


@pytest.mark.slow
def test_auto_probes_both_levers_then_runs_what_moves_the_model(navigate: Repo) -> None:
    """On SmolLM2, demonstrations change navigate's answers; the probe says how many, within a tenth of
    the budget, and the PR body carries its table."""
    out = navigate.path / "pr.md"
    result = navigate.run(
        "optimize", "navigate", "--suite", "navigate", "--method", "auto", "--steps", "1", "--candidates", "2",
        "--split", "0.4/0.2/0.4", "--budget", "calls=150", "--allow-insignificant", "--dry-run", "-o", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    line = next(x for x in result.err.splitlines() if "auto: instruction variants changed" in x)
    calls = int(re.search(r"\((\d+) calls\)", line).group(1))  # type: ignore[union-attr]
    assert calls <= 15  # a tenth of the budget
    body = out.read_text()
    assert "### Why this method (`--method auto`)" in body and "| demonstrations |" in body
    assert "running demos" in line or "running gpo+demos" in line, line
    bad = navigate.run("optimize", "navigate", "--suite", "navigate", "--method", "auto", "--set", "demos.k=2")
    assert bad.code == 2 and "auto chooses its own" in bad.err
    small = navigate.run("optimize", "navigate", "--suite", "navigate", "--method", "auto", "--budget", "calls=50")
    assert small.code == 2 and "more than 10% of a budget of 50 calls" in small.err and "at least 100" in small.err

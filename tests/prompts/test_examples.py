"""Demonstrations chosen per case: BM25 picks the examples nearest the question, never the case
itself; the pool's bytes are in the content hash and in the bundle, which selects the same ones
without git; on SmolLM2 per-case selection beats every fixed set, significantly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import promptci
from promptci.errors import ExitCode
from promptci.optimize.output import paired_cases
from promptci.prompts.examples import Index, choose

from ..conftest import Repo

MONTHS = "January February March April May June July August September October November December".split()
WORDS = "apple river stone cloud tiger piano lemon forest candle rocket garden silver orange winter".split()
NAMES = "ada alan grace linus barbara ken dennis margaret john tim".split()
KINDS = ("caps", "date", "sum", "mail", "first", "count")


def request(kind: str, rng: random.Random) -> tuple[str, str]:
    """Six kinds of request, each wanting its answer in its own form."""
    if kind == "caps":
        words = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
        return f"Make loud: {words}", words.upper()
    if kind == "date":
        year, month, day = rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)
        return f"Date: {MONTHS[month - 1]} {day}, {year}", f"{year}-{month:02d}-{day:02d}"
    if kind == "sum":
        a, b = rng.randint(10, 60), rng.randint(10, 39)
        return f"Add: {a} and {b}", str(a + b)
    if kind == "mail":
        address = f"{rng.choice(NAMES)}@{rng.choice(['acme.com', 'mail.org'])}"
        return f"Contact line: reach {rng.choice(NAMES).title()} via {address} today", address
    words = [rng.choice(WORDS) for _ in range(3 if kind == "first" else rng.randint(2, 6))]
    if kind == "first":
        return f"First word of: {' '.join(words)}", words[0]
    return f"Count the words: {' '.join(words)}", str(len(words))


def requests(per_kind: int, seed: int, skip: dict[str, str] | None = None) -> dict[str, str]:
    rng, found = random.Random(seed), {}
    for kind in KINDS:
        made = 0
        while made < per_kind:
            question, answer = request(kind, rng)
            if question not in found and question not in (skip or {}):
                found[question] = answer
                made += 1
    return found


POOL = requests(10, 1)
CASES = requests(8, 2, skip=POOL)


def prompt(name: str, pool: str, select: str) -> str:
    return (
        f"name: {name}\nmessages:\n"
        "  - {role: system, content: Do what the request asks. Reply with the result alone.}\n"
        "  - {role: user, content: '{{ request }}'}\n"
        "variables: {request: string}\n"
        f"examples: {{from: {pool}, k: 3, select: {select}}}\n"
    )


def jsonl(rows: dict[str, str]) -> str:
    return "".join(json.dumps({"request": q, "answer": a}) + "\n" for q, a in rows.items())


@pytest.fixture
def tasks(repo: Repo) -> Repo:
    repo.write("data/pool.jsonl", jsonl(POOL))  # ten of each kind, kind after kind
    mixed = dict(sorted(POOL.items(), key=lambda qa: list(POOL).index(qa[0]) % 10))  # kinds in turn
    repo.write("data/mixed.jsonl", jsonl(mixed))
    repo.write("data/cases.jsonl", jsonl(CASES))
    repo.write("prompts/similar.yaml", prompt("similar", "data/pool.jsonl", "similar"))
    repo.write("prompts/grouped.yaml", prompt("grouped", "data/pool.jsonl", "first"))
    repo.write("prompts/mixed.yaml", prompt("mixed", "data/mixed.jsonl", "first"))
    repo.write(
        "evals/requests.yaml",
        "prompts: [similar, grouped, mixed]\n"
        "dataset: {path: ../data/cases.jsonl, vars: {request: request}, expected: answer}\n"
        "scorers: [{type: exact}]\n",
    )
    (repo.path / "evals/sentiment.yaml").unlink()
    repo.commit("a pool of examples and three ways to choose from it")
    return repo


def test_bm25_picks_the_nearest_and_never_the_case_itself() -> None:
    questions = list(POOL)
    index = Index.of(questions)
    query = "Date: June 9, 2011"
    picked = choose(questions, index, query, 3, "similar")
    assert all(questions[i].startswith("Date:") for i in picked)
    assert choose(questions, index, questions[5], 60, "similar").count(5) == 0  # its own question is left out
    assert choose(questions, index, query, 3, "first") == [0, 1, 2]


def test_the_examples_go_before_the_question_and_the_hash_covers_the_pool(tasks: Repo) -> None:
    similar = promptci.load("similar", root=tasks.path)
    messages = similar.render(request="Add: 12 and 30")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"] * 1 + ["user", "assistant"] * 2 + ["user"]
    assert all(m["content"].startswith("Add:") for m in messages[1:-1:2])
    assert messages[-1] == {"role": "user", "content": "Add: 12 and 30"}
    before = similar.content_hash
    (tasks.path / "data/pool.jsonl").write_text(jsonl(dict(list(POOL.items())[1:])))
    assert promptci.load("similar", root=tasks.path).content_hash != before
    (tasks.path / "data/pool.jsonl").write_text("not json\n")
    r = tasks.run("render", "similar", "--var", "request=x")
    assert r.code == ExitCode.USAGE and "example pool 'data/pool.jsonl' line 1: not JSON" in r.err
    (tasks.path / "data/pool.jsonl").unlink()
    r = tasks.run("render", "similar", "--var", "request=x")
    assert r.code == ExitCode.USAGE and "prompts/similar.yaml:6:" in r.err and "not found" in r.err


def test_a_pool_past_its_limit_is_refused_unread(tasks: Repo) -> None:
    (tasks.path / "data/pool.jsonl").write_text(jsonl(POOL) * 300)
    r = tasks.run("render", "similar", "--var", "request=x")
    assert r.code == ExitCode.USAGE and "larger than" in r.err and r.err.count("\n") == 1


@pytest.mark.slow
def test_chosen_per_case_beats_every_fixed_set_and_a_bundle_chooses_the_same(tasks: Repo, tmp_path: Path) -> None:
    r = tasks.run("eval", "requests")
    assert r.code == ExitCode.OK, r.out + r.err
    rows = tasks.sql("SELECT prompt, case_id, score FROM results")
    scores: dict[str, dict[str, float]] = {}
    for name, case, score in rows:
        scores.setdefault(name, {})[case] = score
    best_fixed = max(("grouped", "mixed"), key=lambda n: sum(scores[n].values()))
    stats = paired_cases(scores[best_fixed], scores["similar"], 1.0)
    assert stats.result.head_mean > stats.result.base_mean and stats.result.p_value < 0.05, stats.result
    # the bundle holds the pool: the same examples for every case, rendered with no repository
    out = tmp_path / "bundle.json"
    assert tasks.run("bundle", "-o", str(out)).code == ExitCode.OK
    from_bundle = promptci.load("similar", label="latest", bundle=out)
    from_repo = promptci.load("similar", root=tasks.path)
    for question in CASES:
        assert from_bundle.render(request=question) == from_repo.render(request=question)


def test_lint_checks_the_pool(tasks: Repo) -> None:
    assert tasks.run("lint").code == ExitCode.OK
    (tasks.path / "data/mixed.jsonl").write_text('{"request": "a", "answer": "b"}\n[1, 2]\n')
    r = tasks.run("lint")
    assert r.code == ExitCode.FAILED
    assert "prompts/mixed.yaml:6:" in r.out and "example pool 'data/mixed.jsonl' line 2: not a JSON object" in r.out


@pytest.mark.slow
def test_demos_proposes_choosing_per_case_and_its_branch_adds_the_pool(tasks: Repo) -> None:
    plain = prompt("plain", "data/pool.jsonl", "similar").split("examples:")[0]
    tasks.write("prompts/plain.yaml", plain)
    tasks.write("evals/requests.yaml", (tasks.path / "evals/requests.yaml").read_text().replace(
        "prompts: [similar, grouped, mixed]", "prompts: [plain]"))  # fmt: skip
    tasks.commit("a prompt with no examples")
    r = tasks.run(
        "optimize", "plain", "--suite", "requests", "--method", "demos", "--steps", "1", "--candidates", "2",
        "--split", "0.4/0.2/0.4", "--allow-insignificant",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "chosen per case (BM25)" in r.out
    branch = next(b.strip() for b in tasks.git("branch", "--list", "promptci/optimize/*").splitlines())
    branch = branch.lstrip("* ")
    pool = tasks.git("show", f"{branch}:prompts/plain.examples.jsonl").splitlines()
    assert len(pool) == round(len(CASES) * 0.4)  # the train split, and only it
    train = {json.loads(line)["request"] for line in pool}
    assert train <= set(CASES)  # the suite's own train cases, no dev or test case among them
    changed = tasks.git("show", f"{branch}:prompts/plain.yaml")
    assert (
        'examples: {"from": "prompts/plain.examples.jsonl", "answer": "answer", "k": 3, "select": "similar"}' in changed
    )
    assert "+++ b/prompts/plain.examples.jsonl" in r.out  # the PR's diff shows the new pool file

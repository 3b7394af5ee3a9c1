"""Conversation cases against a scripted OpenAI-compatible server: each turn's request holds the
earlier turns, with the earlier replies unchanged; each scored turn is scored, the case combines
them as the suite says; every turn is stored, and compare names the first turn that differs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from promptci.errors import ExitCode
from tests.conftest import REPO_ROOT, Repo, chat_reply, json_server, request_json

SUPPORT = """\
name: support
messages:
  - role: system
    content: You help customers of {{ shop }} with their orders.
  - history: history
variables:
  shop: string
  history: {type: messages, description: the conversation so far}
"""

SUITE = """\
prompts: [support]
model: {{provider: openai, model: m, max_tokens: 32, params: {{base_url: '{url}/v1', max_retries: 0}}}}
scorers: [{{type: contains}}]
conversation: {{score: {score}}}
cases:
  - id: order number
    vars: {{shop: Acme}}
    turns:
      - My order 1042 has not arrived.
      - user: Can you check where it is?
        expected: warehouse
      - user: What was my order number again?
        expected: "1042"
  - id: refund
    vars:
      shop: Acme
      history:
        - {{role: user, content: I was charged twice for order 77.}}
        - {{role: assistant, content: I see two charges on order 77.}}
    turns:
      - Please refund one of them.
      - user: Which order was that?
        expected: "77"
"""


def answer(messages: list[dict[str, Any]]) -> str:
    """The scripted assistant: it answers from the conversation it is sent, as a good model would."""
    system, said = messages[0]["content"], [m["content"] for m in messages if m["role"] == "user"]
    last = said[-1]
    numbers = [w.strip(".?") for text in said for w in text.split() if w.strip(".?").isdigit()]
    if "number" in last or "Which order" in last:
        return f"Your order is {numbers[0]}." if numbers else "I do not know."
    if "where" in last:
        return "It is ready." if "Be brief" in system else "It is still in our warehouse."
    return f"Noted, order {numbers[0]}." if numbers else "Noted."


@pytest.fixture
def served(repo: Repo) -> Iterator[tuple[Repo, list[dict[str, Any]], str]]:
    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        body = request_json(h)
        bodies.append(body)
        return 200, chat_reply("m", answer(body["messages"]))

    with json_server(handle) as url:
        repo.write("prompts/support.yaml", SUPPORT)
        repo.write("evals/support.yaml", SUITE.format(url=url, score="all"))
        (repo.path / "evals/sentiment.yaml").unlink()
        repo.commit("a support conversation")
        yield repo, bodies, url


def test_each_turn_carries_the_conversation_so_far(served: tuple[Repo, list[dict[str, Any]], str]) -> None:
    repo, bodies, _ = served
    r = repo.run("eval", "support")
    assert r.code == ExitCode.OK, r.out + r.err
    assert len(bodies) == 5  # three turns, then two
    conversations: dict[str, list[list[dict[str, Any]]]] = {}
    for body in bodies:
        first_user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        conversations.setdefault(first_user, []).append(body["messages"])
    order = conversations["My order 1042 has not arrived."]
    assert [len(m) for m in order] == [2, 4, 6]  # system, then two more turns each time
    for earlier, later in itertools.pairwise(order):
        assert later[: len(earlier)] == earlier  # what was sent before is sent again, unchanged
        assert later[len(earlier)] == {"role": "assistant", "content": answer(earlier)}  # the reply, verbatim
    assert order[2][-1] == {"role": "user", "content": "What was my order number again?"}
    refund = conversations["I was charged twice for order 77."]
    assert [m["role"] for m in refund[-1]] == ["system", "user", "assistant", "user", "assistant", "user"]

    rows = repo.sql("SELECT case_name, score, passed, output, scores FROM results ORDER BY case_name")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("order number", 1.0, True, "Your order is 1042."),
        ("refund", 1.0, True, "Your order is 77."),
    ]
    assert json.loads(rows[0][4]) == {"turn 2 contains": 1.0, "turn 3 contains": 1.0}
    steps = repo.sql("SELECT case_id, step_index, step_id, output FROM steps ORDER BY case_id, step_index")
    assert [s[2] for s in steps] == ["turn 1", "turn 2", "turn 3", "turn 1", "turn 2"] or [s[2] for s in steps] == [
        "turn 1",
        "turn 2",
        "turn 1",
        "turn 2",
        "turn 3",
    ]
    # every turn is a cached request of its own: a second run asks nothing
    bodies.clear()
    assert repo.run("eval", "support").code == ExitCode.OK and bodies == []


def test_the_score_combines_turns_as_the_suite_says(served: tuple[Repo, list[dict[str, Any]], str]) -> None:
    repo, _, url = served
    repo.write("prompts/support.yaml", SUPPORT.replace("orders.", "orders. Be brief."))
    for how, score, passed in (("all", 0.0, False), ("mean", 0.5, False), ("last", 1.0, True)):
        repo.write("evals/support.yaml", SUITE.format(url=url, score=how))
        r = repo.run("eval", "support", "--filter", "order number")
        assert r.code in (ExitCode.OK, ExitCode.FAILED), r.err
        got = repo.sql("SELECT score, passed, note FROM results ORDER BY created_at DESC LIMIT 1")[0]
        assert got[:2] == (score, passed), how
        assert "first failing turn: 2" in got[2]


def test_compare_names_the_first_turn_that_differs(served: tuple[Repo, list[dict[str, Any]], str]) -> None:
    repo, _, _ = served
    assert repo.run("eval", "support").code == ExitCode.OK
    repo.write("prompts/support.yaml", SUPPORT.replace("orders.", "orders. Be brief."))
    repo.commit("be brief")
    out = repo.path / "compare.json"
    r = repo.run("compare", "HEAD~1", "HEAD", "--run-missing", "-o", str(out))
    assert r.code in (ExitCode.OK, ExitCode.FAILED), r.out + r.err  # two cases decide nothing
    suite = json.loads(out.read_text())["suites"][0]
    (flip,) = suite["flips"]
    assert flip["direction"] == "pass→fail" and flip["first_step"] == "turn 2"
    assert [t["step"] for t in flip["trace"]] == ["turn 1", "turn 2", "turn 3"]
    assert flip["trace"][0]["base"] == flip["trace"][0]["head"]
    assert "first turn to differ: 2" in r.out
    assert {"step": "turn 2", "changed": 1, "total": 2} in suite["steps"]


def test_a_broken_turn_is_that_case_error(served: tuple[Repo, list[dict[str, Any]], str]) -> None:
    """A history that speaks as the system is refused on its case; the other case runs."""
    repo, bodies, url = served
    text = SUITE.format(url=url, score="mean").replace("{role: user, content: I was", "{role: system, content: I was")
    repo.write("evals/support.yaml", text)
    r = repo.run("eval", "support")
    assert r.code != ExitCode.OK
    rows = dict(repo.sql("SELECT case_name, error FROM results"))
    assert rows["order number"] is None
    assert "turn 1 of 'history' is a system turn" in rows["refund"]
    assert all(b["messages"][1]["content"] != "I was charged twice for order 77." for b in bodies)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("conversation: {score: all}", "conversation: {history: nope}"),
        ("conversation: {score: all}", "conversation: {user: shop, history: missing}"),
    ],
)
def test_a_conversation_the_prompt_cannot_carry_is_refused_at_its_line(
    served: tuple[Repo, list[dict[str, Any]], str], change: str, message: str
) -> None:
    repo, _, url = served
    repo.write("evals/support.yaml", SUITE.format(url=url, score="all").replace(change, message))
    r = repo.run("eval", "support")
    assert r.code == ExitCode.USAGE, r.err
    assert "evals/support.yaml:4:" in r.err and "no variable" in r.err and "of type messages" in r.err


def test_ten_thousand_turns_are_refused_at_the_case(repo: Repo) -> None:
    turns = "".join(f"      - hello {i}\n" for i in range(10_000))
    repo.write("prompts/support.yaml", SUPPORT)
    repo.write(
        "evals/support.yaml",
        "prompts: [support]\nscorers: [{type: contains}]\ncases:\n  - vars: {shop: A}\n    turns:\n" + turns,
    )
    r = repo.run("eval", "support")
    assert r.code == ExitCode.USAGE
    assert "evals/support.yaml:5:" in r.err and "100" in r.err
    assert r.err.count("\n") <= 3


@pytest.mark.slow
def test_the_support_conversations_run_on_the_embedded_model(repo: Repo) -> None:
    """The repository's three-turn suite on SmolLM2: every turn's request holds the turns before it,
    its replies verbatim, and turn 3 still names the order number turn 1 gave."""
    for rel in ("prompts/support_chat.yaml", "evals/support_chat.yaml"):
        repo.write(rel, (REPO_ROOT / rel).read_text())
    r = repo.run("eval", "support_chat", "--head", "3")
    assert r.code == ExitCode.OK, r.out + r.err
    steps = repo.sql("SELECT case_id, step_index, input, output FROM steps ORDER BY case_id, step_index")
    assert len(steps) == 9
    by_case: dict[str, list[tuple[str, str]]] = {}
    for case, _, sent, reply in steps:
        by_case.setdefault(case, []).append((json.loads(sent), reply))
    for turns in by_case.values():
        for (earlier, reply), (later, _) in itertools.pairwise(turns):
            assert later[: len(earlier)] == earlier
            assert later[len(earlier)] == {"role": "assistant", "content": reply}
    for case_id, name, score in repo.sql("SELECT case_id, case_name, score FROM results"):
        number = name.removeprefix("order ")  # given in turn 1 only
        assert number not in json.dumps(by_case[case_id][2][0][-1])  # turn 3's question does not say it
        assert number in by_case[case_id][2][1] and score >= 0.5, (name, by_case[case_id])


CUSTOMER = """\
name: customer
messages:
  - role: system
    content: You are a customer of {{ shop }} whose order is late. Say DONE once you have an answer.
  - history: conversation
variables:
  shop: string
  conversation: {type: messages}
"""


def test_a_simulated_user_goes_on_after_the_script_until_it_stops(repo: Repo) -> None:
    """After the scripted turn, a second prompt plays the user, seeing the conversation with the roles
    swapped; it stops when it says DONE, or at its turn limit."""
    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        body = request_json(h)
        bodies.append(body)
        messages = body["messages"]
        if messages[0]["content"].startswith("You are a customer"):
            said = sum(m["role"] == "assistant" for m in messages)  # its own earlier turns
            patient = "Acme" in messages[0]["content"]
            return 200, chat_reply("m", "Any news?" if patient or said < 2 else "DONE, thanks.")
        return 200, chat_reply("m", f"Reply {len(messages) // 2}: order 1042 is on its way.")

    with json_server(handle) as url:
        suite = (
            SUITE.format(url=url, score="mean")
            .split("cases:")[0]
            .replace(
                "conversation: {score: mean}",
                "conversation: {score: last, simulate: {prompt: customer, max_turns: 3, stop: DONE}}",
            )
        )
        suite += "cases:\n"
        suite += "  - {id: patient, vars: {shop: Acme}, turns: [My order 1042 is late.], expected: '1042'}\n"
        suite += "  - {id: brief, vars: {shop: Initech}, turns: [My order 1042 is late.], expected: '1042'}\n"
        repo.write("prompts/support.yaml", SUPPORT)
        repo.write("prompts/customer.yaml", CUSTOMER)
        repo.write("evals/support.yaml", suite)
        r = repo.run("eval", "support")
    assert r.code == ExitCode.OK, r.out + r.err
    assert (
        "support × support: a simulated user (customer on openai:m@" in r.err
        and "may add up to 12 model calls" in r.err
    )
    steps = repo.sql(
        "SELECT r.case_name, list(s.step_id ORDER BY s.step_index) FROM steps s JOIN results r USING (run_id, case_id)"
        " GROUP BY ALL ORDER BY 1"
    )
    assert steps == [
        ("brief", ["turn 1", "user 2", "turn 2", "user 3"]),  # said DONE on its second turn
        ("patient", ["turn 1", "user 2", "turn 2", "user 3", "turn 3", "user 4", "turn 4"]),  # three turns, no more
    ]
    sim = [b["messages"] for b in bodies if b["messages"][0]["content"].startswith("You are a customer")]
    first = next(m for m in sim if "Initech" in m[0]["content"])
    assert first[1:] == [
        {"role": "assistant", "content": "My order 1042 is late."},  # what it said, as its own turn
        {"role": "user", "content": "Reply 1: order 1042 is on its way."},  # the assistant's reply, as the user's
    ]
    last = repo.sql("SELECT case_name, output, score FROM results ORDER BY 1")
    assert last == [
        ("brief", "Reply 2: order 1042 is on its way.", 1.0),
        ("patient", "Reply 4: order 1042 is on its way.", 1.0),
    ]


def test_the_viewer_shows_a_conversation_turn_by_turn(served: tuple[Repo, list[dict[str, Any]], str]) -> None:
    from promptci.store import Store
    from promptci.view import pages

    repo, _, _ = served
    assert repo.run("eval", "support", "--filter", "order number").code == ExitCode.OK
    ((run_id, case_id),) = repo.sql("SELECT run_id, case_id FROM results")
    with Store(repo.path / ".promptci/results.duckdb", read_only=True) as store:
        page = pages.case(store, run_id, {"suite": "support", "prompt": "support", "case": case_id})
    assert [s["step_id"] for s in page["steps"]] == ["turn 1", "turn 2", "turn 3"]
    last = page["steps"][-1]["chat"]
    assert last[0] == ("system", "You help customers of Acme with their orders.")
    assert last[1:] == [
        ("user", "My order 1042 has not arrived."),
        ("assistant", "Noted, order 1042."),
        ("user", "Can you check where it is?"),
        ("assistant", "It is still in our warehouse."),
        ("user", "What was my order number again?"),
    ]


def test_an_optimizer_candidate_converses_with_its_own_instruction(
    served: tuple[Repo, list[dict[str, Any]], str],
) -> None:
    """The optimizers score a candidate through the same engine: each of its turns sends the
    candidate's instruction, not the original's."""
    from promptci.evals.plan import build_plan
    from promptci.optimize.evaluate import Evaluator
    from promptci.project import Project

    repo, bodies, _ = served
    project = Project.discover(repo.path)
    (task,) = build_plan(project, [repo.path / "evals/support.yaml"]).tasks
    evaluator = Evaluator(project, task)
    scored = evaluator.score("You help customers of {{ shop }} with their orders. Be brief.", task.cases)
    assert len(bodies) == 5 and all(b["messages"][0]["content"].endswith("Be brief.") for b in bodies)
    assert scored.per_case == {c.id: (0.0 if c.name == "order number" else 1.0) for c in task.cases}

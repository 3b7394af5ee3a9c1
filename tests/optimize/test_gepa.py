"""GEPA through the gepa library: the reflection prompt, and a search that must find a planted
instruction from the feedback on failing cases, against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

import duckdb
import pytest

from promptci.optimize import metaprompt

from ..conftest import Repo, json_server

PLANTED = "Say whether the number is odd or even by its parity."
INITIAL = "Answer with one word."
CLEAN_MISS = "Read the number and answer with one word."


def test_the_reflection_prompt_holds_each_case_with_reply_expected_answer_and_feedback() -> None:
    records = [
        metaprompt.Reflection("Number: 4", "odd", "even", "wrong: the expected response is 'even'."),
        metaprompt.Reflection("Number: 3", "odd", "odd", "correct."),
    ]
    text = metaprompt.gepa(INITIAL, records, "system")
    assert f"<INS>{INITIAL}</INS>" in text
    first, second = text.index("Example 1"), text.index("Example 2")
    assert first < text.index("<INS>\nNumber: 4") < text.index("Expected response:\neven") < second
    assert "Feedback: wrong: the expected response is 'even'." in text
    assert text.index("Number: 3") > second and "Feedback: correct." in text
    assert text.rstrip().endswith("between <INS> and </INS>.")
    # After the question where the instruction follows it.
    assert "Number: 4\n<INS>" in metaprompt.gepa(INITIAL, records[:1], "after")


def _parity_project(repo: Repo, url: str) -> None:
    repo.write(
        "prompts/parity.yaml",
        "name: parity\nmessages:\n"
        f"  - {{role: system, content: {INITIAL}}}\n"
        "  - {role: user, content: 'Number: {{ n }}'}\n"
        "variables:\n  n: {type: string}\n",
    )
    cases = [{"n": str(n), "label": "odd" if n % 2 else "even"} for n in range(1, 41)]
    repo.write("evals/parity.jsonl", "".join(json.dumps(c) + "\n" for c in cases))
    repo.write(
        "evals/parity.yaml",
        "prompts: [parity]\nscorers: [{type: choice, choices: [odd, even]}]\n"
        "dataset: {path: parity.jsonl, vars: {n: n}, expected: label}\n",
    )
    config = (repo.path / "promptci.yaml").read_text()
    config = config.replace(
        "model:\n  temperature: 0\n  max_tokens: 16\n",
        f"model:\n  provider: openai\n  model: task\n  temperature: 0\n  max_tokens: 16\n"
        f"  params: {{base_url: '{url}', api_key_env: SCRIPTED_KEY}}\n",
    )
    repo.write("promptci.yaml", config)
    repo.commit("parity")


def test_gepa_finds_the_planted_instruction_from_feedback_on_failing_cases(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task model answers a number's parity only under the planted instruction, else always
    "odd". The reflection model writes the planted instruction only when its prompt shows a
    failing case with its expected answer; otherwise a clean instruction that changes nothing."""
    reflections: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        messages = body["messages"]
        if body["model"] == "task":
            system, user = messages[0]["content"], messages[-1]["content"]
            n = int(re.search(r"\d+", user).group())  # type: ignore[union-attr]
            answer = ("odd" if n % 2 else "even") if "parity" in system else "odd"
        else:
            prompt = messages[0]["content"]
            reflections.append(prompt)
            shown = "Expected response:\neven" in prompt and "wrong: the expected response is 'even'" in prompt
            answer = f"<INS>{PLANTED if shown else CLEAN_MISS}</INS>"
        return 200, {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        }

    monkeypatch.setenv("SCRIPTED_KEY", "k")
    with json_server(handle) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        _parity_project(repo, url + "/v1")
        result = repo.run(
            "optimize", "parity", "--suite", "parity", "--method", "gepa", "--steps", "4", "--candidates", "2",
            "--split", "0.3/0.3/0.4", "--optimizer-model", "openai:reflector", "--dry-run", "--format", "json",
            "-o", str(repo.path.parent / "pr.md"),
        )  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert reflections, "the reflection model was never asked"
    # Every reflection showed failing cases before passing ones, each with its expected answer.
    for prompt in reflections:
        feedback = re.findall(r"Feedback: (wrong|correct)", prompt)
        assert feedback and feedback == sorted(feedback, key=lambda f: f != "wrong")
        assert prompt.count("Expected response:") == len(feedback)
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT step, status, text, parent_step, target, accepted, train_score, dev_score FROM trajectory"
        " WHERE optimization_id = ? ORDER BY step, candidate",
        [report["id"]],
    ).fetchall()
    winner = [r for r in rows if r[2] == PLANTED]
    assert len(winner) == 1, rows
    step, status, _, parent, target, accepted, train, dev = winner[0]
    assert (status, parent, target, accepted, dev) == ("scored", 0, "instruction", True, 1.0)
    assert train == 1.0 and step >= 1
    # Proposals from reflections that showed no failing "even" case were tried and lost.
    assert all(r[1] in ("initial", "scored", "duplicate") for r in rows)
    assert con.execute("SELECT best FROM optimizations WHERE id = ?", [report["id"]]).fetchone() == (PLANTED,)
    # The held-out test moved from the constant answer's 0.5 to 1.0.
    before, after = con.execute(
        "SELECT test_before, test_after FROM optimizations WHERE id = ?", [report["id"]]
    ).fetchone()  # type: ignore[misc]
    assert before == pytest.approx(0.5, abs=0.15) and after == 1.0
    # The initial instruction answered "odd" to every test case: the report says so.
    body = (repo.path.parent / "pr.md").read_text()
    assert "⚠️ The initial instruction's answers collapsed: 16 of 16 test answers are `odd`" in body
    assert "| best constant answer on test, " in body
    # The pool on dev: the planted instruction is best on every dev case and alone best where the
    # initial one answered "odd" to an even number; the initial one ties it on the odd ones.
    assert "### The pool on dev (Pareto frontier)" in body
    assert f"| {step}.0 ✓ | 1.000 | 12 | 5 | yes | {PLANTED} |" in body
    assert f"| 0.0 | 0.583 | 7 | 0 | yes | {INITIAL} |" in body

"""GEPA through the gepa library: the reflection prompt, and a search that must find a planted
instruction from the feedback on failing cases, against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import duckdb
import pytest

from promptci.optimize import metaprompt
from promptci.optimize.pipeline import read_state

from ..conftest import Repo, chat_reply, json_server, request_json

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
    # A pipeline's first step: its response feeds the next, and the final answer is shown beside it.
    step = [metaprompt.Reflection("Number: 4", "The number is 4.", "even", "wrong.", final="odd")]
    text = metaprompt.gepa(INITIAL, step, "system", ("note", 1, 2))
    assert 'The instruction is step "note" (1 of 2) of a pipeline: its response goes to the next step.' in text
    assert (
        "Assistant's response:\nThe number is 4.\nThe pipeline's final answer:\nodd\nExpected final answer:\neven"
        in text
    )


@contextmanager
def scripted(
    monkeypatch: pytest.MonkeyPatch, handle: Callable[[BaseHTTPRequestHandler], tuple[int, object]]
) -> Iterator[str]:
    """A scripted OpenAI-compatible server; yields its URL, with the keys the parity projects read."""
    monkeypatch.setenv("SCRIPTED_KEY", "k")
    with json_server(handle) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        yield url + "/v1"


def use_scripted_model(repo: Repo, url: str) -> None:
    """promptci.yaml's model: the scripted server's "task" model, keyed by SCRIPTED_KEY."""
    config = (repo.path / "promptci.yaml").read_text()
    config = config.replace(
        "model:\n  temperature: 0\n  max_tokens: 16\n",
        f"model:\n  provider: openai\n  model: task\n  temperature: 0\n  max_tokens: 16\n"
        f"  params: {{base_url: '{url}', api_key_env: SCRIPTED_KEY}}\n",
    )
    repo.write("promptci.yaml", config)


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
    use_scripted_model(repo, url)
    repo.commit("parity")


def test_gepa_finds_the_planted_instruction_from_feedback_on_failing_cases(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task model answers a number's parity only under the planted instruction, else always
    "odd". The reflection model writes the planted instruction only when its prompt shows a
    failing case with its expected answer; otherwise a clean instruction that changes nothing."""
    reflections: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = request_json(h)
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
        return 200, chat_reply(body["model"], answer)

    with scripted(monkeypatch, handle) as url:
        _parity_project(repo, url)
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


NOTE_INSTRUCTION = "Copy the number."


def _parity_pipeline(repo: Repo, url: str) -> None:
    """Two steps: "note" copies the number, "answer" says its parity from the note."""
    _parity_project(repo, url)
    repo.write(
        "prompts/note.yaml",
        "name: note\nmessages:\n"
        f"  - {{role: system, content: {NOTE_INSTRUCTION}}}\n"
        "  - {role: user, content: 'Number: {{ n }}'}\n"
        "variables:\n  n: {type: string}\n",
    )
    repo.write(
        "prompts/answer.yaml",
        "name: answer\nmessages:\n"
        f"  - {{role: system, content: {INITIAL}}}\n"
        "  - {role: user, content: 'Note: {{ note }}'}\n"
        "variables:\n  note: {type: string}\n",
    )
    repo.write(
        "pipelines/noted.yaml",
        "name: noted\ninputs:\n  n: {type: string}\nsteps:\n"
        "  - {id: note, prompt: note, vars: {n: '{{ inputs.n }}'}}\n"
        "  - {id: answer, prompt: answer, vars: {note: '{{ steps.note.output }}'}}\n"
        "output: answer\n",
    )
    suite = (repo.path / "evals/parity.yaml").read_text().replace("prompts: [parity]", "prompts: [noted]")
    repo.write("evals/parity.yaml", suite)
    repo.commit("a two-step parity pipeline")


def test_gepa_on_a_pipeline_changes_the_blamed_step_and_finds_the_planted_instruction(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note step copies the number whatever its instruction; the answer step says its parity
    only under the planted instruction, else "odd". The backward pass blames the answer step, and
    the reflection on that step writes the planted instruction only when it shows the step's input
    from the note step and a failing even case with its expected answer."""
    asked: dict[str, list[str]] = {"loss": [], "step": [], "blame": [], "reflect": []}

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = request_json(h)
        messages = body["messages"]
        if body["model"] == "task":
            system, user = messages[0]["content"], messages[-1]["content"]
            n = int(re.search(r"\d+", user).group())  # type: ignore[union-attr]
            if user.startswith("Number:"):
                answer = f"The number is {n}."
            else:
                answer = ("odd" if n % 2 else "even") if "parity" in system else "odd"
        else:
            prompt = messages[0]["content"]
            if "Which step is most to blame?" in prompt:
                asked["blame"].append(prompt)
                answer = "answer"
            elif prompt.startswith("This is step"):
                asked["step"].append(prompt)
                answer = "Instruction: name the parity.\nInput: nothing."
            elif "answered a question wrongly" in prompt:
                asked["loss"].append(prompt)
                answer = "The answer should be even."
            else:
                asked["reflect"].append(prompt)
                shown = 'step "answer" (2 of 2)' in prompt and "Expected response:\neven" in prompt
                answer = f"<INS>{PLANTED if shown else CLEAN_MISS}</INS>"
        return 200, chat_reply(body["model"], answer)

    with scripted(monkeypatch, handle) as url:
        _parity_pipeline(repo, url)
        result = repo.run(
            "optimize", "noted", "--suite", "parity", "--method", "gepa", "--credit", "blame", "--steps", "3",
            "--candidates", "2", "--split", "0.3/0.3/0.4", "--optimizer-model", "openai:reflector", "--dry-run",
            "--format", "json", "-o", str(repo.path.parent / "pr.md"),
        )  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert asked["loss"] and asked["step"] and asked["blame"] and asked["reflect"]
    # Every reflection was on the blamed step: its input is the note step's output, and as the last
    # step its response is the final answer, shown beside the expected one.
    for prompt in asked["reflect"]:
        assert 'The instruction is step "answer" (2 of 2) of a pipeline: its response is the final answer.' in prompt
        assert "<INS>\nNote: The number is " in prompt and "Expected response:" in prompt
        assert "The pipeline's final answer:" not in prompt
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT step, status, text, target, accepted, dev_score FROM trajectory"
        " WHERE optimization_id = ? ORDER BY step, candidate",
        [report["id"]],
    ).fetchall()
    assert {r[3] for r in rows if r[0] > 0} == {"answer"}, rows
    blamed = con.execute("SELECT DISTINCT step_id FROM credit WHERE blamed").fetchall()
    assert blamed == [("answer",)]
    winner = [r for r in rows if (read_state(r[2]) or {}).get("answer") == PLANTED]
    assert len(winner) == 1, rows
    _, status, text, _, accepted, dev = winner[0]
    assert (status, accepted, dev) == ("scored", True, 1.0)
    assert read_state(text) == {"note": NOTE_INSTRUCTION, "answer": PLANTED}  # the other step kept
    before, after = con.execute(
        "SELECT test_before, test_after FROM optimizations WHERE id = ?", [report["id"]]
    ).fetchone()  # type: ignore[misc]
    assert before == pytest.approx(0.5, abs=0.15) and after == 1.0
    body = (repo.path.parent / "pr.md").read_text()
    assert "### Credit: the step each search step changed" in body
    assert "### The pool on dev (Pareto frontier)" in body


NOTE_PLANTED = "Copy the number and mark small numbers with their parity."


def test_gepa_merges_pool_members_that_improved_different_steps(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step's planted instruction fixes half of the even numbers: the note step's marks
    those up to 20, the answer step's says the parity of the larger ones. Only a merge of the
    two pool members gets every case right."""
    misses: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = request_json(h)
        messages = body["messages"]
        if body["model"] == "task":
            system, user = messages[0]["content"], messages[-1]["content"]
            n = int(re.search(r"\d+", user).group())  # type: ignore[union-attr]
            parity = "odd" if n % 2 else "even"
            if user.startswith("Number:"):
                marked = "mark small" in system and (n <= 20 or n > 30)  # and marks the largest wrongly
                answer = f"The number is {n}." + (f" It is {parity if n <= 20 else 'even'}." if marked else "")
            elif "It is " in user:
                answer = user.rsplit("It is ", 1)[1].rstrip(".")
            elif "parity" in system and n <= 5:
                answer = "even"  # and calls the smallest numbers even
            elif "parity" in system and n > 20:
                answer = parity
            else:
                answer = "odd"
        else:
            prompt = messages[0]["content"]
            shown = [
                (
                    int(re.search(r"Input:\n\D*(\d+)", example).group(1)),
                    re.search(r"Expected [a-z ]+:\n(\w+)", example).group(1),
                )  # type: ignore[union-attr]
                for example in prompt.split("\nExample ")[1:]
            ]
            evens = [n for n, expected in shown if expected == "even"]
            if 'step "note"' in prompt:
                planted = NOTE_PLANTED if any(n <= 20 for n in evens) else None
            else:
                planted = PLANTED if any(n > 20 for n in evens) else None
            misses.append(prompt)
            answer = f"<INS>{planted or f'{CLEAN_MISS} Attempt {len(misses)}.'}</INS>"
        return 200, chat_reply(body["model"], answer)

    with scripted(monkeypatch, handle) as url:
        _parity_pipeline(repo, url)
        result = repo.run(
            "optimize", "noted", "--suite", "parity", "--method", "gepa", "--credit", "round-robin", "--steps", "12",
            "--candidates", "1", "--split", "0.3/0.3/0.4", "--optimizer-model", "openai:reflector", "--dry-run",
            "--set", "gepa.merge=true", "--format", "json", "--seed", "6",
        )  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(result.out)
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT step, status, text, target, accepted, dev_score, parent_step FROM trajectory"
        " WHERE optimization_id = ? ORDER BY step, candidate",
        [report["id"]],
    ).fetchall()
    # Two branches from the initial pipeline, each changing one step, each better than it on dev ...
    branches = {r[3]: r for r in rows if r[6] == 0 and r[4] and r[2] != rows[0][2]}
    assert set(branches) == {"note", "answer"}, rows
    assert read_state(branches["note"][2]) == {"note": NOTE_PLANTED, "answer": INITIAL}
    assert read_state(branches["answer"][2]) == {"note": NOTE_INSTRUCTION, "answer": PLANTED}
    # ... and their merge, which takes each one's changed step, stored as its own scored row.
    merges = [r for r in rows if r[3] == "merge"]
    assert len(merges) == 1, rows
    _, status, text, _, accepted, dev, _ = merges[0]
    assert (status, accepted) == ("scored", True)
    assert read_state(text) == {"note": NOTE_PLANTED, "answer": PLANTED}
    assert dev > max(branches["note"][5], branches["answer"][5])
    assert con.execute("SELECT best FROM optimizations WHERE id = ?", [report["id"]]).fetchone() == (text,)


TIMER_PLANTED = "Call set_timer with the minutes the user asks for."
TIMER_PROMPT = """\
# Owned by the assistant team.
name: timer
messages:
  - {role: system, content: Help the user.}
  - {role: user, content: "{{ request }}"}
variables: {request: string}
tools:
  - type: function
    function:
      name: get_weather
      description: The weather in a city.
      parameters: {type: object, properties: {city: {type: string}}, required: [city], additionalProperties: false}
  - type: function
    function:
      name: set_timer
      description: Start a countdown.   # a comment the optimizer must keep
      parameters:
        type: object
        properties:
          minutes: {type: integer, minimum: 1}
        required: [minutes]
tool_choice: required
"""


def _timer_project(repo: Repo, url: str) -> None:
    """The timer prompt, 40 cases that each expect set_timer(minutes=N), on the scripted task model."""
    repo.write("prompts/timer.yaml", TIMER_PROMPT)
    cases = [{"request": f"Set a timer for {n} minutes.", "call": {"name": "set_timer", "arguments": {"minutes": n}}}
             for n in range(1, 41)]  # fmt: skip
    repo.write("evals/timer.jsonl", "".join(json.dumps(c) + "\n" for c in cases))
    repo.write(
        "evals/timer.yaml",
        "prompts: [timer]\nscorers: [{type: tool-call}]\ndataset: {path: timer.jsonl, vars: {request: request}, expected: call}\n",
    )
    use_scripted_model(repo, url)
    repo.commit("a timer tool prompt")


def test_reflection_shows_failing_calls_beside_the_expected_ones_and_the_tools_are_kept_byte_for_byte(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task model sets the timer only under the planted instruction, else asks for Oslo's
    weather. The reflection model writes the planted instruction only when it is shown a failing
    call and the expected one, each as name(arguments)."""
    from ..evals.test_tool_calls import call, reply

    reflections: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = request_json(h)
        messages = body["messages"]
        if body["model"] == "task":
            assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "set_timer"]
            minutes = re.search(r"\d+", messages[-1]["content"]).group()  # type: ignore[union-attr]
            if TIMER_PLANTED in messages[0]["content"]:
                return 200, reply(calls=[call("set_timer", f'{{"minutes": {minutes}}}')])
            return 200, reply(calls=[call("get_weather", '{"city": "Oslo"}')])
        prompt = messages[0]["content"]
        reflections.append(prompt)
        shown = "Assistant's response:\nget_weather(city='Oslo')" in prompt and re.search(
            r"Expected response:\nset_timer\(minutes=\d+\)", prompt
        )
        return 200, chat_reply(body["model"], f"<INS>{TIMER_PLANTED if shown else CLEAN_MISS}</INS>")

    with scripted(monkeypatch, handle) as url:
        _timer_project(repo, url)
        result = repo.run(
            "optimize", "timer", "--suite", "timer", "--method", "gepa", "--steps", "4", "--candidates", "2",
            "--split", "0.3/0.3/0.4", "--optimizer-model", "openai:reflector", "--format", "json",
        )  # fmt: skip
    assert result.code == 0, result.err
    assert reflections and all("Expected response:\nset_timer(minutes=" in p for p in reflections)
    branch = json.loads(result.out)["branch"]
    new = repo.git("show", f"{branch}:prompts/timer.yaml")
    # Only the instruction changed; the tools, their descriptions and comments are the same bytes.
    assert new + "\n" == TIMER_PROMPT.replace("content: Help the user.", f'content: "{TIMER_PLANTED}"')
    assert new.split("tools:", 1)[1] + "\n" == TIMER_PROMPT.split("tools:", 1)[1]


PLANTED_DESCRIPTION = "Start a countdown of the minutes the user asks for: call it for any timer or reminder."


def test_gepa_rewrites_the_blamed_tools_description_and_nothing_else(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task model sets the timer only when set_timer's description says it is for any timer,
    else asks for Oslo's weather. The reflection model, shown set_timer's description with the
    failing calls, writes that description; asked about any other tool it writes a useless one."""
    from ..evals.test_tool_calls import call, reply

    asked: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        body = request_json(h)
        messages = body["messages"]
        if body["model"] == "task":
            assert messages[0]["content"] == "Help the user."  # the instruction is not a target
            described = {t["function"]["name"]: t["function"]["description"] for t in body["tools"]}
            minutes = re.search(r"\d+", messages[-1]["content"]).group()  # type: ignore[union-attr]
            if "any timer" in described["set_timer"]:
                return 200, reply(calls=[call("set_timer", f'{{"minutes": {minutes}}}')])
            return 200, reply(calls=[call("get_weather", '{"city": "Oslo"}')])
        prompt = messages[0]["content"]
        asked.append(prompt)
        about = re.search(r"call the tool `(\w+)`", prompt)
        good = about and about.group(1) == "set_timer" and "Expected response:\nset_timer(minutes=" in prompt
        return 200, chat_reply(body["model"], f"<INS>{PLANTED_DESCRIPTION if good else 'A tool.'}</INS>")

    with scripted(monkeypatch, handle) as url:
        _timer_project(repo, url)
        refused = repo.run("optimize", "timer", "--suite", "timer", "--method", "gpo", "--target", "tool-descriptions")
        assert refused.code == 2 and "--target tool-descriptions is GEPA's" in refused.err
        result = repo.run(
            "optimize", "timer", "--suite", "timer", "--method", "gepa", "--target", "tool-descriptions",
            "--steps", "4", "--candidates", "2", "--split", "0.3/0.3/0.4", "--optimizer-model", "openai:reflector",
            "--format", "json",
        )  # fmt: skip
    assert result.code == 0, result.err
    assert asked and all("call the tool `set_timer`" in p for p in asked)  # the failing calls blame set_timer
    report = json.loads(result.out)
    new = repo.git("show", f"{report['branch']}:prompts/timer.yaml")
    assert new + "\n" == TIMER_PROMPT.replace(
        "description: Start a countdown.   # a comment the optimizer must keep",
        f'description: "{PLANTED_DESCRIPTION}"   # a comment the optimizer must keep',
    )
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    targets = {t for (t,) in con.execute("SELECT target FROM trajectory WHERE step > 0").fetchall()}
    assert targets == {"tool:set_timer"}

"""Whatever a model replies, every scorer and parse rule reads it in bounded time: user patterns run
on RE2, the built-in readers are linear, and a pattern RE2 cannot run is refused at lint."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from promptci.evals.dataset import EvalCase
from promptci.evals.scorers import build
from promptci.evals.suite import Scorer
from promptci.pipelines.spec import Parse
from promptci.pipelines.steps import StepError, read
from tests.conftest import Repo
from tests.hostile.conftest import FUZZ

# A deadline in CPU time, which the machine's load does not move: each of these took from 36 s to
# forever before, and a linear reader takes milliseconds. How fast they are is benchmarks/'s to say.
CPU_S = 20.0

# Replies a model (or a server posing as one) may send.
REPLIES = {
    "a_run_then_bang": "a" * 100_000 + "!",
    "spaces_in_a_fence": "```" + " " * 4_000 + "x",
    "long_fence": "```json\n" + "[" * 50_000 + "\n```",
    "one_choice_72k": "valid " * 12_000,
    "markers_72k": "the answer is " * 5_000,
    "negations_72k": "not " * 18_000 + "valid",
    "questions_72k": "valid? " * 10_000,
    "letters_72k": "(a) " * 18_000,
    "digits_100k": "9" * 100_000,
    "commas_100k": "1," * 50_000,
    "nested_json": "[" * 100_000 + "]" * 100_000,
    "newlines_100k": "\n" * 100_000,
    "escapes": "\x1b[2J\x1b]0;owned\x07\r" * 5_000,
    "unicode": "é✓\u202e" * 20_000,
}
SCORERS: dict[str, dict[str, Any]] = {
    "exact": {"type": "exact", "case_sensitive": False},
    "contains": {"type": "icontains"},
    "regex": {"type": "regex", "pattern": "^(a+)+$"},
    "regex_alt": {"type": "regex", "pattern": "(a|aa)*b", "ignore_case": True},
    "choice": {"type": "choice", "choices": ["valid", "invalid"]},
    "choice_letters": {"type": "choice", "choices": ["(a)", "(b)", "(c)"]},
    "choice_pattern": {"type": "choice", "choices": ["a", "b"], "answer_pattern": "(?:x+x+)+y|answer: (\\w+)"},
    "numeric": {"type": "numeric"},
    "json": {"type": "json"},
}


class Runaway(BaseException):
    """Raised into a call that outran its CPU deadline. Not an Exception: no ``pytest.raises`` or
    ``suppress`` in a test can take it for the error it expects."""


def timed(call: Callable[[], Any]) -> Any:
    """``call()`` under a CPU-time deadline that holds whether it returns or raises. The regex
    engines check for signals as they run, so even a match that never ends is stopped."""

    def expire(signum: int, frame: object) -> None:
        raise Runaway(f"still running after {CPU_S:.0f} s of CPU: a runaway")

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, CPU_S)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scorer", sorted(SCORERS))
@pytest.mark.parametrize("reply", sorted(REPLIES))
def test_every_scorer_reads_any_reply_in_bounded_time(scorer: str, reply: str) -> None:
    score = build(TypeAdapter(Scorer).validate_python(SCORERS[scorer]), Path("."))
    value = timed(lambda: score(REPLIES[reply], EvalCase("c", "c", {}, "valid", {})))
    assert 0.0 <= value <= 1.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rule", [{"regex": "^(a+)+$"}, {"regex": "(\\w+\\s?)*$"}, {"json": "a.b"}, {"json": ""}])
@pytest.mark.parametrize("reply", sorted(REPLIES))
def test_every_parse_rule_reads_any_reply_in_bounded_time(rule: dict[str, str], reply: str) -> None:
    def parse() -> Any:
        try:
            return read(Parse.model_validate(rule), REPLIES[reply])
        except StepError as exc:  # no match, no JSON: the step's own error, never a hang
            return exc

    timed(parse)


def test_model_replies_fed_to_every_scorer_stay_in_bounds() -> None:
    scorers = [build(TypeAdapter(Scorer).validate_python(spec), Path(".")) for spec in SCORERS.values()]
    alphabet = st.sampled_from(["a", "b", "(", ")", "[", "]", "{", "}", " ", "\n", "`", "!", "?", "not ", "valid",
                                "answer: ", "1", ",", ".", "\x1b", '"', "\\", "é"])  # fmt: skip

    @FUZZ
    @given(parts=st.lists(alphabet, max_size=400), repeat=st.integers(1, 200))
    def run(parts: list[str], repeat: int) -> None:
        reply = "".join(parts) * repeat
        for score in scorers:
            assert 0.0 <= timed(lambda score=score: score(reply, EvalCase("c", "c", {}, "valid", {}))) <= 1.0

    run()


UNRUNNABLE = ["(a)\\1", "(?=a)b", "(?!a)b", "(?<=a)b", "(?<!a)b", "a++", "(?>a)", "\\Z", "(a"]


@pytest.mark.parametrize("pattern", UNRUNNABLE)
def test_a_pattern_re2_cannot_run_is_refused_at_lint_for_every_door(repo: Repo, pattern: str) -> None:
    quoted = pattern.replace("\\", "\\\\")
    repo.write(
        "evals/re.yaml",
        f'prompts: [sentiment]\nscorers:\n  - type: regex\n    pattern: "{quoted}"\ncases:\n  - vars: {{review: fine}}\n',
    )
    linted = repo.run("lint", "evals/re.yaml")
    assert linted.code == 1 and "evals/re.yaml:4:" in linted.out and "cannot run this pattern" in linted.out
    for door in (
        {"type": "choice", "choices": ["a", "b"], "answer_pattern": f"({pattern})"},
        {"type": "regex", "pattern": pattern},
    ):
        with pytest.raises(ValidationError, match="cannot run this pattern"):
            TypeAdapter(Scorer).validate_python(door)
    with pytest.raises(ValidationError, match="cannot run this pattern"):
        Parse.model_validate({"regex": pattern})
    filtered = repo.run("eval", "--filter", pattern)
    assert filtered.code == 2 and "cannot run this pattern" in filtered.err


def test_parse_rules_read_any_reply_in_bounded_time() -> None:
    rules = [
        Parse.model_validate(r) for r in ({"regex": "^(a+)+$"}, {"regex": "(x+x+)+y"}, {"json": "a.0.b"}, {"json": ""})
    ]
    alphabet = st.sampled_from(["a", "x", "y", "[", "]", "{", "}", '"a"', ":", ",", "1", " ", "\n", "```", "\\"])

    @FUZZ
    @given(parts=st.lists(alphabet, max_size=300), repeat=st.integers(1, 300))
    def run(parts: list[str], repeat: int) -> None:
        reply = "".join(parts) * repeat
        for rule in rules:
            with contextlib.suppress(StepError):  # no match, no JSON, nested too deep: that step's error
                timed(lambda rule=rule: read(rule, reply))

    run()


def test_any_set_item_is_an_option_or_one_clean_error_in_bounded_time() -> None:
    from promptci.errors import InputError
    from promptci.optimize.methods import parse_sets

    levels = ["&l0 [" + ",".join(["x"] * 9) + "]"]
    levels += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bombs = ["gpo.k=[" + ", ".join(levels) + "]", "gpo.k=" + "[" * 500 + "]" * 500, "gpo.k=&a [*a]"]
    for item in bombs:
        with pytest.raises(InputError, match="refusing"):
            timed(lambda item=item: parse_sets("gpo", [item]))

    @FUZZ
    @given(key=st.text(max_size=20), value=st.text(max_size=200))
    def run(key: str, value: str) -> None:
        try:
            found = timed(lambda: parse_sets("gpo", [f"{key}={value}"]))
        except InputError:
            return
        assert len(found) == 1

    run()

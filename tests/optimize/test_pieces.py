"""The optimizer framework's pure parts: split, edit distance, budget schedule, meta-prompts, parsing."""

from __future__ import annotations

import itertools

import pytest

from promptci.errors import InputError
from promptci.evals.dataset import EvalCase, case_id
from promptci.optimize import metaprompt
from promptci.optimize.edits import edit_budget, normalised_hash, word_edit_distance
from promptci.optimize.split import parse_fractions, split_cases


def cases(n: int) -> list[EvalCase]:
    return [EvalCase(case_id({"q": i}, i), f"case {i}", {"q": i}, i) for i in range(n)]


def test_split_is_deterministic_disjoint_and_order_free() -> None:
    first = split_cases(cases(50), (0.2, 0.2, 0.6), seed=1)
    again = split_cases(list(reversed(cases(50))), (0.2, 0.2, 0.6), seed=1)
    assert [c.id for c in first.train] == [c.id for c in again.train]
    assert (len(first.train), len(first.dev), len(first.test)) == (10, 10, 30)
    ids = [c.id for part in (first.train, first.dev, first.test) for c in part]
    assert len(set(ids)) == 50
    other = split_cases(cases(50), (0.2, 0.2, 0.6), seed=2)
    assert [c.id for c in other.train] != [c.id for c in first.train]


def test_cases_sharing_an_input_stay_on_one_side() -> None:
    """Rows that give the same input with different answers are different cases; none of those
    inputs is a demonstration or a dev case on one side and a test case on the other."""
    repeated = [EvalCase(case_id({"q": i % 17}, i), f"case {i}", {"q": i % 17}, i) for i in range(60)]
    for seed in range(20):
        split = split_cases(repeated, (0.4, 0.2, 0.4), seed=seed)
        sides = [{c.vars["q"] for c in part} for part in (split.train, split.dev, split.test)]
        assert not (sides[0] & sides[2]) and not (sides[1] & sides[2]) and not (sides[0] & sides[1]), seed
        assert sum(map(len, (split.train, split.dev, split.test))) == 60
    # with no input repeated, the split is what it always was: one case at a time
    unique = split_cases(cases(50), (0.2, 0.2, 0.6), seed=1)
    assert (len(unique.train), len(unique.dev), len(unique.test)) == (10, 10, 30)


def test_too_small_a_suite_names_the_minimum() -> None:
    with pytest.raises(InputError, match=r"the suite has 6 cases.*at least 15 cases"):
        split_cases(cases(6), (0.2, 0.2, 0.6), seed=0)


@pytest.mark.parametrize("text", ["0.5/0.5", "0.2/0.2/0.7", "a/b/c", "0/0.5/0.5"])
def test_bad_fractions(text: str) -> None:
    with pytest.raises(InputError, match="bad --split"):
        parse_fractions(text)


def test_word_edit_distance() -> None:
    assert word_edit_distance("think step by step", "think step by step") == 0
    assert word_edit_distance("think step by step", "think carefully step by step") == 1
    assert word_edit_distance("a b c", "c b a") == 2
    assert word_edit_distance("", "one two") == 2


def test_cosine_edit_budget_decays_from_50_to_10() -> None:
    schedule = [edit_budget(t, 18) for t in range(19)]
    assert schedule[0] == 50 and schedule[-1] == 10 and schedule[9] == 30
    assert all(a >= b for a, b in itertools.pairwise(schedule))


def test_dedupe_ignores_case_space_and_trailing_punctuation() -> None:
    assert normalised_hash("Think  step by step.") == normalised_hash("think step by step")
    assert normalised_hash("think step by step") != normalised_hash("think twice")


def test_opro_meta_prompt_shows_the_best_20_ascending_with_scores() -> None:
    scored = [(f"instruction {i}", i / 30) for i in range(30)]
    ex = [metaprompt.Exemplar("Is it plausible?", "plausible")]
    text = metaprompt.opro(scored, ex, "before")
    shown = [line for line in text.splitlines() if line.startswith("instruction ")]
    assert shown == [f"instruction {i}" for i in range(10, 30)]  # top 20, best last
    assert "instruction 29\nscore:\n97" in text
    assert "Q: <INS>\nIs it plausible?\nA:\noutput:\nplausible" in text
    assert text.rstrip().endswith("generally applicable to all problems above.")


def test_gpo_meta_prompt_states_the_edit_budget() -> None:
    ex = [metaprompt.Exemplar("Count the apples.", "3")]
    text = metaprompt.gpo(
        "Let's think step by step.", [("Let's think step by step.", 0.4), ("Be brief.", 0.3)], ex, "after", 37
    )
    assert "The current prompt is: Let's think step by step." in text
    assert "Prompt: Be brief.\nScore: 30" in text
    assert "Count the apples.\n<Prompt>\nExpected output:\n3" in text
    assert "You are allowed to change up to 37 words in the current prompt." in text
    assert text.endswith("Wrap the new prompt with <START> and <END>.")


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("Sure! <INS>Answer in one word.</INS>", "Answer in one word."),
        ("<INS>  </INS>", None),
        ("a lone line with no tags", "a lone line with no tags"),
        ("Sure! Here is one:\n\nBe brief.\nThanks", None),
        ("<INS> Answer in one word.\n\nThat should work.", "Answer in one word."),
        ("<INS>first</INS> <INS>second</INS>", "first"),
    ],
)
def test_parse_opro(reply: str, expected: str | None) -> None:
    assert metaprompt.parse_opro(reply) == expected


def test_parse_gpo() -> None:
    assert metaprompt.parse_gpo("x <START>\nBe precise.\n<END> y") == "Be precise."
    assert metaprompt.parse_gpo("<START>unterminated") == "unterminated"
    assert metaprompt.parse_gpo("<START>\n<END>") is None
    assert metaprompt.parse_gpo("<START>Be\x80 precise.\x00<END>") == "Be precise."


def test_a_lever_moves_the_model_only_when_answers_and_scores_change() -> None:
    from promptci.optimize.auto import Probe

    # a different wrong answer for every rewording moves nothing; demonstrations that fix answers do
    probe = Probe(3, (3, 0, 6), (6, 5, 6), 15, "demos", embedded_optimizer=True)
    assert not Probe.moved(probe.instruction) and Probe.moved(probe.demos)
    assert not Probe.moved((1, 1, 6))  # one changed answer of six is noise
    assert "changed 3 of 6 dev answers (0 scores)" in probe.line() and probe.line().endswith("running demos")
    table = "\n".join(probe.table())
    assert "| instruction variants | 3 of 6 | 0 | no |" in table and "| demonstrations | 6 of 6 | 5 | yes |" in table
    assert "--optimizer-model" in table  # the embedded model as optimizer: say what would try instructions
    nothing = Probe(3, (0, 0, 6), (0, 0, 6), 15, None)
    assert nothing.line().endswith("neither moves the model, so nothing is optimized")

"""Candidate hygiene on a labelled set of real candidates.

Most rows are replies that OPRO, GPO, GReaTer and LLM-Catalyst produced with SmolLM2 as the
optimizer and task model on the shipped BIG-bench tasks; the rest are the failures reported
against earlier versions (a meta-prompt leaking through, "@" for "You", a bare option letter).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptci.optimize.hygiene import REASONS, Hygiene, Reference, verdict

NAV = "You track positions on a grid. Answer with one word, True or False."
SPORTS = "You are a sports expert. Answer with one word, plausible or implausible."
LOGIC = "Decide whether the argument is deductively valid. Answer valid or invalid."
ORDER = "Which sentence has the correct adjective order? Answer with the letter a or b."

META = (
    "Your task is to generate the instruction <INS>. Below are some previous instructions with their scores. "
    "The score ranges from 0 to 100.\n\ntext:\n{quoted}\nscore:\n40\n\n"
    "Below are some problems.\n\ninput:\nQ: <INS>\n{question}\nA:\n{answer}\n\n"
    "Generate an instruction that is different from all the instructions <INS> above, and has a higher "
    "score than all the instructions <INS> above. The instruction should begin with <INS> and end with </INS>. "
    "The instruction should be concise, effective, and generally applicable to all problems above."
)
QUESTION = (
    "If you follow these instructions, do you return to the starting point? Always face forward. "
    "Take 10 steps backward. Take 1 step forward. Take 9 steps forward."
)

GOOD = [
    (NAV, None),
    (SPORTS, None),
    ("Think about each move in turn, then answer with one word, True or False.", NAV),
    ("Follow the instructions step by step and keep count of your position. Answer True or False.", NAV),
    ("You track positions for a grid. Answer with one word, True or False.", NAV),
    ("You track positions on a graph. Answer with one word, True or False.", NAV),
    ("You track data on a grid. Answer with one word, True or False.", NAV),
    ("You are an expert on sports rules. Answer with one word, plausible or implausible.", SPORTS),
    ("You are a sports analyst. Say plausible if the sentence could happen in a real game, else implausible.", SPORTS),
    ("Consider whether the player plays the sport in the sentence. Answer plausible or implausible.", SPORTS),
    ("Read the premises carefully and explain whether the conclusion follows. Answer valid or invalid.", LOGIC),
    ("Check each premise, then say whether the argument is deductively valid: valid or invalid.", LOGIC),
    ("Use the insight that depends on the end of the argument. Answer valid or invalid.", LOGIC),
    ("Compare the order of opinion, size, age, shape and colour. Answer with the letter a or b.", ORDER),
    ("Answer with the letter of the sentence whose adjectives follow English order: a or b.", ORDER),
    ("Answer yes or no, and explain your reasoning in one sentence.", "Answer yes or no."),
    ("Count the objects in the list and answer with a number written as a word.", None),
    ("Work out today's date first, then pick the option (A)-(F) that matches. Answer with the letter.", None),
    ("State which person the pronoun refers to, or say it is ambiguous.", None),
    ("You are a careful reader. Answer: yes or no.", "You are a careful reader. Answer: yes or no."),
]

BAD = [
    # a meta-prompt leaking through, or the rewriting talked about
    ("Your request to improve the provided prompt is here", LOGIC, "about-rewrite"),
    ("Here is the improved prompt: Answer yes or no.", "Answer yes or no.", "about-rewrite"),
    (
        "Below is a new instruction that is different from the old ones. Answer valid or invalid.",
        LOGIC,
        "about-rewrite",
    ),
    ("A: The instruction that is different from all the instructions above is:\n<AS KAS>", SPORTS, "not-instruction"),
    (
        "The instruction that takes on the second last slot in the current instruction and has two extra slots.",
        NAV,
        "about-rewrite",
    ),
    (
        "is the instruction above (implausibility of a lie), but the instruction is also more suitable",
        SPORTS,
        "about-rewrite",
    ),
    ("Rewrite the prompt so that it answers with one word, plausible or implausible.", SPORTS, "about-rewrite"),
    ("The original instruction was too vague. Answer with one word, True or False.", NAV, "about-rewrite"),
    (
        "The instruction should be concise, effective, and generally applicable to all problems above.",
        NAV,
        "copied-meta",
    ),
    (
        "Generate an instruction that is different from all the instructions above and has a higher score.",
        NAV,
        "copied-meta",
    ),
    ("Decide. The score ranges from 0 to 100 for each of the problems.", LOGIC, "copied-meta"),
    # not an instruction: answers, labels, exemplars
    ("Output:\nb", ORDER, "not-instruction"),
    ("A:", ORDER, "not-instruction"),
    ('The answer is "an"', ORDER, "not-instruction"),
    ("The answer is a", ORDER, "not-instruction"),
    ("implausible", SPORTS, "not-instruction"),
    ("True", NAV, "not-instruction"),
    (
        "Instructions:\nAlways go left. Please take 2 steps to the left.\nYour answer: True\nOutput:\nTrue",
        NAV,
        "not-instruction",
    ),
    (
        "Is the following sentence plausible?\nA: The car was driven by the person that makes their house drunk\nAnswer:",
        SPORTS,
        "not-instruction",
    ),
    ("Always face forward. Take 10 steps backward. Take 1 step forward. Take 9 steps forward.", NAV, "not-instruction"),
    # empty, near-empty, markup
    ("", NAV, "empty"),
    ("[1, 0]", SPORTS, "empty"),
    ("[1, 0]\nSUBMARKING", NAV, "empty"),
    ("[system, 0]", SPORTS, "empty"),
    ("Answer \ufffd\ufffd with one word, True or False.", NAV, "markup"),
    ("<|im_start|>assistant Answer with one word, True or False.", NAV, "markup"),
    ("Answer with one word, True or False.</s>", NAV, "markup"),
    ("Instructions: Always face forward. Take 10 steps backward.\n```", NAV, "markup"),
    # control and bidi characters: a GEPA reflection once carried these into a committed prompt file
    ("Answer with one word, \u202eTrue or False\u202c.", NAV, "markup"),
    ("Answer with one word, True or False.\x1b[2J", NAV, "markup"),
    ("Answer with one word,\x00 True or False.", NAV, "markup"),
    # junk that once passed and was scored (held-out BIG-bench runs, and GEPA's reflections on SmolLM2)
    (
        "1. 10 Tips to Avoiding a Business Franchise\n2. 12 Strategies to Avoid Business Franchises",
        LOGIC,
        "off-task",
    ),
    ("Welcome to the end of the Prompt", ORDER, "about-rewrite"),
    ("Welcome to our community of friendly neighbours", ORDER, "off-task"),
    ("A corrected version:", LOGIC, "about-rewrite"),
    ("Improvement: Your goal is to use a positive word! Answer valid or invalid.", LOGIC, "about-rewrite"),
    (
        "Your task is to write, not the instruction. The assistant must decide whether to correct it.",
        SPORTS,
        "about-rewrite",
    ),
    # unreadable: symbols the parent did not have
    ("@ are a sports expert. Answer with one word, plausible or implausible.", SPORTS, "unreadable"),
    ("@ @ Answer yes or no ## $$", "Answer yes or no.", "unreadable"),
    ("### track positions on a grid. Answer with one word, True or False.", NAV, "unreadable"),
    ('""" are a sports expert. Answer with one word, plausible or implausible.', SPORTS, "unreadable"),
    ("%||1, 0] are a sports expert. Answer with one word.", SPORTS, "unreadable"),
    ("You are a sports expert. Answer with one word, plausible or implausible. >>>", SPORTS, "unreadable"),
]


def reference(parent: str | None) -> Reference:
    quoted = [parent] if parent else []
    meta = META.format(quoted=parent or "", question=QUESTION, answer="True")
    return Reference(
        meta=meta,
        quoted=quoted,
        questions=[QUESTION],
        answers=["True", "False", "plausible", "implausible", "valid", "invalid", "a", "b"],
        parent=parent,
    )


@pytest.mark.parametrize(("text", "parent"), GOOD)
def test_good_candidates_are_scored(text: str, parent: str | None) -> None:
    assert verdict(text, reference(parent), Hygiene()) is None


@pytest.mark.parametrize(("text", "parent", "reason"), BAD)
def test_bad_candidates_are_refused_with_their_reason(text: str, parent: str, reason: str) -> None:
    assert verdict(text, reference(parent), Hygiene()) == reason


def test_the_labelled_set_is_large_and_covers_every_reason() -> None:
    assert len(GOOD) + len(BAD) >= 50
    assert {reason for *_, reason in BAD} == set(REASONS)


def test_thresholds_are_configurable() -> None:
    text = "Decide. The score ranges from 0 to 100 for each of the problems."
    assert verdict(text, reference(NAV), Hygiene(meta_run=20)) is None
    assert verdict("@ track positions on a grid. Answer True or False.", reference(NAV), Hygiene(new_symbols=1)) is None
    assert verdict("Count carefully.", reference(NAV), Hygiene(min_words=2)) is None
    assert verdict("Count carefully.", reference(NAV), Hygiene(min_words=3)) == "empty"


def test_a_likelihood_far_below_the_parents_is_unreadable() -> None:
    fluency = {NAV: -2.0, "You track positions on YouTube grid. Answer with one word, True or False.": -4.0}
    odd = "You track positions on YouTube grid. Answer with one word, True or False."
    assert verdict(odd, reference(NAV), Hygiene(), fluency.__getitem__) == "unreadable"
    assert verdict(odd, reference(NAV), Hygiene(likelihood_drop=3.0), fluency.__getitem__) is None
    assert verdict(odd, reference(NAV), Hygiene(likelihood_drop=None), fluency.__getitem__) is None


@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=120)))
def test_any_text_gets_a_verdict_or_none(text: str, parent: str | None) -> None:
    result = verdict(text, reference(parent), Hygiene())
    assert result is None or result in REASONS


def test_answer_as_a_verb_is_an_instruction() -> None:
    for text in ("Answer briefly and carefully.", "Answer now, after reading each step.", "Output only the letter."):
        assert verdict(text, reference(NAV), Hygiene()) is None, text


def test_off_task_reads_each_candidates_own_parent_under_a_shared_cache() -> None:
    """One optimization shares one cache across candidates whose parents differ: the parent's
    words are the candidate's own parent's, not the first one judged."""
    cache: dict[str, object] = {}
    first = Reference(parent=LOGIC, answers=["valid", "invalid"], _cache=cache)
    assert verdict("Weigh the premises of the argument.", first, Hygiene()) is None
    second = Reference(parent="You track positions on a grid.", answers=["valid", "invalid"], _cache=cache)
    assert verdict("Track each position on the grid.", second, Hygiene()) is None
    assert verdict("Welcome to our community of friendly neighbours", second, Hygiene()) == "off-task"

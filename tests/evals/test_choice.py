"""Choice reading against a labelled table of outputs, most of them SmolLM2's own answers on the
shipped BIG-bench suites, the rest the traps a naive reader falls into."""

from __future__ import annotations

import re

import pytest

from promptci.evals.choice import read_choice

from ..conftest import Repo

PLAUSIBLE = ["plausible", "implausible"]
TRUE_FALSE = ["True", "False"]
YES_NO = ["Yes", "No"]
LETTERS = ["a", "b"]
OPTIONS = ["(A)", "(B)", "(C)"]
VALID = ["valid", "invalid"]
DATES = ["02/02/2020", "01/23/2020", "11/08/2019"]
WHO = ["The chief took the day off", "The counselor took the day off", "Ambiguous"]

# (output, choices, the choice a careful grader reads: None for no answer, "?" for ambiguous)
TABLE = [
    # sports_understanding
    ("plausible", PLAUSIBLE, "plausible"),
    ("Implausible.", PLAUSIBLE, "implausible"),
    ("The sentence is plausible.", PLAUSIBLE, "plausible"),
    ("No, the sentence is not plausible.", PLAUSIBLE, "implausible"),
    ("No, the sentence is not plausible because", PLAUSIBLE, "implausible"),
    ("It isn't very plausible", PLAUSIBLE, "implausible"),
    ("plausible? No, implausible.", PLAUSIBLE, "implausible"),
    ("plausible, not implausible", PLAUSIBLE, "plausible"),
    ("Answer: implausible", PLAUSIBLE, "implausible"),
    ("It sounds plausible, but the answer is implausible.", PLAUSIBLE, "implausible"),
    ("Therefore, the final answer is plausible", PLAUSIBLE, "plausible"),
    ("This is plausible. Actually it is implausible.", PLAUSIBLE, "?"),
    ("Yes", PLAUSIBLE, None),
    ("The sentence makes sense.", PLAUSIBLE, None),
    ("'plausible' is wrong here", PLAUSIBLE, "implausible"),
    ("Is it plausible?", PLAUSIBLE, None),
    ("Plausible or implausible?", PLAUSIBLE, None),
    ("The answer is not plausible.", PLAUSIBLE, "implausible"),
    # navigate
    ("True", TRUE_FALSE, "True"),
    ("False.", TRUE_FALSE, "False"),
    ("The answer is False", TRUE_FALSE, "False"),
    ("True. Then False.", TRUE_FALSE, "?"),
    ("It is not true that you return to the start.", TRUE_FALSE, "False"),
    ("That is false", TRUE_FALSE, "False"),
    ("You end up at the starting point: True", TRUE_FALSE, "True"),
    ("Take 3 steps. Turn around.", TRUE_FALSE, None),
    ("Answer: True\nExplanation: after 4 steps the position is false", TRUE_FALSE, "True"),
    ("true or false", TRUE_FALSE, "?"),
    # causal_judgment
    ("Yes", YES_NO, "Yes"),
    ("No.", YES_NO, "No"),
    ("No, he did not cause it.", YES_NO, "No"),
    ("Yes, because the spark started the fire.", YES_NO, "Yes"),
    ("Yes or no?", YES_NO, None),
    ("The answer is no.", YES_NO, "No"),
    ("I would say yes. But no.", YES_NO, "?"),
    ("Most people would answer Yes", YES_NO, "Yes"),
    # hyperbaton-style letters: never the article
    ('The sentence "a" is incorrect. The correct order is b.', LETTERS, "b"),
    ("The answer is a", LETTERS, "a"),
    ("(b)", LETTERS, "b"),
    ("b", LETTERS, "b"),
    ("a) old little brown box", LETTERS, "a"),
    ("It is a good sentence.", LETTERS, None),
    ("Output:\nb", LETTERS, "b"),
    ("a. The adjectives are in order.", LETTERS, "a"),
    ("Both (a) and (b) are fine.", LETTERS, "?"),
    ("There is a book and a box.", LETTERS, None),
    ("Answer: (a)", LETTERS, "a"),
    # options written as (A), (B), (C)
    ("Option (A) is wrong; the answer is (B).", OPTIONS, "(B)"),
    ("(C)", OPTIONS, "(C)"),
    ("The answer is (A).", OPTIONS, "(A)"),
    ("(A) is incorrect, (B) is incorrect, so (C)", OPTIONS, "(C)"),
    ("I think (A) or (B).", OPTIONS, "?"),
    ("A", OPTIONS, "(A)"),
    # logical validity
    ("The argument is not valid.", VALID, "invalid"),
    ("valid", VALID, "valid"),
    ("The argument is invalid.", VALID, "invalid"),
    ("The argument is deductively valid.", VALID, "valid"),
    # dates from a column of choices
    ("01/23/2020", DATES, "01/23/2020"),
    ("The answer is 11/08/2019.", DATES, "11/08/2019"),
    ("Today is 02/02/2020, so a week ago was 01/23/2020", DATES, "?"),
    ("MM/DD/YYYY", DATES, None),
    # disambiguation
    ("The chief took the day off", WHO, "The chief took the day off"),
    ("Ambiguous", WHO, "Ambiguous"),
    ("The answer is Ambiguous.", WHO, "Ambiguous"),
    ("It is not ambiguous: the counselor took the day off.", WHO, "The counselor took the day off"),
]


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) >= 60


@pytest.mark.parametrize("output,choices,expected", TABLE)
def test_a_choice_is_read_as_a_grader_would(output: str, choices: list[str], expected: str | None) -> None:
    reading = read_choice(output, choices)
    if expected == "?":
        assert (reading.choice, reading.how) == (None, "ambiguous"), reading
        assert reading.note is not None and reading.note.startswith("ambiguous: states ")
    else:
        assert reading.choice == expected, reading


def test_pick_resolves_two_stated_choices_as_the_suite_asks() -> None:
    assert read_choice("True. Then False.", TRUE_FALSE, pick="first").choice == "True"
    assert read_choice("True. Then False.", TRUE_FALSE, pick="last").choice == "False"


def test_an_answer_pattern_decides_first() -> None:
    pattern = re.compile(r"VERDICT=(\w+)")
    reading = read_choice("plausible at first sight; VERDICT=implausible", PLAUSIBLE, pattern=pattern)
    assert (reading.choice, reading.how) == ("implausible", "pattern")
    named = re.compile(r"<(?P<answer>[^>]+)>")
    assert read_choice("maybe <No>", YES_NO, pattern=named).choice == "No"
    assert read_choice("the pattern finds nothing: Yes", YES_NO, pattern=pattern).how == "stated"


def test_lint_names_the_line_of_a_bad_answer_pattern(repo: Repo) -> None:
    suite = repo.path / "evals/sentiment.yaml"
    text = suite.read_text()
    assert "  - type: choice\n" in text
    suite.write_text(text.replace("  - type: choice\n", "  - type: choice\n    answer_pattern: 'Answer: \\w+'\n"))
    line = next(i for i, s in enumerate(suite.read_text().splitlines(), 1) if "answer_pattern" in s)
    result = repo.run("lint")
    assert result.code == 1
    assert f"evals/sentiment.yaml:{line}:" in result.out and "answer_pattern needs a group" in result.out

"""Scorers, one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from promptci.evals.dataset import EvalCase
from promptci.evals.judge import parse_grade
from promptci.evals.scorers import build, extract_choice, extract_number
from promptci.evals.suite import Scorer


def score(
    spec: dict[str, Any], output: str, expected: Any, data: dict[str, Any] | None = None, root: Path = Path(".")
) -> float:
    scorer = TypeAdapter(Scorer).validate_python(spec)
    return build(scorer, root)(output, EvalCase("id", "case", {}, expected, data or {}))


@pytest.mark.parametrize(
    "spec,output,expected,value",
    [
        ({"type": "exact"}, " Paris\n", "Paris", 1.0),
        ({"type": "exact"}, "paris", "Paris", 0.0),
        ({"type": "exact", "case_sensitive": False}, "paris", "Paris", 1.0),
        ({"type": "exact"}, "10", ["ten", "10"], 1.0),
        ({"type": "contains"}, "The capital is Paris.", "Paris", 1.0),
        ({"type": "contains"}, "The capital is paris.", "Paris", 0.0),
        ({"type": "icontains"}, "The capital is paris.", "Paris", 1.0),
        ({"type": "contains", "value": "capital"}, "The capital is Rome.", "Paris", 1.0),
        ({"type": "regex", "pattern": r"^\d{2}/\d{2}/\d{4}$"}, "01/02/2020", None, 1.0),
        ({"type": "regex", "pattern": "yes", "ignore_case": True}, "YES", None, 1.0),
        ({"type": "choice", "choices": ["plausible", "implausible"]}, "Implausible.", "implausible", 1.0),
        ({"type": "choice", "choices": ["plausible", "implausible"]}, "It is not plausible.", "implausible", 1.0),
        ({"type": "choice", "choices": ["True", "False"]}, "True. Then False.", "True", 0.0),
        ({"type": "choice", "choices": ["True", "False"], "pick": "first"}, "True. Then False.", "True", 1.0),
        ({"type": "choice", "choices": ["a", "b"], "answer_pattern": r"order is (\w)"}, "a? The order is b", "b", 1.0),
        ({"type": "choice", "choices": ["Yes", "No"]}, "no", "No", 1.0),
        ({"type": "numeric"}, "There are ten apples.", ["ten", "10"], 1.0),
        ({"type": "numeric"}, "I count 1,204 in total", 1204, 1.0),
        ({"type": "numeric", "tolerance": 0.5}, "about 3.4", "3", 1.0),
        ({"type": "numeric", "tolerance": 0.1, "relative": True}, "95", "100", 1.0),
        ({"type": "numeric"}, "nothing here", "3", 0.0),
        ({"type": "json"}, '```json\n{"a": 1}\n```', None, 1.0),
        ({"type": "json"}, "{broken", None, 0.0),
        ({"type": "json", "schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', None, 0.0),
        ({"type": "json", "schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', None, 1.0),
    ],
)
def test_scorer(spec: dict[str, Any], output: str, expected: Any, value: float) -> None:
    assert score(spec, output, expected) == value


def test_choices_from_a_dataset_column() -> None:
    choices = ["02/02/2020", "01/23/2020", "11/08/2019"]
    spec = {"type": "choice", "choices_from": "choices"}
    assert score(spec, "The answer is 01/23/2020.", "01/23/2020", {"choices": choices}) == 1.0
    assert score(spec, "The answer is 11/08/2019.", "01/23/2020", {"choices": choices}) == 0.0


def test_choice_extraction_rules() -> None:
    """The full table is in test_choice.py; here the scorer's view of it."""
    assert extract_choice("plausible, not implausible", ["plausible", "implausible"]) == "plausible"
    assert extract_choice("It isn't very plausible", ["plausible", "implausible"]) == "implausible"
    assert extract_choice("True. Then False.", ["True", "False"]) is None  # ambiguous


def test_an_ambiguous_choice_scores_zero_and_says_why(tmp_path: Path) -> None:
    from promptci.evals.scorers import Noted

    scorer = TypeAdapter(Scorer).validate_python({"type": "choice", "choices": ["True", "False"]})
    value = build(scorer, tmp_path)("True. Then False.", EvalCase("c", "c", {}, "True", {}))
    assert value == 0.0 and isinstance(value, Noted) and value.note == "ambiguous: states 'True' and 'False'"


@pytest.mark.parametrize(
    "pattern,message",
    [("Answer: (", "cannot run this pattern"), ("Answer: \\w+", "answer_pattern needs a group")],
)
def test_a_bad_answer_pattern_is_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TypeAdapter(Scorer).validate_python({"type": "choice", "choices": ["a", "b"], "answer_pattern": pattern})


def test_number_words() -> None:
    assert extract_number("Twelve.") == 12 and extract_number("-3.5 degrees") == -3.5 and extract_number("none") is None


def test_python_scorer(tmp_path: Path) -> None:
    (tmp_path / "my_scorers.py").write_text(
        "def length_ok(output, expected, case):\n    return len(output) <= expected\n"
    )
    spec = {"type": "python", "function": "my_scorers:length_ok"}
    assert score(spec, "short", 10, root=tmp_path) == 1.0
    assert score(spec, "far too long an answer", 10, root=tmp_path) == 0.0


def test_judge_grades_are_parsed() -> None:
    assert parse_grade("SCORE: 7") == 0.7 and parse_grade("score=10\nbecause") == 1.0
    assert parse_grade("I would give it 7") is None and parse_grade("SCORE: 14") == 1.0


def test_embedding_similarity_with_a_real_model() -> None:
    spec = {"type": "embedding", "threshold": 0.8}
    same = score(spec, "The cat sat on the mat.", "A cat was sitting on the mat.")
    other = score(spec, "Quarterly revenue rose by four percent.", "A cat was sitting on the mat.")
    assert same > 0.9 and other < 0.5


INVOICE_SCHEMA = {
    "type": "object",
    "properties": {"number": {"type": "string"}, "total": {"type": "number"}, "vendor": {"type": "string"}},
    "required": ["number", "total"],
}


@pytest.mark.parametrize(
    ("output", "value", "note"),
    [
        ('{"number": "A-12", "total": 30.004, "vendor": "ACME Tools Ltd"}', 1.0, None),
        ('{"number": "A-12", "total": 31, "vendor": "ACME Tools Ltd"}', 2 / 3, "fields not matched: total"),
        ('{"number": "B-1", "total": 31, "vendor": "Other"}', 0.0, "fields not matched: number, total, vendor"),
        ('{"number": "A-12", "total": "30"}', 0.0, "schema: at /total: '30' is not of type 'number'"),
        ('{"number": "A-12", "total": ', 0.0, "not valid JSON"),
        ("[1, 2]", 0.0, "schema: at /: [1, 2] is not of type 'object'"),
    ],
)
def test_the_json_scorer_compares_fields_and_says_where_a_schema_fails(output: str, value: float, note: str) -> None:
    spec = {"type": "json", "schema": INVOICE_SCHEMA, "fields": True,
            "checks": {"total": {"tolerance": 0.01}, "vendor": {"contains": True}}}  # fmt: skip
    score = build(TypeAdapter(Scorer).validate_python(spec), Path("."))
    case = EvalCase("c", "c", {}, {"number": "A-12", "total": 30, "vendor": "acme"}, {})
    got = score(output, case)
    assert got == pytest.approx(value)
    assert getattr(got, "note", None) == note


def test_a_json_scorer_schema_that_is_not_a_schema_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a valid JSON Schema"):
        TypeAdapter(Scorer).validate_python({"type": "json", "schema": {"type": 7}})

"""Cases from inline lists, JSONL and CSV, mapped onto prompt variables."""

from __future__ import annotations

import pytest

from promptci.errors import InputError
from promptci.evals.dataset import load_cases
from promptci.evals.plan import read_suite
from promptci.project import Project

from ..conftest import REPO_ROOT, Repo


def _cases(repo: Repo, suite_text: str) -> list:  # type: ignore[type-arg]
    path = repo.write("evals/s.yaml", suite_text)
    project = Project.discover(repo.path)
    suite, _ = read_suite(project, path)
    return load_cases(project, path, suite)


def test_jsonl_rows_are_mapped_and_limited(repo: Repo) -> None:
    repo.write("evals/data/d.jsonl", '{"text": "a", "label": "positive"}\n\n{"text": "b", "label": "negative"}\n')
    cases = _cases(
        repo,
        "prompts: [sentiment]\ndataset: {path: data/d.jsonl, vars: {review: text}, expected: label}\nscorers: [{type: exact}]\n",
    )
    assert [(c.vars, c.expected, c.name) for c in cases] == [
        ({"review": "a"}, "positive", "evals/data/d.jsonl:1"),
        ({"review": "b"}, "negative", "evals/data/d.jsonl:3"),
    ]
    limited = _cases(
        repo,
        "prompts: [sentiment]\ndataset: {path: data/d.jsonl, vars: {review: text}, limit: 1}\nscorers: [{type: exact}]\n",
    )
    assert len(limited) == 1


def test_csv_rows_with_json_cells(repo: Repo) -> None:
    repo.write("evals/data/d.csv", 'text,label,options\n"Hello, world",positive,"[""a"", ""b""]"\n')
    cases = _cases(
        repo,
        "prompts: [sentiment]\ndataset: {path: data/d.csv, vars: {review: text}, expected: label}\nscorers: [{type: exact}]\n",
    )
    assert cases[0].vars == {"review": "Hello, world"} and cases[0].data["options"] == ["a", "b"]


def test_case_ids_are_content_hashes(repo: Repo) -> None:
    suite = "prompts: [sentiment]\ncases:\n  - {vars: {review: x}, expected: positive}\n  - {vars: {review: y}, expected: negative}\nscorers: [{type: exact}]\n"
    first = [c.id for c in _cases(repo, suite)]
    reordered = "prompts: [sentiment]\ncases:\n  - {vars: {review: y}, expected: negative}\n  - {vars: {review: x}, expected: positive}\nscorers: [{type: exact}]\n"
    assert [c.id for c in _cases(repo, reordered)] == first[::-1]
    changed = suite.replace("expected: positive", "expected: negative")
    assert _cases(repo, changed)[0].id != first[0]


def test_missing_column_names_suite_file_and_line(repo: Repo) -> None:
    repo.write("evals/data/d.jsonl", '{"text": "a"}\n{"txt": "b"}\n')
    with pytest.raises(InputError) as err:
        _cases(
            repo,
            "prompts: [sentiment]\ndataset: {path: data/d.jsonl, vars: {review: text}}\nscorers: [{type: exact}]\n",
        )
    assert str(err.value) == "evals/data/d.jsonl:2: row has no column 'text' (suite evals/s.yaml) (columns: txt)"


def test_invalid_json_line(repo: Repo) -> None:
    repo.write("evals/data/d.jsonl", '{"text": "a"}\n{"text": oops}\n')
    with pytest.raises(InputError, match="invalid JSON"):
        _cases(
            repo,
            "prompts: [sentiment]\ndataset: {path: data/d.jsonl, vars: {review: text}}\nscorers: [{type: exact}]\n",
        )


def test_dataset_outside_the_repository_is_refused(repo: Repo) -> None:
    with pytest.raises(InputError, match="outside the repository"):
        _cases(repo, "prompts: [sentiment]\ndataset: {path: ../../outside.jsonl}\nscorers: [{type: exact}]\n")


def test_dogfood_suites_load_their_data() -> None:
    project = Project.discover(REPO_ROOT)
    for path in sorted((REPO_ROOT / "evals").glob("*.yaml")):
        suite, _ = read_suite(project, path)
        cases = load_cases(project, path, suite)
        if suite.converses:  # every case a conversation whose scored turns say what they expect
            assert len(cases) >= 12 and all(any(t.expected for t in c.turns) for c in cases), path.name
            continue
        if any(s.type == "llm-judge" for s in suite.scorers):  # a judged suite, with people's grades beside it
            assert len(cases) >= 24 and path.with_name(f"{path.stem}.grades.jsonl").is_file(), path.name
            continue
        assert len(cases) == 40 and all(c.expected for c in cases), path.name

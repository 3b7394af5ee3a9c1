"""`promptci judge check`: a suite's judge against people's grades, each statistic against
scikit-learn, on the real embedded model and embedding model; and compare's warning."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from promptci.errors import ExitCode, InputError
from promptci.evals.agreement import Grade, Grades, agreement, cohen_kappa, confusion, read_grades

from ..conftest import REPO_ROOT, Repo
from ..hostile.conftest import FUZZ

LABELS = st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), min_size=1, max_size=60)


@FUZZ
@given(LABELS)
def test_kappa_and_confusion_match_scikit_learn(pairs: list[tuple[int, int]]) -> None:
    people, judge = [a for a, _ in pairs], [b for _, b in pairs]
    labels = tuple(range(11))
    assert (confusion(people, judge, labels) == confusion_matrix(people, judge, labels=list(labels))).all()
    for weights in (None, "quadratic"):
        ours = cohen_kappa(people, judge, labels, weights)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")  # scikit-learn's κ is undefined for one grade throughout
            theirs = cohen_kappa_score(people, judge, labels=list(labels), weights=weights)
        if np.isnan(theirs):  # one grade throughout, on both sides: scikit-learn has no κ, ours is 1
            assert ours == 1.0 and len(set(people) | set(judge)) == 1
        else:
            assert ours == pytest.approx(theirs, abs=1e-9)


def test_fixed_grades_against_scikit_learn() -> None:
    people = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1]
    judge = [1, 0, 0, 0, 1, 1, 1, 1, 0, 1]
    assert cohen_kappa(people, judge, (0, 1)) == pytest.approx(cohen_kappa_score(people, judge), abs=1e-6)
    graded = Grades("g", tuple(Grade(i, str(i), g, None) for i, g in enumerate(people)), ordinal=False)
    found = agreement(graded, [[0.9] if j else [0.1] for j in judge], threshold=0.5)
    assert found.kappa == pytest.approx(cohen_kappa_score(people, judge), abs=1e-6) and found.accuracy == 0.8
    assert graded.labels == (0, 1)
    ordinal = agreement(
        Grades("g", graded.rows, ordinal=True), [[g / 10, (g + 1) / 10] for g in (3, 7, 2, 9, 5, 5, 6, 1, 0, 8)],
        threshold=0.5,
    )  # fmt: skip
    assert ordinal.self_agreement == 0.0 and ordinal.repeats == 2  # two grades a step apart, every time


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"case": "a", "grade": 11}', "grade 11 is neither pass/fail nor an integer 0–10"),
        ('{"case": "a", "grade": "maybe"}', "grade 'maybe' is neither"),
        ('{"grade": true}', "each grade names its case"),
        ('{"case": "a", "grade": true, "output": 3}', '"output" is the graded text'),
        ('{"case": "a", "grade": 3}\n{"case": "b", "grade": "pass"}', "grades mix pass/fail and 0–10"),
        ("[1, 2]", "each line must be a JSON object"),
        ('{"case": "a", "grade": ', "invalid JSON"),
    ],
)
def test_a_bad_grades_file_is_refused_at_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "s.grades.jsonl"
    path.write_text('{"case": "ok", "grade": true}\n' + line + "\n")
    with pytest.raises(InputError) as err:
        read_grades(path, "evals/s.grades.jsonl")
    assert message in str(err.value) and ("evals/s.grades.jsonl:2" in str(err.value) or "mix" in message)


@FUZZ
@given(st.text(max_size=300))
def test_any_grades_file_is_read_or_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("g") / "s.grades.jsonl"
    path.write_text(text)
    try:
        found = read_grades(path, "s.grades.jsonl")
    except InputError as exc:
        assert "\n" not in str(exc).strip() and "s.grades.jsonl" in str(exc)
    else:
        assert found.rows and all(0 <= g.grade <= 10 for g in found.rows)


def judge_suite(repo: Repo) -> None:
    """This repository's ticket_summary suite, its data and people's grades, in ``repo``."""
    for rel in ("prompts/ticket_summary.yaml", "evals/ticket_summary.yaml", "evals/ticket_summary.grades.jsonl"):
        shutil.copy(REPO_ROOT / rel, repo.path / rel)
    (repo.path / "evals/data").mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "evals/data/tickets.jsonl", repo.path / "evals/data/tickets.jsonl")
    repo.commit("a judged suite")


@pytest.mark.slow
def test_judge_check_on_the_embedded_model_and_the_embedding_judge(repo: Repo) -> None:
    judge_suite(repo)
    people = [
        1 if json.loads(x)["grade"] == "pass" else 0
        for x in (repo.path / "evals/ticket_summary.grades.jsonl").read_text().splitlines()
    ]
    weak = repo.run("judge", "check", "ticket_summary", "--repeat", "2", "--format", "json")
    assert weak.code == ExitCode.FAILED, weak.err  # SmolLM2 grades every summary alike: κ 0, below 0.6
    found = json.loads(weak.out)
    assert found["n"] == 24 and found["below_min_kappa"] and found["repeats"] == 2
    table = np.array(found["confusion"])
    judge = [j for i in range(2) for j in range(2) for _ in range(table[i, j])]
    truth = [i for i in range(2) for j in range(2) for _ in range(table[i, j])]
    assert sorted(truth) == sorted(people)
    assert found["kappa"] == pytest.approx(cohen_kappa_score(truth, judge) if len(set(judge)) > 1 else 0.0, abs=1e-6)
    embed = repo.run("judge", "check", "ticket_summary", "--scorer", "embedding")
    assert "judge embedding of suite ticket_summary, against 24 people's grades" in embed.out
    assert "Cohen's κ (unweighted)" in embed.out and "confusion (rows: people, columns: judge)" in embed.out
    checks = repo.sql("SELECT scorer, n, kappa FROM judge_checks ORDER BY checked_at")
    assert [c[:2] for c in checks] == [("llm-judge", 24), ("embedding", 24)]
    missing = repo.run("judge", "check", "sentiment")
    assert missing.code == ExitCode.USAGE and "has no llm-judge or embedding scorer" in missing.err


def test_compare_warns_when_the_verdict_rests_on_a_doubtful_judge(repo: Repo) -> None:
    from promptci.project import Project
    from promptci.store import Store

    from ..compare.test_engine import row

    judge_suite(repo)
    project = Project.discover(repo.path)
    db = project.path(project.config.db)
    db.parent.mkdir(exist_ok=True)
    with Store(db) as store:
        for run in ("base", "head"):
            store.start_run(run, git_commit=None, branch=None, dirty=None, command="", config_hash="")
            store.add_results([row(run, f"c{i}", 1.0, suite="ticket_summary") for i in range(10)])
    unchecked = repo.run("compare", "base", "head", "--format", "markdown")
    assert "never checked against people's grades" in unchecked.out
    from promptci.evals.judging import judge_hash, judges
    from promptci.evals.plan import build_plan

    task = build_plan(project, [repo.path / "evals/ticket_summary.yaml"]).tasks[0]
    name, spec = judges(task)[0]
    with Store(db) as store:
        store.add_judge_check(["ticket_summary", name, judge_hash(spec, task), "g", 24, False, 0.12, 0.5, None, 1])
    low = repo.run("compare", "base", "head")
    assert "whose κ with people is 0.12, below gate.min_kappa 0.6 (24 grades)" in low.out
    with Store(db) as store:
        store.add_judge_check(["ticket_summary", name, judge_hash(spec, task), "g", 24, False, 0.8, 0.9, None, 1])
    good = repo.run("compare", "base", "head", "--format", "markdown")
    assert "κ with people" not in good.out and "never checked" not in good.out

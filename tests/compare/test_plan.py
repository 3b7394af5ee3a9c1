"""`promptci plan`: the cases a suite needs, from the flips between its stored prompt versions."""

from __future__ import annotations

import json
from datetime import timedelta

from promptci.compare.power import cases_needed, detectable_drop
from promptci.errors import ExitCode
from promptci.project import Project
from promptci.store import Store

from ..conftest import Repo
from .test_engine import row


def store_versions(repo: Repo, versions: list[list[float]]) -> None:
    """Each version of the sentiment prompt scored on the same cases, a minute apart."""
    project = Project.discover(repo.path)
    db = project.path(project.config.db)
    db.parent.mkdir(exist_ok=True)
    with Store(db) as store:
        for i, scores in enumerate(versions):
            run = f"run{i}"
            store.start_run(run, git_commit=None, branch=None, dirty=None, command="", config_hash="")
            rows = []
            for c, score in enumerate(scores):
                r = row(run, f"c{c}", score, suite="sentiment")
                rows.append(r.__class__(**{**r.__dict__, "prompt": "sentiment", "prompt_hash": f"v{i}",
                                           "created_at": r.created_at + timedelta(minutes=i)}))  # fmt: skip
            store.add_results(rows)


def test_plan_assumes_what_it_must_and_says_so(repo: Repo) -> None:
    result = repo.run("plan", "sentiment", "--drop", "0.1", "--format", "json")
    assert result.code == ExitCode.OK, result.err
    (suite,) = json.loads(result.out)["suites"]
    assert suite["pairs"] == 0 and suite["spread"] == 0.5 and suite["pass_rate"] is None
    assert any("no stored results" in a for a in suite["assumed"])
    assert suite["needed"]["0.8"] == cases_needed(0.1, binary=True, discordance=0.5, alpha=0.05, power=0.8)
    text = repo.run("plan", "sentiment", "--drop", "0.1")
    assert "(assumed)" in text.out and "no two stored versions to measure flips" in text.err


def test_plan_measures_flips_between_stored_versions(repo: Repo) -> None:
    first = [1.0] * 30 + [0.0] * 10
    second = [0.0] * 4 + [1.0] * 26 + [1.0] * 2 + [0.0] * 8  # 6 of 40 flipped
    third = second[:]  # nothing flipped
    third[10], third[35] = 0.0, 1.0  # 2 of 40 flipped
    store_versions(repo, [first, second, third])
    result = repo.run("plan", "sentiment", "--drop", "0.05", "--power", "0.8", "--power", "0.9", "--format", "json")
    assert result.code == ExitCode.OK, result.err
    (plan,) = json.loads(result.out)["suites"]
    flips = (6 / 40 + 2 / 40) / 2
    assert plan["pairs"] == 2 and abs(plan["spread"] - flips) < 1e-12 and plan["binary"]
    assert plan["pass_rate"] == sum(third) / 40
    assert plan["assumed"] == ["flip rate from only 2 pair(s) of prompt versions"]
    for power in (0.8, 0.9):
        expected = cases_needed(0.05, binary=True, discordance=flips, alpha=0.05, power=power)
        assert plan["needed"][str(power)] == expected
    cases = plan["cases"]
    assert plan["detects"] == detectable_drop(cases, binary=True, discordance=flips, alpha=0.05, power=0.8).drop
    assert plan["needed"]["0.9"] > plan["needed"]["0.8"] > cases  # the example suite is too small for 5 points
    table = repo.run("plan", "sentiment", "--drop", "0.05")
    assert "0.100 (2 pairs)" in table.out and "cases for 5.0 pts at 80%" in table.out

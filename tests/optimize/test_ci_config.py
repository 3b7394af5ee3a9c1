"""Opt-in optimize settings: validated by lint, and the prompts --changed, --due and --all select."""

from __future__ import annotations

import json

import pytest

from promptci.optimize.choose import is_due, settings_for
from promptci.optimize.hygiene import Hygiene
from promptci.settings import OptimizeSpec

from ..conftest import Repo
from .conftest import add_task

SENTIMENT_OPTIMIZE = """
optimize:
  suite: sentiment
  method: opro
  budget: {calls: 300}
  schedule: weekly
"""
NAVIGATE_CONFIG = """
optimize:
  navigate:
    suite: navigate
    method: gpo
    min_gain: 0.05
"""


@pytest.fixture
def opted(repo: Repo) -> Repo:
    """sentiment opts in through its own file, navigate through promptci.yaml."""
    add_task(repo, "navigate", 40)
    path = repo.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text() + SENTIMENT_OPTIMIZE)
    config = repo.path / "promptci.yaml"
    config.write_text(config.read_text() + NAVIGATE_CONFIG)
    repo.commit("opt in")
    return repo


def plan(repo: Repo, *args: str) -> list[str]:
    result = repo.run("optimize", *args, "--plan")
    assert result.code == 0, result.err
    names: list[str] = json.loads(result.out)
    return names


def test_settings_from_an_optimize_block() -> None:
    spec = OptimizeSpec.model_validate(
        {"suite": "s", "method": "greater", "budget": {"seconds": 600}, "split": "0.4/0.2/0.4"}
    )
    settings = settings_for(spec, steps=5, budget=None)
    assert (settings.method, settings.steps, settings.split, settings.budget) == (
        "greater",
        5,
        (0.4, 0.2, 0.4),
        {"seconds": 600.0},
    )


def test_the_optimize_block_does_not_change_the_prompt_version(repo: Repo) -> None:
    from promptci.project import Project
    from promptci.prompts.registry import Registry

    before = Registry(Project.discover(repo.path)).get("sentiment").content_hash
    path = repo.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text() + SENTIMENT_OPTIMIZE)
    assert Registry(Project.discover(repo.path)).get("sentiment").content_hash == before


def test_schedules() -> None:
    import datetime as dt

    monday, tuesday, first = dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 12, 1)
    assert is_due("daily", tuesday) and not is_due(None, monday)
    assert is_due("weekly", monday) and not is_due("weekly", tuesday)
    assert is_due("monthly", first) and not is_due("monthly", monday)


def test_changed_selects_opted_in_prompts_whose_file_or_settings_changed(opted: Repo) -> None:
    assert plan(opted, "--changed", "--base", "HEAD") == []
    path = opted.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text().replace("You label product reviews.", "You label reviews."))
    assert plan(opted, "--changed", "--base", "HEAD") == ["sentiment"]  # uncommitted edits count
    opted.commit("edit sentiment")
    assert plan(opted, "--changed", "--base", "HEAD~1") == ["sentiment"]
    config = opted.path / "promptci.yaml"
    config.write_text(config.read_text().replace("min_gain: 0.05", "min_gain: 0.1"))
    opted.commit("raise navigate's bar")
    assert plan(opted, "--changed", "--base", "HEAD~1") == ["navigate"]  # only its settings changed
    assert plan(opted, "--all") == ["navigate", "sentiment"]
    assert plan(opted, "--due", "--today", "2026-11-23") == ["sentiment"]  # weekly, on Mondays
    assert plan(opted, "--due", "--today", "2026-11-24") == []


def test_a_change_made_by_a_merged_optimization_does_not_start_another_pass(opted: Repo) -> None:
    path = opted.path / "prompts/sentiment.yaml"
    path.write_text(path.read_text().replace("You label product reviews.", "You label reviews."))
    opted.git("commit", "-qam", "optimize sentiment (opro): better\n\nPromptci-Optimization: 20261122-000000-abcdef")
    result = opted.run("optimize", "--changed", "--base", "HEAD~1", "--plan")
    assert result.code == 0 and json.loads(result.out) == []
    assert "changed only by promptci's own optimization commits" in result.err


def test_asking_for_a_prompt_without_settings_is_an_error(opted: Repo) -> None:
    result = opted.run("optimize", "no_such_prompt", "--plan")
    assert result.code == 2 and "prompt 'no_such_prompt' has no optimize settings" in result.err
    result = opted.run("optimize", "--plan")
    assert result.code == 2 and "NAME, --changed, --due or --all" in result.err


def test_lint_checks_optimize_blocks(opted: Repo) -> None:
    assert opted.run("lint").code == 0
    path = opted.path / "prompts/sentiment.yaml"
    text = path.read_text()
    path.write_text(text.replace("suite: sentiment", "suite: navigate"))
    result = opted.run("lint")
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "suite: navigate" in s)
    assert result.code == 1
    assert f"prompts/sentiment.yaml:{line}:10: error: optimize: suite 'navigate' does not use prompt 'sentiment'" in (
        result.out
    )
    path.write_text(text.replace("suite: sentiment", "suite: nowhere"))
    assert "optimize: no suite named 'nowhere' under evals/" in opted.run("lint").out
    path.write_text(text.replace("method: opro", "method: sgd"))
    result = opted.run("lint")
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "method: sgd" in s)
    assert result.code == 1
    assert (
        f"prompts/sentiment.yaml:{line}:3: error: unknown method 'sgd' (one of: catalyst, demos, gepa, gpo, greater, opro, textgrad)"
        in (result.out)
    )
    path.write_text(text.replace("method: opro", "method: opro\n  options: {top: 0, exemplars: 2}"))
    result = opted.run("lint")
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "options:" in s)
    assert result.code == 1
    assert (
        f"prompts/sentiment.yaml:{line}:13: error: opro.top: Input should be greater than or equal to 1" in result.out
    )
    path.write_text(text.replace("method: opro", "method: opro\n  options: {topk: 40}"))
    result = opted.run("lint")
    assert (
        result.code == 1
        and "opro.topk: Extra inputs are not permitted (opro options: hygiene, exemplars," in result.out
    )
    path.write_text(text)
    config = opted.path / "promptci.yaml"
    config.write_text(config.read_text() + "  sentiment:\n    suite: sentiment\n")
    result = opted.run("lint")
    assert result.code == 1
    assert "promptci.yaml" in result.out and "optimize settings for 'sentiment' are also in" in result.out


def test_method_options_in_an_optimize_block_reach_the_search(opted: Repo) -> None:
    """The block's options, validated by the method's config, then --set on top; a bad one
    stops the pass at its line in promptci.yaml, before anything runs."""
    from promptci.optimize.choose import opted_in
    from promptci.project import Project

    config = opted.path / "promptci.yaml"
    base = config.read_text()
    config.write_text(base.replace("method: gpo", "method: gpo\n    options: {k: 2, edit_final: 5}"))
    optin = opted_in(Project.discover(opted.path))["navigate"]
    settings = settings_for(optin.spec, {"k": 4})
    assert settings.config == {
        "hygiene": Hygiene().model_dump(), "k": 4, "edit_initial": 50, "edit_final": 5, "exemplars": 3, "temperature": 1.0, "max_tokens": 120,
    }  # fmt: skip
    config.write_text(base.replace("method: gpo", "method: gpo\n    options: {k: many}"))
    result = opted.run("optimize", "navigate", "--dry-run")
    line = next(i for i, s in enumerate(config.read_text().splitlines(), 1) if "options:" in s)
    assert result.code == 2
    assert f"promptci.yaml:{line}:15: gpo.k: Input should be a valid integer" in result.err
    config.write_text(base)
    result = opted.run("optimize", "navigate", "--dry-run", "--set", "greater.topk=3")
    assert result.code == 2 and "--set greater.topk=3: an option of 'greater', but the method is 'gpo'" in result.err


def test_a_bad_optimize_block_in_the_config_names_file_and_line(opted: Repo) -> None:
    config = opted.path / "promptci.yaml"
    config.write_text(config.read_text().replace("min_gain: 0.05", "min_gain: 2"))
    line = next(i for i, s in enumerate(config.read_text().splitlines(), 1) if "min_gain: 2" in s)
    result = opted.run("optimize", "--all", "--plan")
    assert result.code == 2
    assert f"promptci.yaml:{line}:" in result.err and "less than or equal to 1" in result.err


def test_a_refused_label_leaves_the_pr_standing() -> None:
    from http.server import BaseHTTPRequestHandler

    from promptci.github import upsert_pull_request

    from ..conftest import json_server

    seen: list[tuple[str, str]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        h.rfile.read(int(h.headers.get("Content-Length") or 0))
        seen.append((h.command, h.path.split("?")[0]))
        if h.path.endswith("/labels"):
            return 403, {"message": "Resource not accessible by integration"}
        if h.command == "GET":
            return 200, []
        return 201, {"number": 9, "html_url": "https://gh/pull/9"}

    with json_server(handle) as url:
        outcome = upsert_pull_request(
            title="t", body="b", head="promptci/optimize/x/main", base="main", labels=["promptci-optimization"],
            token="tok", repo="acme/prompts", api=url,
        )  # fmt: skip
    assert (outcome.action, outcome.number) == ("created", 9)
    assert outcome.reason == "labels not set: GitHub answered HTTP 403"
    assert seen == [("GET", "/repos/acme/prompts/pulls"), ("POST", "/repos/acme/prompts/pulls"),
                    ("POST", "/repos/acme/prompts/issues/9/labels")]  # fmt: skip


def test_an_overlong_body_loses_its_candidate_table_first() -> None:
    from promptci.optimize.publish import BODY_LIMIT, _trimmed

    head, tail = "## result\n" + "x" * 100, "\n### Run\nfacts\n"
    body = head + "<details><summary>Every candidate</summary>\n" + "| row |\n" * 20_000 + "</details>" + tail
    trimmed = _trimmed(body)
    assert len(trimmed) <= BODY_LIMIT and trimmed.startswith(head) and trimmed.endswith(tail)
    assert "too long for a PR body" in trimmed and "| row |" not in trimmed

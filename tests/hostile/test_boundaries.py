"""What a contributor's files may reach: modules, files and settings stay inside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Repo
from tests.hostile.conftest import one_line

SUITE = "prompts: [sentiment]\nscorers:\n  - type: python\n    function: {function}\ncases:\n  - vars: {{review: fine}}\n    expected: positive\n"


@pytest.mark.parametrize("function", ["os:system", "subprocess:getoutput", "outside_module:score"])
def test_a_python_scorer_only_comes_from_the_repository(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str
) -> None:
    outside = tmp_path / "site"
    outside.mkdir()
    (outside / "outside_module.py").write_text("def score(output, expected, case):\n    return 1.0\n")
    monkeypatch.syspath_prepend(str(outside))
    repo.write("evals/py.yaml", SUITE.format(function=function))
    module = function.partition(":")[0]
    r = repo.run("lint", "evals/py.yaml")
    assert r.code == 1
    assert f"evals/py.yaml:4:15: error: python scorer module '{module}' is not a file in the repository" in r.out
    r = repo.run("eval", "evals/py.yaml")
    assert r.code == 2 and f"python scorer module '{module}' is not a file in the repository" in one_line(r.err)


def test_a_repository_scorer_still_runs(repo: Repo) -> None:
    repo.write("checks/scoring.py", "def score(output, expected, case):\n    return 1.0\n")
    repo.write("checks/__init__.py", "")
    repo.write("evals/py.yaml", SUITE.format(function="checks.scoring:score"))
    assert repo.run("lint", "evals/py.yaml").code == 0


def test_a_prompt_linked_outside_the_repository_is_not_read(repo: Repo, tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("name: stolen\ntemplate: 'the host file'\n")
    os.symlink(secret, repo.path / "prompts/stolen.yaml")
    r = repo.run("ls")
    assert r.code == 2 and "is outside the repository" in one_line(r.err)
    r = repo.run("render", "stolen")
    assert r.code == 2 and "the host file" not in r.out + r.err
    r = repo.run("lint")
    assert r.code == 1 and "prompts/stolen.yaml:1:1: error:" in r.out and "outside the repository" in r.out


LOCAL = ""
API = "  provider: openai\n  model: m\n"  # an API model's params are checked the same way
URL = "base_url: 'http://127.0.0.1:9/v1', "


@pytest.mark.parametrize(
    ("model", "param", "message"),
    [
        (LOCAL, "batch_size: 0", "batch_size: 0 is not a whole number from 1 to 4096"),
        (LOCAL, "device: tpu", "device: 'tpu' is not auto, cpu, mps, cuda or cuda:N"),
        (LOCAL, "dtype: int3", "dtype: 'int3' is not auto, float32, float16 or bfloat16"),
        (API, URL + "timeout: .nan", "timeout: nan is not a positive number of seconds, at most 86400"),
        (API, URL + "timeout: .inf", "timeout: inf is not a positive number of seconds, at most 86400"),
        (API, URL + "concurrency: 100000", "concurrency: 100000 is not a whole number from 1 to 256"),
        (API, URL + "max_retries: true", "max_retries: True is not a whole number from 0 to 20"),
        (API, URL + "backoff: -1", "backoff: -1 is not a number of seconds from 0 to 3600"),
        (API, URL + "max_backoff: 1.0e+9", "max_backoff: 1000000000.0 is not a number of seconds from 0 to 3600"),
        (
            API,
            URL + "price: {input: .nan}",
            "price: {'input': nan} is not {input: USD, output: USD} per million tokens, each a number from 0 to 10^9",
        ),
    ],
)
def test_bad_model_params_exit_2_and_fail_lint_alike(repo: Repo, model: str, param: str, message: str) -> None:
    text = (repo.path / "prompts/sentiment.yaml").read_text()
    block = f"{model}  max_tokens: 4\n  params: {{{param}}}\n"
    repo.write("prompts/sentiment.yaml", text.replace("  max_tokens: 4\n", block))
    where = f"prompts/sentiment.yaml:{18 + model.count(chr(10))}:3"  # the params line, after the model's
    _refused_alike(repo, f"model.params: {message}", where)


def _refused_alike(repo: Repo, message: str, where: str = "") -> None:
    """``lint`` reports ``message`` at ``where`` (exit 1), and ``eval`` refuses with it (exit 2)."""
    r = repo.run("lint")
    assert r.code == 1 and f"{where}: error: {message}" in r.out if where else message in r.out, r
    r = repo.run("eval")
    assert r.code == 2 and (one_line(r.err) == f"error: {where}: {message}" if where else message in one_line(r.err))


@pytest.mark.parametrize(
    ("setting", "field"),
    [("repeat: 1000000000", "repeat"), ("case_threshold: .nan", "case_threshold"), ("k: 0", "k")],
)
def test_bad_suite_numbers_exit_2_and_fail_lint_alike(repo: Repo, setting: str, field: str) -> None:
    suite = repo.path / "evals/sentiment.yaml"
    suite.write_text(suite.read_text() + setting + "\n")
    _refused_alike(repo, f"{field}:")


def test_outside_any_project_commands_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptci.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["ls"], ["eval"], ["lint"]):
        code = main(["-C", str(empty), *args])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert "not in a promptci project" in one_line(err)
    assert list(empty.iterdir()) == []


def test_a_vars_file_outside_the_project_is_not_read(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "vars.yaml"
    outside.write_text("review: from outside\n")
    r = repo.run("render", "sentiment", "--vars-file", str(outside))
    assert r.code == 2 and "is outside the repository" in one_line(r.err)
    (repo.path / "linked.yaml").symlink_to(outside)
    r = repo.run("render", "sentiment", "--vars-file", "linked.yaml")
    assert r.code == 2 and "is outside the repository" in one_line(r.err)
    repo.write("vars.yaml", "review: from inside\n")
    r = repo.run("render", "sentiment", "--vars-file", "vars.yaml")
    assert r.code == 0 and "from inside" in r.out

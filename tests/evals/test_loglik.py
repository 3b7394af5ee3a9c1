"""Choices ranked by the local model's log-likelihood: nothing generated, nothing parsed."""

from __future__ import annotations

import json

import duckdb
import pytest

from promptci.errors import ExitCode

from ..conftest import Repo
from ..optimize.conftest import add_task

CHOICE = '  - type: choice\n    choices: ["True", "False"]\n'
LOGLIK = CHOICE + "    mode: loglik\n"


def loglik_suite(repo: Repo, extra: str = "") -> None:
    path = repo.path / "evals/navigate.yaml"
    text = path.read_text().replace(CHOICE, LOGLIK + extra)
    assert "mode: loglik" in text
    path.write_text(text)


def test_an_api_provider_is_refused_at_the_mode_line(repo: Repo) -> None:
    add_task(repo, "navigate", 10)
    loglik_suite(repo)
    suite = repo.path / "evals/navigate.yaml"
    suite.write_text(suite.read_text() + "model:\n  provider: openai\n  model: gpt-x\n")
    line = next(
        i for i, s in enumerate((repo.path / "evals/navigate.yaml").read_text().splitlines(), 1) if "mode:" in s
    )
    result = repo.run("eval")
    assert result.code == ExitCode.USAGE
    assert f"evals/navigate.yaml:{line}:5: mode: loglik needs log-probabilities, and provider 'openai'" in result.err
    assert "use a local transformers model" in result.err
    lint = repo.run("lint")
    assert lint.code == 1 and f"evals/navigate.yaml:{line}:5: error: mode: loglik needs" in lint.out


def test_normalize_and_calibrate_need_loglik(repo: Repo) -> None:
    add_task(repo, "navigate", 10)
    path = repo.path / "evals/navigate.yaml"
    path.write_text(path.read_text().replace(CHOICE, CHOICE + "    calibrate: true\n"))
    result = repo.run("lint")
    assert result.code == 1 and "normalize and calibrate need mode: loglik" in result.out


@pytest.mark.slow
def test_choices_ranked_by_likelihood_are_stored_with_their_logprobs(repo: Repo) -> None:
    add_task(repo, "navigate", 12)
    loglik_suite(repo)
    first = repo.run("eval")
    assert first.code in (ExitCode.OK, ExitCode.FAILED), first.err
    db = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = db.execute(
        "SELECT output, logprobs, tokens_out, score, cached FROM results WHERE suite = 'navigate' ORDER BY case_id"
    ).fetchall()
    db.close()
    assert len(rows) == 12
    for output, logprobs, tokens_out, score, cached in rows:
        lp = json.loads(logprobs)["logprobs"]
        assert set(lp) == {"True", "False"} and all(v < 0 for v in lp.values())
        assert output == max(lp, key=lp.get)  # the likelier choice, verbatim
        assert tokens_out == 0 and not cached and score in (0.0, 1.0)
    again = repo.run("eval")
    assert again.code == first.code
    db = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    cached = db.execute(
        "SELECT output, logprobs FROM results WHERE cached AND suite = 'navigate' ORDER BY case_id"
    ).fetchall()
    assert cached == [(o, lp) for o, lp, *_ in rows]  # the cache keeps the log-probabilities too


@pytest.mark.slow
def test_calibration_divides_out_the_prior(repo: Repo) -> None:
    add_task(repo, "navigate", 12)
    loglik_suite(repo, "    calibrate: true\n")
    assert repo.run("eval").code in (ExitCode.OK, ExitCode.FAILED)
    db = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = [json.loads(x) for (x,) in db.execute("SELECT logprobs FROM results WHERE suite = 'navigate'").fetchall()]
    priors = {json.dumps(r["prior"], sort_keys=True) for r in rows}
    assert len(priors) == 1  # one content-free input for every case
    for r in rows:
        lp, prior, ranked = r["logprobs"], r["prior"], r["ranked"]
        margin = (lp["True"] - lp["False"]) - (prior["True"] - prior["False"])
        assert ranked["True"] - ranked["False"] == pytest.approx(margin, abs=1e-3)

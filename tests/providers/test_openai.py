"""The openai provider against a real llm-katan server: round trips, retries and recorded faults."""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb
import pytest

from promptci.errors import ExitCode

from ..conftest import Katan, Repo

pytestmark = pytest.mark.slow


def _suite(base_url: str, **params: object) -> str:
    settings = {"base_url": base_url, "backoff": 0.01, "max_retries": 3, **params}
    return (
        "prompts: [sentiment]\n"
        f"model: {{provider: openai, model: echo-model, max_tokens: 32, params: {json.dumps(settings)}}}\n"
        "scorers: [{type: contains, value: 'User: Review:'}]\n"
        "cases:\n" + "".join(f"  - {{vars: {{review: 'review {i}'}}, expected: x}}\n" for i in range(4))
    )


def _rows(repo: Repo) -> list[tuple]:  # type: ignore[type-arg]
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT output, error, score, tokens_in, tokens_out FROM results ORDER BY case_id"
        ).fetchall()
    finally:
        con.close()


def _cached(repo: Repo) -> int:
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM cache").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_round_trip_records_output_and_tokens(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo")
    repo.write("evals/sentiment.yaml", _suite(server.base_url))
    result = repo.run("eval", "-j", "4")
    assert result.code == ExitCode.OK, result.out + result.err
    rows = _rows(repo)
    assert len(rows) == 4
    for output, error, score, tokens_in, tokens_out in rows:
        assert error is None and score == 1.0 and "[echo] model=echo-model" in output
        assert tokens_in > 0 and tokens_out > 0
    assert _cached(repo) == 4


def test_server_errors_are_retried_then_recorded_never_scored(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo", "--error-rate", "1.0")
    repo.write("evals/sentiment.yaml", _suite(server.base_url))
    result = repo.run("eval")
    assert result.code == ExitCode.FAILED and "error" in result.out
    rows = _rows(repo)
    assert len(rows) == 4
    for output, error, score, *_ in rows:
        assert output is None and score is None and error.startswith("HTTP 500 after 3 retries")
    assert _cached(repo) == 0


def test_flaky_server_succeeds_through_retries(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo", "--error-rate", "0.5")
    repo.write("evals/sentiment.yaml", _suite(server.base_url, max_retries=15))
    assert repo.run("eval").code == ExitCode.OK
    assert all(error is None for _, error, *_ in _rows(repo))


def test_rate_limits_are_retried_then_recorded(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo", "--rate-limit-after", "2")
    repo.write("evals/sentiment.yaml", _suite(server.base_url))
    assert repo.run("eval", "-j", "1").code == ExitCode.FAILED
    errors = [error for _, error, *_ in _rows(repo)]
    assert sum(e is None for e in errors) == 2
    assert sum(str(e).startswith("HTTP 429 after 3 retries") for e in errors) == 2


def test_timeouts_are_recorded(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo", "--latency-ms", "3000")
    repo.write("evals/sentiment.yaml", _suite(server.base_url, timeout=0.5, max_retries=1))
    assert repo.run("eval", "-j", "4").code == ExitCode.FAILED
    assert all(error.startswith("APITimeoutError after 1 retry") for _, error, *_ in _rows(repo))


def test_gateway_timeouts_after_n_requests(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo", "--timeout-after", "1")
    repo.write("evals/sentiment.yaml", _suite(server.base_url, max_retries=1))
    assert repo.run("eval", "-j", "1").code == ExitCode.FAILED
    errors = [error for _, error, *_ in _rows(repo)]
    assert sum(e is None for e in errors) == 1
    assert sum(str(e).startswith("HTTP 504") for e in errors) == 3


def test_unreachable_server_is_an_error_per_case(repo: Repo) -> None:
    repo.write("evals/sentiment.yaml", _suite("http://127.0.0.1:9/v1", max_retries=0))
    assert repo.run("eval").code == ExitCode.FAILED
    assert all(error.startswith("APIConnectionError") for _, error, *_ in _rows(repo))


def test_budget_stops_new_calls(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo")
    repo.write("evals/sentiment.yaml", _suite(server.base_url))
    result = repo.run("eval", "-j", "1", "--budget", "calls=2")
    assert result.code == ExitCode.FAILED and "budget spent: 2 not run" in result.err
    assert len(_rows(repo)) == 2
    assert repo.run("eval", "--budget", "nonsense").code == ExitCode.USAGE

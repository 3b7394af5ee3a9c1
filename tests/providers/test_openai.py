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


def test_sigterm_marks_the_run_interrupted_and_a_rerun_resumes(repo: Repo, katan: Callable[..., Katan]) -> None:
    import signal
    import subprocess
    import sys
    import time

    server = katan("-b", "echo", "--latency-ms", "300")
    cases = "".join(f"  - {{vars: {{review: 'review {i}'}}, expected: x}}\n" for i in range(30))
    repo.write("evals/sentiment.yaml", _suite(server.base_url).split("cases:\n")[0] + "cases:\n" + cases)
    cmd = [sys.executable, "-m", "promptci", "-C", str(repo.path), "eval", "-j", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120  # however long start-up takes on a loaded machine
    while "cases to run" not in proc.stderr.readline() and time.monotonic() < deadline:
        pass
    time.sleep(2)  # a few of the 30 answers (300 ms each, one at a time) are in
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    status = con.execute("SELECT status FROM runs").fetchall()
    row = con.execute("SELECT count(*) FROM results").fetchone()
    distinct = con.execute("SELECT count(DISTINCT (case_id, repeat_index)) FROM results").fetchone()
    con.close()
    assert row == distinct  # the final flush never writes a row twice
    kept = int(row[0]) if row else 0
    assert status == [("interrupted",)] and 0 < kept < 30
    out = repo.path / "o.json"
    repo.run("eval", "-j", "8", "-o", str(out))
    usage = json.loads(out.read_text())["usage"]
    assert usage["cached"] >= kept and usage["cached"] + usage["calls"] == 30


def test_cache_commands(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo")
    repo.write("evals/sentiment.yaml", _suite(server.base_url))
    repo.run("eval")
    info = json.loads(repo.run("cache", "info", "--format", "json").out)
    assert info["entries"] == 4 and info["models"] == {f"openai:echo-model@{server.base_url.split('://')[1]}": 4}
    assert repo.run("cache", "clear", "--model", "nope").out.strip() == "removed 0 cached answers"
    assert repo.run("cache", "clear").out.strip() == "removed 4 cached answers"
    assert _rows(repo), "stored results survive a cache clear"


def test_cost_follows_the_configured_price(repo: Repo, katan: Callable[..., Katan]) -> None:
    server = katan("-b", "echo")
    repo.write("evals/sentiment.yaml", _suite(server.base_url, price={"input": 1_000_000, "output": 2_000_000}))
    out = repo.path / "o.json"
    repo.run("eval", "-o", str(out))
    data = json.loads(out.read_text())
    for row in data["results"]:
        assert row["cost"] == row["tokens_in"] * 1 + row["tokens_out"] * 2
    assert data["usage"]["cost"] == sum(r["cost"] for r in data["results"])


def test_model_option_overrides_every_suite(
    repo: Repo, katan: Callable[..., Katan], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = katan("-b", "echo")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    out = repo.path / "o.json"
    repo.run("eval", "--model", "openai:echo-model", "--prompt", "sentiment", "-o", str(out))
    data = json.loads(out.read_text())
    assert data["suites"][0]["model"].startswith("openai:echo-model@127.0.0.1")
    assert all("[echo]" in r["output"] for r in data["results"]) and len(data["results"]) == 6
    typo = repo.run("eval", "--prompt", "no-such-prompt")  # a typo in CI must not pass as "nothing to do"
    assert typo.code == 2 and "no prompt or pipeline named 'no-such-prompt'" in typo.err


def test_llm_judge_through_a_real_provider(repo: Repo, katan: Callable[..., Katan]) -> None:
    # The echo backend repeats the judge prompt, rubric included, so the grade it carries comes back.
    server = katan("-b", "echo")
    judge = json.dumps({"provider": "openai", "model": "echo-model", "params": {"base_url": server.base_url}})
    suite = _suite(server.base_url).replace(
        "scorers: [{type: contains, value: 'User: Review:'}]",
        f"scorers:\n  - {{type: llm-judge, rubric: 'Grade it SCORE: 8 whatever it says', repeat: 2, model: {judge}}}",
    )
    repo.write("evals/sentiment.yaml", suite)
    out = repo.path / "o.json"
    assert repo.run("eval", "-o", str(out)).code == ExitCode.OK
    rows = json.loads(out.read_text())["results"]
    assert [r["scores"] for r in rows] == [{"llm-judge": 0.8}] * 4
    repo.write("evals/sentiment.yaml", suite.replace("SCORE: 8", "no grade here"))
    repo.run("eval", "-o", str(out))
    assert all(
        r["error"].startswith("scorer: ValueError: judge gave no grade") for r in json.loads(out.read_text())["results"]
    )

"""Whatever an API server sends back is that case's answer or that case's error, never the run's:
a malformed reply fails its own case with its reason, and every other answer is stored and cached."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import duckdb
import pytest

from tests.conftest import RawReply, Repo, chat_reply, raw_server

GOOD_USAGE = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}


def _json(payload: Any) -> RawReply:
    return RawReply(body=json.dumps(payload).encode())


def _usage(**usage: Any) -> RawReply:
    reply = chat_reply("m", "positive")
    reply["usage"] = {**GOOD_USAGE, **usage}
    return RawReply(body=json.dumps(reply).encode().replace(b'"NaN"', b"NaN"))


# Each malformed reply, and the reason its case is stored with.
MALFORMED: dict[str, tuple[Callable[[], RawReply], str]] = {
    "an HTML page with 200": (
        lambda: RawReply(body=b"<html><body>502 Bad Gateway</body></html>", headers={"Content-Type": "text/html"}),
        "not JSON (it begins '<html>",
    ),
    "truncated JSON": (lambda: RawReply(body=json.dumps(chat_reply("m", "positive")).encode()[:40]), "not valid JSON"),
    "NaN prompt tokens": (lambda: _usage(prompt_tokens="NaN"), "not valid JSON"),
    "a 400-digit token count": (lambda: _usage(prompt_tokens=10**400), "outside 0 to"),
    "a string token count": (lambda: _usage(completion_tokens="3"), "not a whole number"),
    "negative usage": (lambda: _usage(prompt_tokens=-432_000), "outside 0 to"),
    "a body over 2 MiB": (lambda: _json(chat_reply("m", "positive " * 1_000_000)), "body is over 2048 KiB"),
    "JSON nested 100,000 deep": (lambda: RawReply(body=b"[" * 100_000 + b"]" * 100_000), "nests deeper than 64 levels"),
    "not UTF-8": (lambda: RawReply(body=b'{"choices": "\xff\xfe"}'), "not UTF-8"),
    "a list, not an object": (lambda: _json([1, 2, 3]), "JSON list, not an object"),
    "content that is a number": (
        lambda: _json({"choices": [{"message": {"role": "assistant", "content": 7}}]}),
        "content is a int, not text",
    ),
}

REVIEWS = [f"review number {i}" for i in range(8)]


def _suite(base_url: str, provider: str = "openai", **params: Any) -> str:
    settings = {"base_url": base_url + "/v1", "backoff": 0.01, "max_retries": 0, "concurrency": 4, **params}
    model = "openai/m" if provider == "litellm" else "m"
    return (
        "prompts: [sentiment]\n"
        f"model: {{provider: {provider}, model: {model}, max_tokens: 8, params: {json.dumps(settings)}}}\n"
        "scorers: [{type: contains, value: positive}]\nthreshold: 0.5\n"
        "cases:\n" + "".join(f"  - {{vars: {{review: '{r}'}}, expected: positive}}\n" for r in REVIEWS)
    )


@contextmanager
def _server(bad: dict[str, Callable[[], RawReply]]) -> Iterator[tuple[str, list[str]]]:
    """Answers well, except for the reviews named in ``bad``; records which review each request was."""
    seen: list[str] = []

    def handle(h: BaseHTTPRequestHandler, body: Any) -> RawReply:
        text = json.dumps(body["messages"])
        review = next(r for r in reversed(REVIEWS) if r in text)
        seen.append(review)
        return bad[review]() if review in bad else _json(chat_reply("m", "positive"))

    with raw_server(handle) as url:
        yield url, seen


def _results(repo: Repo) -> dict[str, tuple[str | None, str | None, int | None]]:
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT input, output, error, tokens_in FROM results").fetchall()
    return {next(r for r in REVIEWS if r in str(i)): (o, e, t) for i, o, e, t in rows}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_reply_fails_its_case_alone_and_the_rest_is_kept(repo: Repo, kind: str) -> None:
    _malformed_replies_fail_alone(repo, kind, "openai")


# LiteLLM parses the reply itself (and reads "3" as the number 3); what it hands back passes the
# same checks.
LITELLM_SHOWN = {
    "a 400-digit token count": "outside 0 to",
    "negative usage": "outside 0 to",
    "an HTML page with 200": "",
    "truncated JSON": "",
}


@pytest.mark.slow  # imports litellm
@pytest.mark.parametrize("kind", sorted(LITELLM_SHOWN))
def test_under_litellm_a_malformed_reply_fails_its_case_alone_too(repo: Repo, kind: str) -> None:
    _malformed_replies_fail_alone(repo, kind, "litellm", LITELLM_SHOWN[kind])


def _malformed_replies_fail_alone(repo: Repo, kind: str, provider: str, reason: str | None = None) -> None:
    reply, own_reason = MALFORMED[kind]
    reason = own_reason if reason is None else reason
    with _server({REVIEWS[2]: reply, REVIEWS[5]: reply}) as (url, seen):
        repo.write("evals/sentiment.yaml", _suite(url, provider))
        r = repo.run("eval")
        assert r.code == 1, r  # two cases errored: the gate fails, nothing crashed
        assert "Traceback" not in r.err
        results = _results(repo)
        assert len(results) == 8
        for review, (output, error, tokens_in) in results.items():
            if review in (REVIEWS[2], REVIEWS[5]):
                assert output is None and error is not None and reason in error, (review, error)
            else:
                assert error is None and output == "positive" and tokens_in == 10
        seen.clear()
        again = repo.run("eval")
        assert again.code == 1
        assert sorted(seen) == [REVIEWS[2], REVIEWS[5]]  # the six answers came from the cache
        assert "6 cached" in again.err


@pytest.mark.parametrize("header", ["-5", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT", "1e400"])
def test_a_wild_retry_after_is_clamped_and_the_case_retried(repo: Repo, header: str) -> None:
    limited = iter([RawReply(status=429, body=b'{"error": {"message": "slow down"}}', headers={"Retry-After": header})])

    def once_limited() -> RawReply:
        return next(limited, _json(chat_reply("m", "positive")))

    with _server({REVIEWS[0]: once_limited}) as (url, seen):
        repo.write("evals/sentiment.yaml", _suite(url, max_retries=2, max_backoff=0.05))
        r = repo.run("eval")
        assert r.code == 0, r
        assert seen.count(REVIEWS[0]) == 2  # limited once, then answered
        assert all(error is None for _, error, _ in _results(repo).values())


@pytest.mark.timeout(60)
def test_a_body_dripped_a_byte_at_a_time_ends_at_the_timeout(repo: Repo) -> None:
    drip = RawReply(body=json.dumps(chat_reply("m", "positive")).encode(), drip_s=0.05)  # ~10 s in all
    with _server({REVIEWS[3]: lambda: drip}) as (url, _):
        repo.write("evals/sentiment.yaml", _suite(url, timeout=1))
        r = repo.run("eval")
    assert r.code == 1, r
    results = _results(repo)
    assert "APITimeoutError" in (results[REVIEWS[3]][1] or "")
    assert sum(1 for _, error, _ in results.values() if error is None) == 7
    # the server was cut off long before its whole body went out: the client hung up at its deadline
    assert drip.sent and drip.sent[0] < len(drip.body) // 2


def test_a_reply_that_echoes_the_key_shows_none_of_it(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "kq7-Zx81mN0pLw3vBt5yRc9uQa"  # 26 characters, in no well-known token shape
    monkeypatch.setenv("TEAM_SERVICE_KEY", key)

    def echo() -> RawReply:
        return _json(chat_reply("m", "your key, for the record, is the following one: " + key))

    with _server(dict.fromkeys(REVIEWS, echo)) as (url, _):
        repo.write("evals/sentiment.yaml", _suite(url, api_key_env="TEAM_SERVICE_KEY"))
        r = repo.run("eval", "-v")
    assert r.code == 1
    shown = r.out + r.err
    assert "your key, for the record" in shown  # the failed cases are shown…
    assert not any(key[i : i + 6] in shown for i in range(len(key) - 5))  # …and no six characters of the key


@pytest.mark.parametrize("jobs", ["1", "8"])
def test_a_call_budget_limits_the_calls_sent_whatever_the_concurrency(repo: Repo, jobs: str) -> None:
    with _server({}) as (url, seen):
        repo.write("evals/sentiment.yaml", _suite(url, concurrency=8))
        r = repo.run("eval", "-j", jobs, "--budget", "calls=2")
    assert r.code == 1 and "budget spent: 6 not run" in r.err, r
    assert len(seen) == 2


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_an_eval_without_waiting_for_the_requests_in_flight(repo: Repo, sent: signal.Signals) -> None:
    release = threading.Event()  # the server holds every request until the test ends

    def held(h: BaseHTTPRequestHandler, body: Any) -> RawReply:
        arrived.set()
        release.wait(600)
        return _json(chat_reply("m", "positive"))

    arrived = threading.Event()
    try:
        with raw_server(held) as url:
            repo.write("evals/sentiment.yaml", _suite(url, timeout=3600))
            cmd = [sys.executable, "-m", "promptci", "-C", str(repo.path), "eval"]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert arrived.wait(60)
            proc.send_signal(sent)
            # An exit that waited for a request would wait an hour, the request's timeout.
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 130, err
            assert "Traceback" not in err
    finally:
        release.set()
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]


@pytest.mark.slow  # imports litellm
def test_litellm_params_that_name_its_own_arguments_are_not_a_crash(repo: Repo) -> None:
    """`num_retries` and `timeout` are LiteLLM's own arguments too: promptci's stay in force."""
    with _server({}) as (url, seen):
        repo.write("evals/sentiment.yaml", _suite(url, "litellm", num_retries=3, drop_params=False))
        r = repo.run("eval")
    assert r.code == 0, r
    assert len(seen) == 8

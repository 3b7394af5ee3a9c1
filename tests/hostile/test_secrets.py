"""Credentials never reach the database, the terminal, exported files or what is published."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import duckdb
import pytest

from promptci.redact import redact, safe_host
from tests.conftest import Repo, json_server

URL_KEY = "sk-urlsecret0123456789"
ENV_KEY = "envsecret-98765-abcdef"


def test_redaction_patterns() -> None:
    assert redact("http://user:sk-abc12345678@host/v1") == "http://***@host/v1"
    assert redact("GET /v1?api_key=abcdef&x=1") == "GET /v1?api_key=***&x=1"
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert redact('{"api-key": "0123456789abcdef"}') == '{"api-key": "***"}'
    assert redact("key sk-proj-ABCDEFGH12345678 leaked") == "key sk-*** leaked"
    assert redact("token ghp_" + "a" * 36) == "token ***"
    assert redact("plain text about keys and tokens") == "plain text about keys and tokens"
    assert safe_host("https://u:p@example.com:8080/v1/?token=x") == "example.com:8080/v1"


def test_configured_key_variables_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "value-of-the-key-123")
    assert redact("server said: bad key value-of-the-key-123") == "server said: bad key ***"


def _echo_key(request: BaseHTTPRequestHandler) -> tuple[int, Any]:
    auth = request.headers.get("Authorization", "")
    return 401, {
        "error": {"message": f"Incorrect API key provided: {auth} ({URL_KEY})", "type": "invalid_request_error"}
    }


def test_no_secret_is_stored_printed_or_exported(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_LLM_KEY", ENV_KEY)
    with json_server(_echo_key) as url:
        base_url = url.replace("http://", f"http://alice:{URL_KEY}@") + "/v1?api_key=" + URL_KEY
        config = (repo.path / "promptci.yaml").read_text()
        repo.write(
            "promptci.yaml",
            config.replace(
                "model:\n  temperature: 0\n  max_tokens: 16\n",
                f"model:\n  provider: openai\n  model: gpt-x\n  params: {{base_url: '{base_url}', api_key_env: TEAM_LLM_KEY, max_retries: 0}}\n",
            ),
        )
        r = repo.run("eval", "-o", "out.json", "-o", "out.csv", "-o", "out.jsonl")
    assert r.code == 1  # every case errored
    printed = [r.out, r.err]
    for args in (["history"], ["history", "--format", "json"], ["cache", "info"], ["report", "--html", "report.html"]):
        result = repo.run(*args)
        assert result.code == 0, (args, result)
        printed += [result.out, result.err]
    files = [(repo.path / name).read_text() for name in ("out.json", "out.csv", "out.jsonl", "report.html")]
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        stored = [
            json.dumps(db.execute(f"SELECT * FROM {t}").fetchall(), default=str) for t in ("runs", "results", "cache")
        ]
        errors = [e for (e,) in db.execute("SELECT error FROM results").fetchall()]
        models = {m for (m,) in db.execute("SELECT DISTINCT model_id FROM results").fetchall()}
    assert errors and all("Incorrect API key provided" in e for e in errors)  # the message itself is kept
    assert models == {f"openai:gpt-x@127.0.0.1:{url.rsplit(':', 1)[1]}/v1"}
    for text in printed + files + stored:
        assert URL_KEY not in text and ENV_KEY not in text and "alice" not in text

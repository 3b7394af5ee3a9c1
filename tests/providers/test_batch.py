"""Batch mode against a local fake of the Files and Batches endpoints: the uploaded JSONL checked
line by line against the realtime bodies, the same stored rows as a realtime run at the batch
price, a kill and `eval --resume` that collects the batch without sending it again, and a batch
that expires half done, rerun each way the user can choose."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ..conftest import git
from ..fake_batches import FakeAnthropic, FakeBatches, _last_text, fake_anthropic, fake_batches

CASES = 1000
PROMPT = """\
name: label
messages:
  - role: system
    content: Label the review as positive, negative or neutral.
  - role: user
    content: "Review: {{ review }}"
variables:
  review: {type: string}
"""
SUITE = """\
prompts: [label]
scorers: [{type: choice, choices: [positive, negative, neutral]}]
dataset: {path: reviews.jsonl, vars: {review: review}, expected: label}
"""


def project(root: Path, url: str, *, model: str = "openai:fake-model", cases: int = CASES, **params: Any) -> Path:
    root.mkdir()
    (root / "prompts").mkdir()
    (root / "evals").mkdir()
    provider, _, name = model.partition(":")
    config = {
        "model": {
            "provider": provider,
            "model": name,
            "temperature": 0,
            "max_tokens": 4,
            "params": {"base_url": url, "price": {"input": 1.0, "output": 2.0}, "concurrency": 8, **params},
        }
    }
    (root / "promptci.yaml").write_text(json.dumps(config))
    (root / "prompts/label.yaml").write_text(PROMPT)
    (root / "evals/label.yaml").write_text(SUITE)
    labels = ["positive", "negative", "neutral"]
    with (root / "evals/reviews.jsonl").open("w") as fh:
        for i in range(cases):
            fh.write(json.dumps({"review": f"review number {i}", "label": labels[i * 7 % 3]}) + "\n")
    (root / ".gitignore").write_text(".promptci/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "label")
    return root


def promptci(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "promptci", "-C", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)


def rows(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Per run, in case order: what a result row says of the answer (not when or how fast)."""
    with duckdb.connect(str(root / ".promptci/results.duckdb"), read_only=True) as db:
        found = db.execute(
            "SELECT run_id, case_id, output, score, passed, error, tokens_in, tokens_out, cost, model_id"
            " FROM results ORDER BY run_id, case_id"
        ).fetchall()
    runs: dict[str, list[tuple[Any, ...]]] = {}
    for run_id, *rest in found:
        runs.setdefault(run_id, []).append(tuple(rest))
    return runs


def batches(root: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(root / ".promptci/results.duckdb"), read_only=True) as db:
        return db.execute("SELECT id, file_hash, input_file, requests, status FROM batches ORDER BY id").fetchall()


def test_a_batch_run_stores_the_rows_a_realtime_run_does_at_the_batch_price(tmp_path: Path) -> None:
    state = FakeBatches()
    with fake_batches(state) as url:
        root = project(tmp_path / "p", url)
        priced = json.loads(promptci(root, "eval", "--estimate", "--format", "json").stdout)
        at_batch_rate = json.loads(promptci(root, "eval", "--batch", "--estimate", "--format", "json").stdout)
        assert at_batch_rate["cost_max"] == pytest.approx(priced["cost_max"] / 2) and priced["cost_max"] > 0
        assert "priced at the batch rate: 0.5 of the realtime price" in at_batch_rate["suites"][0]["notes"]
        realtime = promptci(root, "eval", "--no-cache")
        assert realtime.returncode in (0, 1), realtime.stderr
        batched = promptci(root, "eval", "--no-cache", "--batch", PROMPTCI_BATCH_POLL="0.01")
        assert batched.returncode == realtime.returncode, batched.stderr
    assert "sent batch batch_1: 1000 request(s)" in batched.stderr
    assert len(state.batches) == 1 and len(state.realtime) == CASES  # the batch run sent nothing in realtime

    # The uploaded file, line by line: the very body a realtime call sent, under its cache key.
    (upload,) = [data for fid, data in state.files.items() if fid == state.batches["batch_1"]["input_file_id"]]
    lines = [json.loads(x) for x in upload.decode().splitlines()]
    assert len(lines) == CASES and len({x["custom_id"] for x in lines}) == CASES
    assert all(x["method"] == "POST" and x["url"] == "/v1/chat/completions" for x in lines)
    sent = sorted(json.dumps(x["body"], sort_keys=True) for x in lines)
    assert sent == sorted(json.dumps(b, sort_keys=True) for b in state.realtime)
    ((batch_id, file_hash, input_file, requests, status),) = batches(root)
    assert (batch_id, input_file, requests, status) == ("batch_1", "file-1", CASES, "collected")
    assert file_hash == hashlib.sha256(upload).hexdigest()

    first, second = rows(root).values()
    assert [r[:7] for r in first] == [r[:7] for r in second] and [r[8] for r in first] == [r[8] for r in second]
    assert all(b[7] == pytest.approx(r[7] / 2) for r, b in zip(first, second, strict=True))  # half the price


def test_a_killed_batch_run_is_collected_by_resume_and_never_sent_twice(tmp_path: Path) -> None:
    state = FakeBatches(step=20)  # the batch takes 50 looks
    with fake_batches(state) as url:
        root = project(tmp_path / "p", url)
        realtime = promptci(root, "eval", "--no-cache")
        env = {**os.environ, "PROMPTCI_BATCH_POLL": "0.05"}
        command = [sys.executable, "-m", "promptci", "-C", str(root), "eval", "--no-cache", "--batch"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 120
        while not any(b["_looked"] >= 5 for b in state.batches.values()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert [b[4] for b in batches(root)] == ["submitted"]

        resumed = promptci(root, "eval", "--resume", PROMPTCI_BATCH_POLL="0.01")
        assert resumed.returncode == realtime.returncode, resumed.stderr
        assert "resuming batch batch_1" in resumed.stderr and "collecting batch batch_1" in resumed.stderr
        assert len(state.batches) == 1  # collected, not sent again
        assert [b[4] for b in batches(root)] == ["collected"]
        again = promptci(root, "eval", "--resume")
        assert "nothing to resume" in again.stderr and again.returncode == 0
    runs = rows(root)
    first, *_, last = runs.values()
    assert [r[:6] for r in first] == [r[:6] for r in last] and len(last) == CASES


def test_ctrl_c_leaves_the_batch_running_and_says_how_to_collect_it(tmp_path: Path) -> None:
    state = FakeBatches(step=1)
    with fake_batches(state) as url:
        root = project(tmp_path / "p", url)
        env = {**os.environ, "PROMPTCI_BATCH_POLL": "0.05"}
        command = [sys.executable, "-m", "promptci", "-C", str(root), "eval", "--batch"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        deadline = time.monotonic() + 120
        while not any(b["_looked"] >= 2 for b in state.batches.values()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "batch batch_1 is still running at the provider; `promptci eval --resume` collects it" in err
    assert [b[4] for b in batches(root)] == ["submitted"]


@pytest.mark.parametrize("rerun", ["realtime", "batch", "none"])
def test_a_batch_that_expires_half_done_is_rerun_as_chosen(tmp_path: Path, rerun: str) -> None:
    state = FakeBatches(step=100)
    with fake_batches(state) as url:
        root = project(tmp_path / "p", url)
        realtime = promptci(root, "eval", "--no-cache")
        assert len(state.realtime) == CASES
        state.expire_after = CASES // 2
        done = promptci(root, "eval", "--no-cache", "--batch", "--batch-rerun", rerun, PROMPTCI_BATCH_POLL="0.01")
    assert "expired) left 500 request(s) unanswered" in done.stderr, done.stderr
    first, second = rows(root).values()
    if rerun == "none":
        assert done.returncode == 1
        assert sum(1 for r in second if r[4] and "batch batch_1 expired: not answered" in r[4]) == CASES // 2
        answered = [(a, b) for a, b in zip(first, second, strict=True) if b[4] is None]
        assert len(answered) == CASES // 2 and all(a[:4] == b[:4] for a, b in answered)
        return
    assert done.returncode == realtime.returncode, done.stderr
    assert [r[:6] for r in first] == [r[:6] for r in second]
    if rerun == "realtime":
        assert len(state.batches) == 1 and len(state.realtime) == CASES + CASES // 2
    else:  # the rest in a new batch of its own (it expires at 500 lines: all of its own)
        assert len(state.batches) == 2 and len(state.realtime) == CASES


def test_failed_lines_are_rerun_and_the_rest_kept(tmp_path: Path) -> None:
    state = FakeBatches()
    with fake_batches(state) as url:
        root = project(tmp_path / "p", url)
        promptci(root, "eval", "--no-cache")
        bodies = list(state.realtime)
        state.realtime.clear()
        done = promptci(root, "eval", "--no-cache", "--batch", PROMPTCI_BATCH_POLL="0.01")
        assert done.returncode in (0, 1)
        upload = state.files[state.batches["batch_1"]["input_file_id"]]
        ids = [json.loads(x)["custom_id"] for x in upload.decode().splitlines()][:7]
        state.fail = set(ids)
        again = promptci(root, "eval", "--no-cache", "--batch", PROMPTCI_BATCH_POLL="0.01")
    assert "left 7 request(s) unanswered: realtime" in again.stderr
    assert len(state.realtime) == 7 and len(bodies) == CASES
    *_, before, after = rows(root).values()
    assert [r[:6] for r in before] == [r[:6] for r in after]


def test_anthropic_message_batches_store_what_litellms_realtime_route_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-test-" + "k" * 24
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", key)
    state = FakeAnthropic(looks=3)
    model = "litellm:anthropic/claude-3-5-haiku-20241022"
    with fake_anthropic(state) as url:
        root = project(tmp_path / "p", url, model=model, cases=200, api_key_env="FAKE_ANTHROPIC_KEY", max_retries=0)
        realtime = promptci(root, "eval", "--no-cache")
        assert realtime.returncode in (0, 1), realtime.stderr
        assert len(state.realtime) == 200
        batched = promptci(root, "eval", "--no-cache", "--batch", PROMPTCI_BATCH_POLL="0.01")
    assert batched.returncode == realtime.returncode, batched.stderr
    assert "sent batch msgbatch_1: 200 request(s)" in batched.stderr and len(state.realtime) == 200
    (batch,) = state.batches.values()
    requests = batch["_requests"]
    assert len({r["custom_id"] for r in requests}) == 200
    for request in requests:  # Anthropic's own shape: the system text apart, the model without its prefix
        params = request["params"]
        assert params["model"] == "claude-3-5-haiku-20241022" and params["max_tokens"] == 4
        assert params["system"] == "Label the review as positive, negative or neutral."
        assert [m["role"] for m in params["messages"]] == ["user"]
    sent = sorted(_last_text(r["params"]["messages"]) for r in requests)
    assert sent == sorted(_last_text(b["messages"]) for b in state.realtime)  # what LiteLLM sent, one by one
    assert all(h.get("x-api-key") == key and h.get("anthropic-version") for h in state.headers)
    assert key not in batched.stdout + batched.stderr
    ((_, _, _, requests_stored, status),) = batches(root)
    assert (requests_stored, status) == (200, "collected")
    first, second = rows(root).values()
    assert [r[:6] for r in first] == [r[:6] for r in second]
    assert all(b[7] == pytest.approx(r[7] / 2) for r, b in zip(first, second, strict=True))


def test_an_anthropic_batch_that_expires_half_done_is_rerun_in_realtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-test-" + "k" * 24)
    state = FakeAnthropic(looks=2, expire_after=30)
    model = "litellm:anthropic/claude-3-5-haiku-20241022"
    with fake_anthropic(state) as url:
        root = project(tmp_path / "p", url, model=model, cases=60, api_key_env="FAKE_ANTHROPIC_KEY", max_retries=0)
        done = promptci(root, "eval", "--no-cache", "--batch", PROMPTCI_BATCH_POLL="0.01")
        again = promptci(root, "eval", "--no-cache")
    assert "msgbatch_1 (ended) left 30 request(s) unanswered: realtime" in done.stderr, done.stderr
    assert len(state.realtime) == 30 + 60
    batched, realtime = rows(root).values()
    assert [r[:6] for r in batched] == [r[:6] for r in realtime] and again.returncode == done.returncode

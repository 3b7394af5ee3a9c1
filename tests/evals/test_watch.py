"""`eval --watch`: a run on every save with the model kept loaded, what changed since the last
run, Ctrl-C to stop, and answers identical to a cold run's, on the real SmolLM2 model."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from ..conftest import Repo

pytestmark = pytest.mark.slow


def lines_until(lines: queue.Queue[str], text: str, timeout: float = 180) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} in {seen[-20:]}")


def test_watch_reruns_on_save_with_the_model_kept_loaded(repo: Repo) -> None:
    command = [sys.executable, "-m", "promptci", "-C", str(repo.path), "eval", "sentiment", "--watch"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    try:
        first = lines_until(lines, "watching")
        assert any("sentiment\tsentiment" in x or "sentiment" in x for x in first)
        assert any("sentiment × sentiment:" in x and "(new)" in x for x in first)
        prompt = repo.path / "prompts/sentiment.yaml"
        prompt.write_text(prompt.read_text().replace("Answer with one word.", "Answer with one lowercase word."))
        second = lines_until(lines, "watching")
        change = next(x for x in second if x.startswith("sentiment × sentiment:"))
        assert "→" in change and ("flipped" in change or "pass→fail" in change or "fail→pass" in change)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    runs = repo.sql("SELECT id, status FROM runs ORDER BY started_at")
    assert [status for _, status in runs] == ["complete", "complete"]
    watched = dict(repo.sql(f"SELECT case_id, output FROM results WHERE run_id = '{runs[1][0]}'"))
    assert repo.run("eval", "sentiment", "--no-cache").code in (0, 1)  # a cold run of the edited prompt
    (cold_id,) = [r for (r,) in repo.sql("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1")]
    cold = dict(repo.sql(f"SELECT case_id, output FROM results WHERE run_id = '{cold_id}'"))
    assert watched == cold and len(cold) > 0

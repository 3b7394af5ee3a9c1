"""The HTML report, rendered by real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import Katan, Repo

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=3000",
]


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "Debian's chromium package is missing: .ci/run installs it (apt-get install chromium)"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture
def report(repo: Repo, katan: Callable[..., Katan]) -> Path:
    """A report over two versions of a prompt, the second clearly worse, with its comparison."""
    server = katan("-b", "echo")
    repo.use_model_server(server.base_url)
    repo.write(
        "evals/sentiment.yaml",
        (repo.path / "evals/sentiment.yaml")
        .read_text()
        .replace("  - type: choice\n    choices: [positive, negative]\n", "  - {type: contains, value: 'Review:'}\n"),
    )
    repo.commit("echo suite")
    repo.run("eval")
    prompt = repo.path / "prompts/sentiment.yaml"
    prompt.write_text(
        prompt.read_text().replace("Review: {{ review }}", "Text: {{ review }} <script>alert(1)</script>")
    )
    repo.commit("worse")
    assert repo.run("compare", "HEAD~1", "HEAD", "--run-missing", "-o", str(repo.path / "r.json")).code == 1
    page = repo.path / "report.html"
    assert repo.run("report", "--html", str(page), "--compare", str(repo.path / "r.json")).code == 0
    return page


def test_the_page_is_self_contained(report: Path) -> None:
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert "<script>alert(1)</script>" not in html  # outputs are escaped


def test_chromium_renders_charts_with_data_and_no_console_errors(report: Path, tmp_path: Path) -> None:
    dom = chromium(report, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="true"' in dom.stdout and 'data-points="2"' in dom.stdout
    assert dom.stdout.count('class="point"') == 2
    assert "regressed" in dom.stdout and "6 flipped case(s)" in dom.stdout
    assert console_messages(dom.stderr) == []
    data = json.loads(re.search(r'id="promptci-data">(.*?)</script>', report.read_text(), re.S).group(1))  # type: ignore[union-attr]
    assert [round(p["score"], 3) for p in data["history"]] == [1.0, 0.0]

    shot = tmp_path / "report.png"
    taken = chromium(report, f"--screenshot={shot}", "--window-size=1280,1000")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000


def test_console_errors_would_be_caught(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>undefinedFunction();</script></body></html>")
    assert console_messages(chromium(page, "--dump-dom").stderr)


def test_history_cards_show_commits_threshold_and_errors_with_reasons() -> None:
    from datetime import datetime

    from promptci.compare.history import Point
    from promptci.report.html import render

    points = [
        Point("parity", "p", "a" * 64, "1111111aaaa", "m", datetime(2026, 1, 1), 40, 0.5, 0.5, 0, 40),
        Point("parity", "p", "b" * 64, "2222222bbbb", "m", datetime(2026, 1, 2), 6, 0.5, 0.5, 34, 40),
    ]
    reasons = [{"error": "HTTP 500 after 3 retries", "n": 30}, {"error": "timeout", "n": 4}]
    errors = {("p", "parity", "m", "b" * 64): reasons}  # by version: the latest one's are listed
    html = render(points, None, thresholds={"parity": 0.8}, errors=errors)
    assert ">1111111</text>" in html and ">2222222</text>" in html  # each version's commit on the axis
    assert 'class="threshold"' in html and "threshold 0.80" in html
    assert "latest 0.500 over 6 cases, 34 errored" in html
    assert "34 of 40 cases errored" in html and "<code>HTTP 500 after 3 retries</code> (30×)" in html
    assert html.count('class="point errored"') == 1  # only the version with errors is hollow

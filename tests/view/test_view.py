"""`promptci view` as a user meets it: the real command serving a real project's results
(evals, a pipeline's traces, a comparison and a GEPA optimization, all against a scripted
OpenAI-compatible server), read over HTTP and walked in headless Chromium with screenshots."""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from promptci.store import Store

from ..conftest import REPO_ROOT, Repo, chat_reply, free_port, new_repo, request_json
from ..optimize.test_gepa import INITIAL, PLANTED, _parity_pipeline, scripted
from ..report.test_html import CHROMIUM, FLAGS

SECRET = "sk-viewtest-0123456789abcdef"


@dataclass
class Viewer:
    url: str
    repo: Repo
    commits: list[str]
    shots: Path

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()


def _handle(h: BaseHTTPRequestHandler) -> tuple[int, object]:
    body = request_json(h)
    messages = body["messages"]
    system, user = messages[0]["content"], messages[-1]["content"]
    number = re.search(r"\d+", user)
    if body["model"] != "task":
        answer = f"<INS>{PLANTED}</INS>"
    elif number is None:
        answer = "positive"
    elif user.startswith("Number:") and "Copy" in system:
        answer = f"The number is {number.group()}."
    else:
        n = int(number.group())
        answer = ("odd" if n % 2 else "even") if "parity" in system else "odd"
        if n == 7:
            answer += f" (key {SECRET})"
    return 200, chat_reply(body["model"], answer)


@pytest.fixture
def viewer(repo: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Viewer]:
    monkeypatch.setenv("VIEWTEST_API_KEY", SECRET)
    with scripted(monkeypatch, _handle) as url:
        _parity_pipeline(repo, url)  # the parity prompt, and the noted pipeline on evals/parity
        suite = (repo.path / "evals/parity.yaml").read_text().replace("prompts: [noted]", "prompts: [parity]")
        repo.write("evals/direct.yaml", suite)
        first = repo.commit("the parity prompt on its own suite")
        assert repo.run("eval").code in (0, 1)
        prompt = repo.path / "prompts/parity.yaml"
        prompt.write_text(prompt.read_text().replace(INITIAL, PLANTED))
        second = repo.commit("say the parity")
        assert repo.run("eval").code in (0, 1)
        prompt.write_text(prompt.read_text().replace(PLANTED, INITIAL))
        repo.commit("back to one word")
        result = repo.run(
            "optimize", "parity", "--suite", "direct", "--method", "gepa", "--steps", "2", "--candidates", "1",
            "--split", "0.3/0.3/0.4", "--optimizer-model", "openai:reflector", "--dry-run",
        )  # fmt: skip
        assert result.code == 0, result.err
    with serve(repo.path) as url:
        yield Viewer(url, repo, [first, second], tmp_path / "shots")


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """`promptci view` on ``root``, as a user starts it; yields its URL once it listens."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "promptci", "-C", str(root), "view", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the viewer did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_page_answers_read_only_with_errors_counted_and_secrets_masked(viewer: Viewer) -> None:
    status, headers, body = viewer.get("/")
    assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
    assert "<script" not in body  # the viewer needs no script at all
    for name in ("parity", "noted", "sentiment"):
        assert f'href="/prompts/{name}"' in body
    runs = viewer.repo.sql("SELECT id FROM runs ORDER BY started_at LIMIT 2")  # the two evals
    first_run = runs[0][0]
    status, _, body = viewer.get(f"/runs/{first_run}")
    assert status == 200
    # The first run: the parity prompt answered "odd" to everything, so the even cases failed.
    failed = viewer.repo.sql(
        f"SELECT count(*) FROM results WHERE run_id = '{first_run}' AND error IS NULL AND NOT passed"
    )[0][0]
    status, _, only_failed = viewer.get(f"/runs/{first_run}?status=failed")
    assert f"of {failed:,}</span>" in only_failed or f"1–{failed} of {failed}" in only_failed
    assert only_failed.count('<tr class="failed">') == min(failed, 50)
    assert '<tr class="passed">' not in only_failed
    status, _, searched = viewer.get(f"/runs/{first_run}?q=Number:%2012&suite=direct")
    assert searched.count('<tr class="failed">') + searched.count('<tr class="passed">') == 1
    # A pipeline case's trace, step by step.
    traced = re.search(r'href="(/runs/[^"]+/case\?suite=parity&amp;prompt=noted&amp;case=[^"]+)"', body)
    assert traced, "the run page links each pipeline case to its trace"
    status, _, trace = viewer.get(traced.group(1).replace("&amp;", "&"))
    assert status == 200 and "Trace, step by step" in trace
    assert trace.index("<strong>note</strong>") < trace.index("<strong>answer</strong>")
    assert "The number is " in trace
    # Secrets never reach a page.
    pages = [body, only_failed, trace] + [viewer.get(p)[2] for p in ("/prompts/parity", "/runs", "/optimizations")]
    assert all(SECRET not in p for p in pages)
    # Unknown things are a 404 page; writes and foreign hosts are refused.
    assert viewer.get("/runs/nope")[0] == 404
    assert viewer.get("/prompts/nope")[0] == 404
    assert viewer.get("/", Host="evil.example")[0] == 400
    post = urllib.request.Request(viewer.url + "/runs", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)
    assert refused.value.code == 405
    # The PR an optimization was opened as is linked from its pages; a link that is not https is not.
    ((opt_id,),) = viewer.repo.sql("SELECT id FROM optimizations")
    for url in ("https://github.com/acme/app/pull/7", "javascript:alert(1)"):
        with Store(viewer.repo.path / ".promptci/results.duckdb") as store:
            store.update_optimization(opt_id, pr_url=url)
        for page in (f"/optimizations/{opt_id}", "/optimizations"):
            linked = f'href="{url}"' in viewer.get(page)[2]
            assert linked == url.startswith("https://"), (page, url)


def chromium(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "Debian's chromium package is missing: .ci/run installs it (apt-get install chromium)"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1600", *args, url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_colours(path: Path) -> int:
    """How many distinct byte values a PNG's pixel rows hold: a blank page has two or three."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def journey(viewer: Viewer, name: str, path: str, *expected: str) -> str:
    """Open ``path`` in Chromium: its DOM holds ``expected``, and its screenshot is not blank."""
    url = viewer.url + path
    dom = chromium(url, "--dump-dom").stdout
    for text in expected:
        assert text in dom, (name, text)
    viewer.shots.mkdir(exist_ok=True)
    shot = viewer.shots / f"{name}.png"
    chromium(url, f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000, name
    assert png_colours(shot) > 40, f"{name}: the screenshot is blank"
    return dom


@pytest.mark.slow
def test_the_four_journeys_in_a_browser(viewer: Viewer) -> None:
    first, second = viewer.commits
    # Open a prompt: its versions, and its score over them with the commits on the axis.
    dom = journey(viewer, "prompt", "/prompts/parity", "Scores over versions", "parity × direct", "say the parity")
    versions = viewer.repo.sql(
        "SELECT DISTINCT prompt_commit FROM results WHERE suite = 'direct' AND prompt_commit IS NOT NULL"
    )
    assert len(versions) >= 2 and second in {v for (v,) in versions}
    for (commit,) in versions:
        assert f">{commit[:7]}</text>" in dom  # each version's commit is written on the axis
    assert dom.count('class="point') >= 2
    # Open a run: its cases with replies and scores.
    ((run_id,),) = viewer.repo.sql("SELECT id FROM runs ORDER BY started_at LIMIT 1 OFFSET 1")  # the second eval
    journey(viewer, "run", f"/runs/{run_id}", f"Run {run_id}", "Number: 12", "even")
    # Compare two commits: the parity suite improved, with the flipped cases listed.
    dom = journey(viewer, "compare", f"/compare?base={first}&head={second}", "Flipped cases", "fail→pass")
    assert re.search(r"<td>direct</td><td>parity</td>.*?verdict-improved", dom, re.S)
    assert re.search(r"verdict-improved.*?<td class=\"num\">(&ge;|≥) [\d.]+ pts</td>", dom, re.S)  # the detectable drop
    # Open an optimization: the trajectory, its candidates and the frontier.
    ((opt_id,),) = viewer.repo.sql("SELECT id FROM optimizations")
    dom = journey(viewer, "optimization", f"/optimizations/{opt_id}", "Held-out test", "The pool on dev", PLANTED)
    assert "Candidates" in dom


@pytest.mark.slow
def test_this_repositorys_own_results_open_in_the_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The project's own prompts, pipelines and suites, 3 cases each on the embedded SmolLM2."""
    root = REPO_ROOT
    own = new_repo(tmp_path / "own", capsys)
    for name in ("prompts", "evals", "pipelines"):
        shutil.rmtree(own.path / name, ignore_errors=True)
        shutil.copytree(root / name, own.path / name)
    shutil.copy(root / "promptci.yaml", own.path / "promptci.yaml")
    own.commit("this repository's prompts")
    assert own.run("eval", "--head", "3").code in (0, 1)  # the suites run by default
    assert own.run("eval", "date_cot", "--head", "2").code in (0, 1)  # a pipeline's, which is not
    run_id, pipeline_run = (r for (r,) in own.sql("SELECT id FROM runs ORDER BY started_at"))
    suites = {s for (s,) in own.sql(f"SELECT DISTINCT suite FROM results WHERE run_id = '{run_id}'")}
    assert len(suites) >= 6
    with serve(own.path) as url:
        viewer = Viewer(url, own, [], tmp_path / "shots")
        names = [p.stem for folder in ("prompts", "pipelines") for p in (root / folder).glob("*.yaml")]
        journey(viewer, "own-index", "/", *(f'href="/prompts/{name}"' for name in names))
        dom = journey(viewer, "own-run", f"/runs/{run_id}", f"Run {run_id}", *(f"<td>{suite}</td>" for suite in suites))
        dom = journey(viewer, "own-pipeline-run", f"/runs/{pipeline_run}", "date_cot")
        traced = re.search(r'href="(/runs/[^"]+/case\?suite=date_cot&amp;prompt=date_cot&amp;case=[^"]+)"', dom)
        assert traced, "the date_cot pipeline's cases link to their traces"
        journey(viewer, "own-trace", traced.group(1).replace("&amp;", "&"), "Trace, step by step", "date_reason")

"""Shared fixtures: real temporary git repositories and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from promptci.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
# The example project most tests start from: six inline cases, small enough to run anywhere.
INIT_TEMPLATES = REPO_ROOT / "tests" / "fixtures" / "project"
MODEL_CACHE = REPO_ROOT / ".promptci-test-models"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts llm-katan, through any fixture, is slow: marked here, so none is missed."""
    for item in items:
        if "katan" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker gets its share of the cores for torch: two workers each spinning a thread
    per core on the same cores run the model several times slower than one thread each."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real $HOME or global git config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    monkeypatch.delenv("PROMPTCI_ROOT", raising=False)
    monkeypatch.setenv("PROMPTCI_WORKER", "0")  # no command hands itself to a warm worker unless a test asks
    # The converted SmolLM2 is shared by every test and kept between local runs.
    monkeypatch.setenv("PROMPTCI_MODEL_CACHE", str(MODEL_CACHE))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Repo:
    """A real git repository in a temporary directory."""

    path: Path
    capsys: pytest.CaptureFixture[str]

    def write(self, rel: str, text: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def commit(self, message: str, *paths: str) -> str:
        git(self.path, "add", *(paths or ("-A",)))
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def use_model_server(self, base_url: str, model: str = "echo-model") -> None:
        """Point the project's default model at an OpenAI-compatible server (not committed)."""
        config = (self.path / "promptci.yaml").read_text()
        default = "model:\n  temperature: 0\n  max_tokens: 16\n"
        assert default in config
        server = f"model:\n  provider: openai\n  model: {model}\n  params: {{base_url: '{base_url}'}}\n"
        self.write("promptci.yaml", config.replace(default, server))

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the project's results database, opened read-only."""
        import duckdb

        con = duckdb.connect(str(self.path / ".promptci/results.duckdb"), read_only=True)
        try:
            rows: list[tuple[Any, ...]] = con.execute(query).fetchall()
        finally:
            con.close()
        return rows

    def run(self, *args: str) -> Result:
        """Run the CLI in-process against this repository."""
        self.capsys.readouterr()
        code = main(["-C", str(self.path), *args])
        captured = self.capsys.readouterr()
        if code == 130:  # Ctrl-C or SIGTERM reached the command: it was meant for the test run, so stop it
            raise KeyboardInterrupt
        return Result(code, captured.out, captured.err)


def new_repo(path: Path, capsys: pytest.CaptureFixture[str]) -> Repo:
    """The `promptci init` example, committed once in a new repository at ``path``."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    shutil.copy(INIT_TEMPLATES / "promptci.yaml", path / "promptci.yaml")
    shutil.copytree(INIT_TEMPLATES / "prompts", path / "prompts")
    shutil.copytree(INIT_TEMPLATES / "evals", path / "evals")
    (path / ".gitignore").write_text(".promptci/\n")
    r = Repo(path, capsys)
    r.commit("initial prompts")
    return r


@pytest.fixture
def repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Repo]:
    """A git repository holding the `promptci init` example, committed once."""
    r = new_repo(tmp_path / "repo", capsys)
    cwd = os.getcwd()
    yield r
    os.chdir(cwd)


SUMMARIZE = """\
name: summarize
description: Summarize a text.
messages:
  - role: system
    content: You write {{ style }} summaries.
  - role: user
    content: |
      Summarize in at most {{ words }} words:
      {{ text }}
variables:
  text: {type: string, description: the text}
  words: {type: integer, default: 50}
  style: {type: string, default: short}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Katan:
    """A running llm-katan server on 127.0.0.1."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_katan(tmp: Path, model: str, *args: str, timeout: float = 120) -> Katan:
    port = free_port()
    log = tmp / f"katan-{port}.log"
    cmd = [
        shutil.which("llm-katan") or "llm-katan",
        "-m",
        model,
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "--log-level",
        "warning",
        "--stats-file",
        str(tmp / f"stats-{port}.json"),
        "--disable-dashboard",
        *args,
    ]
    process = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llm-katan exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return Katan(f"http://127.0.0.1:{port}/v1", process, log)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"llm-katan did not start in {timeout}s: {log.read_text()[-2000:]}")


def stop_katan(katan: Katan) -> None:
    katan.process.terminate()
    try:
        katan.process.wait(10)
    except subprocess.TimeoutExpired:
        katan.process.kill()


@pytest.fixture
def katan(tmp_path: Path) -> Iterator[Callable[..., Katan]]:
    """Start llm-katan servers with the given arguments; all are stopped after the test."""
    started: list[Katan] = []

    def start(*args: str, model: str = "echo-model") -> Katan:
        server = start_katan(tmp_path, model, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_katan(server)


def request_json(h: BaseHTTPRequestHandler) -> Any:
    """The JSON body of the request ``h`` is answering."""
    return json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))


def chat_reply(model: str, text: str) -> dict[str, Any]:
    """An OpenAI chat completion answering ``text``, as a scripted server sends it."""
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


@dataclass
class RawReply:
    """What a scripted server sends: any status, headers and bytes, optionally a byte at a time."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip_s: float | None = None  # seconds between bytes; the server records how far it got
    sent: list[int] = field(default_factory=list)


@contextmanager
def raw_server(handle: Callable[[BaseHTTPRequestHandler, Any], RawReply]) -> Iterator[str]:
    """A local HTTP server answering each request with ``handle(request, its JSON body)``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            reply = handle(self, request_json(self))
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", "Content-Length": str(len(reply.body)), **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.drip_s is None:
                with contextlib.suppress(OSError):  # the client may hang up on a body it refuses
                    self.wfile.write(reply.body)
                return
            sent = 0
            try:
                for byte in reply.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    sent += 1
                    time.sleep(reply.drip_s)
            except OSError:  # the client hung up
                pass
            reply.sent.append(sent)

        def log_message(self, *args: object) -> None: ...

    with serving(Handler) as url:
        yield url


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` answering on 127.0.0.1 from a thread of its own; yields the server's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextmanager
def json_server(handle: Callable[[BaseHTTPRequestHandler], tuple[int, Any]]) -> Iterator[str]:
    """A local HTTP server answering every request with ``handle(request) -> (status, JSON)``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            status, payload = handle(self)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _reply

        def log_message(self, *args: object) -> None: ...

    with serving(Handler) as url:
        yield url

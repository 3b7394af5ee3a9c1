"""Failures stay local: a bad case is that case's error and the eval goes on; a bad plugin is
reported once and every other command works; terminal and HTML output are inert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from promptci.errors import ExitCode
from tests.conftest import REPO_ROOT, Katan, Repo
from tests.optimize.conftest import add_task

PLUGINS = {
    "broken_mod.py": "raise ImportError('a dependency is missing')\n",
    "exits_mod.py": "raise SystemExit(0)\n",
    "quits_mod.py": """\
from promptci.optimize.engine import Method
from promptci.optimize.methods import register
from promptci.optimize.settings import Options


@register
class Quits(Method[Options]):
    name = "quits"
    description = "exits as soon as it is made"
    Config = Options
    scored_on = "dev"

    def __init__(self, ctx):
        raise SystemExit(0)
""",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Three installed method plugins: one that cannot import, one that exits as it imports, and
    one that exits when it runs."""
    target = tmp_path / "site"
    info = target / "hostile_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[promptci.methods]\nbroken = broken_mod:Broken\nexits = exits_mod:Exits\nquits = quits_mod:Quits\n"
    )
    for name, text in PLUGINS.items():
        (target / name).write_text(text)
    return target


def _promptci(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "promptci", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_plugin_that_cannot_load_is_reported_once_and_every_other_command_works(site: Path, repo: Repo) -> None:
    listed = _promptci(site, "optimize", "--list-methods", cwd=repo.path)
    assert listed.returncode == 0 and "gpo:" in listed.stdout and "quits:" in listed.stdout
    assert listed.stderr.count("method plugin 'broken' (broken_mod:Broken) failed to load: ImportError") == 1
    assert listed.stderr.count("method plugin 'exits' (exits_mod:Exits) failed to load: SystemExit") == 1
    schema = _promptci(site, "schema", "prompt", cwd=repo.path)
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"]
    assert "'broken'" in schema.stderr and "its options are left out" in schema.stderr
    assert _promptci(site, "lint", cwd=repo.path).returncode == 0
    chosen = _promptci(site, "optimize", "sentiment", "--suite", "sentiment", "--method", "exits", cwd=repo.path)
    assert chosen.returncode == ExitCode.USAGE and "method plugin 'exits'" in chosen.stderr
    assert "Traceback" not in chosen.stderr


def test_a_plugin_that_exits_while_it_runs_never_reads_as_success(site: Path, repo: Repo) -> None:
    add_task(repo, "navigate", 20)
    done = _promptci(site, "optimize", "navigate", "--suite", "navigate", "--method", "quits", cwd=repo.path)
    assert done.returncode == ExitCode.INTERNAL, done.stdout + done.stderr
    assert "called exit(0)" in done.stderr


RELAY = {
    "prompts/first.yaml": "name: first\ntemplate: '{{ text }}'\nvariables: {text: string}\n",
    "pipelines/relay.yaml": """\
name: relay
inputs: {review: string}
steps:
  - id: first
    prompt: first
    vars: {text: "{{ inputs.review }}"}
    parse: {json: ""}
output: first
""",
}


def _relay(
    repo: Repo, files: dict[str, str], pipeline: str, model: str, params: dict[str, object], word: str, cases: list[str]
) -> None:
    """``files`` and a suite of ``cases`` for ``pipeline``, answered by an OpenAI-compatible ``model``, committed."""
    suite = f"prompts: [{pipeline}]\nmodel: {{provider: openai, model: {model}, params: {json.dumps(params)}}}\n"
    suite += f"scorers: [{{type: contains, value: {word}}}]\ncases:\n"
    suite += "".join(f"  - vars: {{review: {json.dumps(c)}}}\n" for c in cases)
    for path, text in {**files, f"evals/{pipeline}.yaml": suite}.items():
        repo.write(path, text)
    (repo.path / "evals/sentiment.yaml").unlink()
    repo.commit(f"the {pipeline} pipeline and its suite")


def test_a_reply_nesting_too_deep_is_that_cases_error_and_the_eval_goes_on(
    repo: Repo, katan: Callable[..., Katan]
) -> None:
    server = katan("-b", "echo")
    params = {"base_url": server.base_url, "backoff": 0.01}
    deep = "[" * 900 + "]" * 900
    cases = [json.dumps({"a": 1}), deep, json.dumps(["x"]), "[" * 50_000]
    _relay(repo, RELAY, "relay", "echo-model", params, "a", cases)
    result = repo.run("eval")
    assert result.code in (ExitCode.OK, ExitCode.FAILED), result.err
    rows = repo.sql("SELECT error, note, score FROM results ORDER BY case_id")
    assert len(rows) == 4  # every case stored, the eval went on
    assert all(error is None for error, _, _ in rows)
    # A reply its parse rule cannot read is a wrong answer, with the reason beside it.
    deep = [score for _, note, score in rows if note and "nests deeper than 64 levels" in note]
    assert deep and all(score == 0 for score in deep)
    assert sum(1 for _, note, score in rows if note is None and score is not None) == 2


HOSTILE_TEXT = "\x1b[2J\x1b]0;owned\x07\rDONE \u202egnp.exe\x9b31m"


@pytest.mark.parametrize("command", [("render", "trap"), ("show", "trap"), ("render", "trap", "--format", "json")])
def test_control_sequences_in_a_prompt_are_shown_not_obeyed(repo: Repo, command: tuple[str, ...]) -> None:
    repo.write("prompts/trap.yaml", f"name: trap\ntemplate: {json.dumps(HOSTILE_TEXT)}\n")
    repo.commit("a prompt holding escape sequences")
    result = repo.run(*command)
    assert result.code == 0, result.err
    for raw in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
        assert raw not in result.out
    if "json" in command:
        assert "\\u001b[2J" in result.out and "\\u202e" in result.out
    else:  # off a terminal click drops what reads as a style; the rest is written out
        assert "\\x1b]0;owned\\x07" in result.out and "\\u202e" in result.out


def test_the_html_reports_data_block_holds_any_string_safely() -> None:
    from datetime import datetime

    from promptci.compare.history import Point
    from promptci.report.html import render

    nasty = "</script><script>alert(1)</script><!--<script>&amp;\u2028"
    page = render([Point("s", nasty, "h" * 12, None, "m", datetime(2026, 1, 1), 3, 0.5, 0.5)], None, title="t")
    block = page.split('<script type="application/json" id="promptci-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block)["history"][0]["prompt"] == nasty


ARRAY_RELAY = {
    "prompts/first.yaml": "name: first\ntemplate: '{{ text }}'\nvariables: {text: string}\n",
    "prompts/count.yaml": "name: count\ntemplate: 'Count {{ items | length }}'\nvariables: {items: array}\n",
    "pipelines/counted.yaml": """\
name: counted
inputs: {review: string}
steps:
  - id: first
    prompt: first
    vars: {text: "{{ inputs.review }}"}
  - id: count
    prompt: count
    vars: {items: "{{ steps.first.output }}"}
output: count
""",
}


def test_a_step_output_nesting_too_deep_for_an_array_variable_is_that_cases_error(repo: Repo) -> None:
    from http.server import BaseHTTPRequestHandler

    from tests.conftest import chat_reply, json_server, request_json

    def echo(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        return 200, chat_reply("m", request_json(h)["messages"][-1]["content"])

    cases = [json.dumps(["x", "y"]), "[" * 5_000 + "]" * 5_000, "[" * 80 + "]" * 80, json.dumps([1])]
    with json_server(echo) as url:
        _relay(repo, ARRAY_RELAY, "counted", "m", {"base_url": url + "/v1", "max_retries": 0}, "Count", cases)
        result = repo.run("eval")
    assert result.code == ExitCode.FAILED, result.err  # two cases errored; never exit 3
    assert "Traceback" not in result.err
    rows = repo.sql("SELECT error FROM results")
    assert len(rows) == 4
    errors = sorted(e for (e,) in rows if e)
    assert len(errors) == 2
    assert any("cannot read" in e for e in errors) and any("nests deeper than 64 levels" in e for e in errors)

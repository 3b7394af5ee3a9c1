"""The CLI contract: help everywhere, documented exit codes, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import pytest

from promptci.cli import cli
from promptci.errors import ExitCode

from .conftest import REPO_ROOT, Repo


def _all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, prefix + name + " "))
    return found


@pytest.mark.parametrize("name,command", _all_commands(cli))
def test_every_command_has_help_and_is_documented(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"`promptci {name}` has no help text"
    assert f"promptci {name}" in _docs(), f"`promptci {name}` is not documented in README.md or docs/"


def _docs() -> str:
    """The README and every page under docs/."""
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text() for p in pages)


def test_the_docs_name_only_commands_that_exist() -> None:
    readme = _docs()
    known = {name.split()[0] for name, _ in _all_commands(cli)}
    named = set(re.findall(r"`promptci ([a-z][a-z-]*)", readme))
    assert named and named <= known, f"the docs name commands that do not exist: {sorted(named - known)}"
    groups = {name: {sub.split()[1] for sub, _ in _all_commands(cli) if sub.startswith(name + " ")} for name in known}
    for group, sub in re.findall(r"`promptci ([a-z]+) ([^\s`]+)", readme):
        if groups.get(group) and not sub.startswith(("-", "[")):
            assert sub in groups[group], f"the docs name `promptci {group} {sub}`, which does not exist"


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys, promptci.cli, promptci; "
        "heavy = [m for m in ('torch', 'transformers', 'duckdb', 'openai', 'git') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_lint_of_a_clean_repo_does_not_load_git_or_model_libraries(repo: Repo) -> None:
    code = (
        "import sys; from promptci.cli import main; rc = main(['lint']); "
        "heavy = [m for m in ('torch', 'transformers', 'duckdb', 'openai', 'git') if m in sys.modules]; "
        "print(rc, ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo.path, capture_output=True, text=True).stdout
    assert out.strip() == "0"


def test_usage_error_exits_2(repo: Repo) -> None:
    assert repo.run("no-such-command").code == ExitCode.USAGE
    assert repo.run("render").code == ExitCode.USAGE  # missing argument


def test_unknown_prompt_is_one_line_exit_2(repo: Repo) -> None:
    result = repo.run("show", "nope")
    assert result.code == ExitCode.USAGE
    assert result.err.count("\n") == 1
    assert "no prompt named 'nope'" in result.err
    assert "Traceback" not in result.err


def test_bad_prompt_file_names_file_line_and_column(repo: Repo) -> None:
    repo.write("prompts/sentiment.yaml", "name: sentiment\ntemplate: hi\ncolour: red\n")
    result = repo.run("show", "sentiment")
    assert result.code == ExitCode.USAGE
    assert result.err.strip() == "error: prompts/sentiment.yaml:3:1: unknown key 'colour'"


def test_debug_shows_the_traceback(repo: Repo) -> None:
    result = repo.run("--debug", "show", "nope")
    assert result.code == ExitCode.USAGE
    assert "Traceback" in result.err


def test_module_entry_point_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "promptci", "--version"], capture_output=True, text=True, check=True)
    assert "promptci" in out.stdout


def test_sigterm_exits_130(repo: Repo) -> None:
    # A long-running command interrupted by SIGTERM reports 130, not a traceback.
    script = (
        "import os, signal, sys, time\n"
        "import click\n"
        "from promptci.cli import cli, main\n"
        "@cli.command()\n"
        "def sleepy():\n"
        "    '''Sleep.'''\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "sys.exit(main(['sleepy']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "interrupted" in proc.stderr


def test_a_reader_that_stops_early_is_not_a_failure() -> None:
    """``promptci … | head -2``: the closed pipe is dropped, and the command's own code stands."""
    script = f"set -o pipefail; '{sys.executable}' -m promptci schema | (exec 0<&-; sleep 0.5)"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")

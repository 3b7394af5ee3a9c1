"""The docs say what the program does: every command and option of --help is in docs/commands.md,
every `promptci` line in a shell example is one the CLI accepts, every YAML example of a prompt,
suite, pipeline or config validates, and the Python examples run."""

from __future__ import annotations

import ast
import inspect
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

import promptci
from promptci.cli import cli
from promptci.cli.reference import commands, options, section, written

from .conftest import REPO_ROOT, Repo

DOCS = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def fenced(kinds: tuple[str, ...]) -> Iterator[tuple[str, int, str]]:
    """(file, line, text) of every fenced block of one of ``kinds``."""
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) in kinds:
                yield path.relative_to(REPO_ROOT).as_posix(), text[: m.start()].count("\n") + 1, m.group(2)


def test_every_command_and_option_is_in_the_reference() -> None:
    docs = REPO_ROOT / "docs/commands.md"
    assert written(docs, cli) == section(cli), "run `python -m promptci.cli.reference`"
    text = docs.read_text(encoding="utf-8")
    for path, command in commands(cli):
        assert f"### `{path}`" in text
        assert (command.help or "").strip(), f"{path} has no help"
        for option in options(command):
            assert (option.help or "").strip(), f"{path} {option.opts} has no help"
            assert all(name in text for name in option.opts)


def test_the_reference_check_can_fail(tmp_path: Path) -> None:
    copy = tmp_path / "commands.md"
    copy.write_text((REPO_ROOT / "docs/commands.md").read_text().replace("| `--no-cache` |", "| `--no-cach` |"))
    assert written(copy, cli) != section(cli)


# A shell line's synopsis forms: "[--label L]" is optional, "a|b" one of several.
_OPTIONAL = re.compile(r"\s\[[^\]]*\]")


def shell_commands() -> Iterator[tuple[str, list[str]]]:
    for where, line, block in fenced(("sh", "bash")):
        for offset, raw in enumerate(block.splitlines()):
            for part in re.split(r"&&|;|\|\|", raw):
                words = part.strip()
                if not words.startswith("promptci "):
                    continue
                words = _OPTIONAL.sub("", words)
                words = re.sub(r"(\S+?)\|\S+", r"\1", words)  # gpo|opro|textgrad: the first
                yield f"{where}:{line + 1 + offset}", shlex.split(words, comments=True)[1:]


SHELL = list(shell_commands())


@pytest.mark.parametrize(("where", "args"), SHELL, ids=[w for w, _ in SHELL])
def test_every_promptci_line_in_a_shell_example_is_accepted(where: str, args: list[str], repo: Repo) -> None:
    os.chdir(repo.path)
    _parse(cli, "promptci", args)


def _parse(command: click.Command, name: str, args: list[str], parent: click.Context | None = None) -> None:
    try:
        ctx = command.make_context(name, list(args), parent=parent)
    except click.BadParameter as exc:
        if "does not exist" in str(exc.message):
            return  # a user's file the example names (logs/*.jsonl, a report)
        raise
    if isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        sub, found, remaining = command.resolve_command(ctx, rest)
        assert found is not None and sub is not None, f"no command {rest[:1]}"
        _parse(found, sub, remaining, ctx)


def test_a_line_the_cli_refuses_fails_the_check(repo: Repo) -> None:
    os.chdir(repo.path)
    for refused in (["eval", "--no-such-option"], ["evaluate"], ["label", "set"]):
        with pytest.raises(click.UsageError):
            _parse(cli, "promptci", refused)


SYNOPSES = [
    (f"{w}:{n}", " ".join(text.split())) for w, n, text in fenced(("",)) if text.lstrip().startswith("promptci ")
]


@pytest.mark.parametrize(("where", "synopsis"), SYNOPSES, ids=[w for w, _ in SYNOPSES])
def test_every_option_a_synopsis_names_is_the_commands(where: str, synopsis: str) -> None:
    words = synopsis.split()[1:]
    command: click.Command = cli
    while isinstance(command, click.Group) and words and re.fullmatch(r"[a-z]+", words[0]):
        found = command.get_command(click.Context(command), words.pop(0))
        assert found is not None, synopsis
        command = found
    known = {name for p in command.params for name in getattr(p, "opts", [])}
    named = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", " ".join(words)))
    assert named <= known, f"{where}: not options of the command: {sorted(named - known)}"


def _kind(doc: object) -> str | None:
    if not isinstance(doc, dict):
        return None
    if "steps" in doc and "name" in doc:
        return "pipeline"
    if "name" in doc and ("messages" in doc or "template" in doc):
        return "prompt"
    if "prompts" in doc and ("scorers" in doc or "cases" in doc or "dataset" in doc):
        return "suite"
    if set(doc) & {"db", "gate", "prompts_dir", "evals_dir", "results", "model"} and "jobs" not in doc:
        return "config"
    return None


YAML = [(f"{w}:{n}", text) for w, n, text in fenced(("yaml",))]


@pytest.mark.parametrize(("where", "text"), YAML, ids=[w for w, _ in YAML])
def test_every_yaml_example_of_a_promptci_file_validates(where: str, text: str) -> None:
    from promptci.config import Config
    from promptci.evals.suite import Suite
    from promptci.pipelines.spec import PipelineSpec
    from promptci.prompts.spec import PromptSpec

    doc = yaml.safe_load(text)
    kind = _kind(doc)
    if doc is not None and "jobs" in doc:  # a workflow: GitHub's schema
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"workflow-{abs(hash(where))}.yml"
        path.write_text(text)
        checked = subprocess.run(
            ["python", "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        return
    if kind is None:
        pytest.skip("a fragment, not a whole file")
    model = {"prompt": PromptSpec, "suite": Suite, "pipeline": PipelineSpec, "config": Config}[kind]
    model.model_validate(doc)


PYTHON = [(f"{w}:{n}", text) for w, n, text in fenced(("python",))]


@pytest.mark.parametrize(("where", "text"), PYTHON, ids=[w for w, _ in PYTHON])
def test_every_python_example_compiles_and_calls_the_api_as_it_is(where: str, text: str) -> None:
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if isinstance(node.func.value, ast.Name) and node.func.value.id == "promptci":
            function = getattr(promptci, node.func.attr)  # an AttributeError: the API has no such name
            args = [None] * len(node.args)
            kwargs = {k.arg: None for k in node.keywords if k.arg}
            inspect.signature(function).bind(*args, **kwargs)


def test_the_load_render_and_record_examples_run(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/api.md's and docs/production.md's examples, run on the `promptci init` example."""
    monkeypatch.chdir(repo.path)
    monkeypatch.setenv("PROMPTCI_OUTCOMES", str(repo.path / "outcomes.jsonl"))
    assert repo.run("label", "set", "sentiment", "production").code == 0
    assert repo.run("bundle", "-o", "promptci-bundle.json").code == 0
    runnable = [text for where, text in PYTHON if "promptci.load(" in text or "prompt.record(" in text]
    assert len(runnable) == 3
    scope: dict[str, object] = {}
    for text in runnable:
        exec(compile(text, "<docs>", "exec"), scope)
    messages = scope["messages"]
    assert isinstance(messages, list) and "Review: Broke in a day" in messages[-1]["content"]
    assert len((repo.path / "outcomes.jsonl").read_text().splitlines()) == 2

"""Property tests over every loader: whatever bytes a contributor commits, promptci exits 0 or 2
with at most one line of error, never a traceback, and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptci.cli import main
from tests.conftest import Repo
from tests.hostile.conftest import FAIL_EVERY_CASE, FUZZ, fail_every_case

# YAML-ish fragments mixed with arbitrary bytes: anchors, aliases, tags, flow and block styles.
FRAGMENTS = st.sampled_from(
    [
        "name: x\n",
        "template: '{{ a }}'\n",
        "messages:\n  - role: user\n    content: hi\n",
        "&a [1, 2]\n",
        "*a\n",
        "b: &b {c: *b}\n",
        "!!python/object:os.system\n",
        "- ",
        ": ",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "\t",
        "\n",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "? ",
        "|\n  ",
        ">-\n  ",
        "{{",
        "}}",
        "{%",
        "%}",
        "\x00",
        "\ufeff",
        "é",
        "prompts: [x]\n",
        "scorers: [{type: exact}]\n",
        "variables: {a: string}\n",
        "steps:\n  - id: a\n    prompt: sentiment\n    vars: {review: '{{ inputs.r }}'}\n",
        "  - id: b\n    prompt: sentiment\n    vars: {review: '{{ steps.a.output }}'}\n",
        "inputs: {r: string}\n",
        "conversation: {score: all}\n",
        "cases:\n  - turns: [hi, {user: again, expected: x}]\n",
        "messages:\n  - history: h\n",
        "variables: {h: messages, p: image}\n",
        "    content:\n      - {type: image, image: img/x.png}\n",
        "      - {type: text, text: '{{ p }}'}\n",
        "output: a\n",
        "    parse: {regex: '(\\w+'}\n",
    ]
)
CONTENT = st.one_of(
    st.binary(max_size=300),
    st.lists(FRAGMENTS, max_size=25).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def _snapshot(root: Path) -> dict[str, bytes]:
    files = {}
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def _check(root: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(root)
    capsys.readouterr()
    code = main(["-C", str(root), *args])
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (args, code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, err
    after = _snapshot(root)
    if code == 2:  # refused: not a byte written anywhere
        assert after == before, args
    else:  # a run that went ahead records itself under .promptci/ and touches nothing else
        assert _outside_promptci(after) == _outside_promptci(before), args


def _outside_promptci(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if not k.startswith(".promptci/")}


LOADERS = {
    "prompt": ("prompts/fuzz.yaml", [["ls"], ["show", "fuzz"], ["render", "fuzz"], ["lint"]]),
    "suite": ("evals/fuzz.yaml", [["eval", "evals/fuzz.yaml", "--sample", "1"], ["lint"]]),
    "config": ("promptci.yaml", [["ls"], ["lint"]]),
    "pipeline": ("pipelines/fuzz.yaml", [["ls"], ["run", "fuzz", "--var", "r=x"], ["lint"]]),
    "labels": ("labels.yaml", [["label", "ls"], ["lint"]]),
    "dataset": ("evals/rows.jsonl", [["eval", "evals/data.yaml"]]),
    "csv": ("evals/rows.csv", [["eval", "evals/csv.yaml"]]),
    "vars": ("vars.yaml", [["render", "sentiment", "--vars-file", "vars.yaml"]]),
    "turns": ("evals/talks.jsonl", [["eval", "evals/talk.yaml"]]),
    "image": ("img/fuzz.png", [["render", "pic"], ["lint"]]),
}

CHAT = f"""\
name: chat
messages:
  - {{role: system, content: "{FAIL_EVERY_CASE}"}}
  - history: history
variables: {{history: messages}}
"""
PIC = """\
name: pic
model: {provider: openai, model: m}
messages:
  - role: user
    content:
      - {type: text, text: What is it?}
      - {type: image, image: img/fuzz.png}
"""


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_any_bytes_in_a_loaded_file_exit_0_1_or_2(kind: str, repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    path, commands = LOADERS[kind]
    # Every case renders to a bomb, so no suite ever loads a model: only the loaders are under test.
    fail_every_case(repo)
    repo.write(
        "evals/data.yaml",
        "prompts: [sentiment]\nscorers: [{type: exact}]\ndataset: {path: rows.jsonl, vars: {review: r}, expected: e}\n",
    )
    repo.write(
        "evals/csv.yaml",
        "prompts: [sentiment]\nscorers: [{type: exact}]\ndataset: {path: rows.csv, vars: {review: r}, expected: e}\n",
    )
    repo.write("prompts/chat.yaml", CHAT)
    repo.write(
        "evals/talk.yaml",
        "prompts: [chat]\nscorers: [{type: exact}]\nconversation: {}\n"
        "dataset: {path: talks.jsonl, vars: {}, turns: t}\n",
    )
    repo.write("prompts/pic.yaml", PIC)
    target = repo.path / path
    target.parent.mkdir(parents=True, exist_ok=True)

    @FUZZ
    @given(content=CONTENT)
    def run(content: bytes) -> None:
        target.write_bytes(content)
        for args in commands:
            _check(repo.path, args, capsys)

    cwd = os.getcwd()
    try:
        run()
    finally:
        os.chdir(cwd)

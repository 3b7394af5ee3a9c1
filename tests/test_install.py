"""No instruction, hint or default installs a bare `promptci` from the package index, where that
name belongs to an unrelated project: the distribution is promptci-gate, or a path."""

from __future__ import annotations

import re

import pytest
import yaml

from promptci.providers import models
from tests.conftest import REPO_ROOT

# `pip install promptci`, `pip install "promptci[local]"`, `install: promptci` …: the name alone.
BARE = re.compile(
    r"""(?:pip install[^|;&\n]*?[ \t"'=]|\binstall:\s*["']?|default:\s*["'])promptci(?:\[[^\]]*\])?(?=["'\s]|$)""",
    re.MULTILINE,
)
SOURCES = ["README.md", "action.yml", "pyproject.toml", ".pre-commit-hooks.yaml", "promptci.yaml"]


def _texts() -> dict[str, str]:
    files = [REPO_ROOT / name for name in SOURCES]
    for folder in ("docs", ".github", "promptci"):
        files += [
            p
            for p in (REPO_ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in (".md", ".yml", ".yaml", ".py", ".j2")
        ]
    return {str(p.relative_to(REPO_ROOT)): p.read_text() for p in files if p.is_file()}


def test_no_instruction_installs_a_bare_promptci() -> None:
    found = [f"{path}: {m.group(0)!r}" for path, text in _texts().items() for m in BARE.finditer(text)]
    assert found == []


@pytest.mark.parametrize(
    "text",
    [
        "pip install promptci",
        "pip install 'promptci[local]'",
        'pip install -U "promptci[s3]"',
        "pip install promptci==1.0",
        "install: promptci",
        'default: "promptci[local]"',
    ],
)
def test_the_check_would_see_a_bare_install(text: str) -> None:
    assert BARE.search(text.replace("==1.0", ""))


def test_the_distribution_has_a_name_of_its_own() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^name = "promptci-gate"$', pyproject, re.MULTILINE)
    assert 'promptci = "promptci.__main__:entry"' in pyproject
    assert "promptci-gate[local]" in models.LOCAL_INSTALL and "whl/cpu" in models.LOCAL_INSTALL


def test_the_action_installs_from_its_own_checkout() -> None:
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    assert action["inputs"]["install"]["default"] == "" and action["inputs"]["extras"]["default"] == "local"
    step = next(s for s in action["runs"]["steps"] if s.get("name") == "Install promptci")
    install = step["run"]
    assert '"$ACTION_PATH[$EXTRAS]"' in install and step["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert "--index-url" in install and action["inputs"]["torch-index"]["default"].endswith("/whl/cpu")
    for template in ("promptci.yml", "promptci-optimize.yml"):
        text = (REPO_ROOT / "promptci/templates/github" / template).read_text()
        assert '"pipelines/**"' in text  # a pipeline change triggers the gate

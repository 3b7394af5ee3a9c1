"""The import layers in pyproject.toml hold, and a new upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO_ROOT


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(root)}  # this tree's promptci, not the installed one
    return subprocess.run(
        [script, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_layers_hold() -> None:
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "promptci", tmp_path / "promptci", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    files = tmp_path / "promptci" / "files.py"
    files.write_text(files.read_text() + "\n\ndef _upward() -> None:\n    from .store import Store  # noqa: F401\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "promptci.files -> promptci.store" in result.stdout


def test_no_statement_is_built_with_an_f_string() -> None:
    """SQL text gets names only through the store's checked ``sql`` template, and values only as
    bound parameters: no f-string anywhere in the package reads like a statement."""
    import ast
    import re

    statement = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|ATTACH|COPY)\b")
    found = []
    for path in sorted((REPO_ROOT / "promptci").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
                if statement.search(text):
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert found == []

"""``promptci init``: a new project with a working example."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import InputError
from .yamlio import atomic_write

# Template file -> where it goes in the new project.
FILES = {
    "promptci.yaml": "promptci.yaml",
    "prompts/sentiment.yaml": "prompts/sentiment.yaml",
    "evals/sentiment.yaml": "evals/sentiment.yaml",
    "evals/reviews.jsonl": "evals/reviews.jsonl",
    "pre-commit-config.yaml": ".pre-commit-config.yaml",
}
IGNORE_LINE = ".promptci/"
# Template -> workflow, for ``init --github``: the regression gate and the optimizer passes.
WORKFLOWS = {
    "promptci.yml": ".github/workflows/promptci.yml",
    "promptci-optimize.yml": ".github/workflows/promptci-optimize.yml",
}


@dataclass
class ScaffoldResult:
    written: list[str] = field(default_factory=list)
    git_initialized: bool = False


def scaffold(directory: Path, *, force: bool = False) -> ScaffoldResult:
    """Write the starter files into ``directory``; refuse to overwrite unless ``force``.

    Nothing is written when any target exists and ``force`` is off.
    """
    directory = directory.resolve()
    existing = [dest for dest in FILES.values() if (directory / dest).exists()]
    if existing and not force:
        raise InputError(
            f"already exists: {', '.join(existing)}",
            path=directory,
            hint="use --force to overwrite, or run init in another directory",
        )
    result = ScaffoldResult()
    directory.mkdir(parents=True, exist_ok=True)
    if not _inside_git(directory):
        from .git import init_repo

        init_repo(directory)
        result.git_initialized = True
    templates = resources.files("promptci") / "templates" / "init"
    for source, dest in FILES.items():
        atomic_write(directory / dest, (templates / source).read_text(encoding="utf-8"))
        result.written.append(dest)
    gitignore = directory / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if IGNORE_LINE not in lines:
        atomic_write(gitignore, "\n".join([*lines, IGNORE_LINE]) + "\n")
        result.written.append(".gitignore")
    return result


# What `uses:` takes for an action: OWNER/REPO[/PATH]@REF, or a local ./PATH. Nothing else (a
# newline, a quote, a space) is written into a workflow.
ACTION_REF = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,8}@[A-Za-z0-9][A-Za-z0-9_./-]{0,199}"
    r"|\./[A-Za-z0-9_.-]{1,100}(/[A-Za-z0-9_.-]{1,100}){0,8}|\./"
)


def scaffold_github(directory: Path, action: str, *, force: bool = False) -> list[str]:
    """Write the two workflows into ``directory``, using the composite action ``action``
    (``OWNER/REPO@REF``); refuse to overwrite unless ``force``."""
    if not ACTION_REF.fullmatch(action):
        raise InputError(
            f"--action {action!r} is not OWNER/REPO@REF, OWNER/REPO/PATH@REF or ./PATH",
            hint="letters, digits and '._-' in its parts; it is written into the workflows' `uses:`",
        )
    directory = directory.resolve()
    existing = [dest for dest in WORKFLOWS.values() if (directory / dest).exists()]
    if existing and not force:
        raise InputError(f"already exists: {', '.join(existing)}", path=directory, hint="use --force to overwrite")
    templates = resources.files("promptci") / "templates" / "github"
    written = []
    for source, dest in WORKFLOWS.items():
        text = (templates / source).read_text(encoding="utf-8").replace("__ACTION__", action)
        (directory / dest).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / dest, text)
        written.append(dest)
    return written


def _inside_git(directory: Path) -> bool:
    return any((d / ".git").exists() for d in (directory, *directory.parents))

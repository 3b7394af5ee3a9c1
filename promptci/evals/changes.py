"""``--changed``: the suites that a change touches, through their prompts, datasets or own files."""

from __future__ import annotations

from pathlib import Path

from ..errors import GitError
from ..project import Project
from ..prompts.registry import Ref, Registry
from .plan import read_suite


def base_revision(registry: Registry, base: str | None) -> str:
    """``base`` as a sha; by default the merge-base of HEAD with the default branch."""
    repo = registry.repo
    if base:
        return repo.resolve(base)
    branch = registry.project.config.default_branch or repo.default_branch()
    if branch is None:
        raise GitError("cannot tell the default branch", hint="pass --base REF or set default_branch in promptci.yaml")
    merge_base = repo.merge_base(repo.resolve(branch))
    if merge_base is None:
        raise GitError(f"HEAD has no common ancestor with {branch}", hint="pass --base REF")
    return merge_base


def changed_suites(project: Project, suites: list[Path], base: str | None) -> tuple[list[Path], str]:
    """The suites affected by changes since ``base`` (uncommitted edits included), and the base sha."""
    registry = Registry(project)
    sha = base_revision(registry, base)
    changed = {registry.repo.toplevel / p for p in registry.repo.changed_since(sha)}
    if project.config_path in changed or (project.labels_path in changed and _uses_labels(project, suites)):
        return suites, sha
    prompt_files = {name: project.root / path for name, path in registry.paths().items()}
    selected = []
    for path in suites:
        suite, _ = read_suite(project, path)
        touched = {path}
        if suite.dataset:
            touched.add((path.parent / suite.dataset.path).resolve())
        touched |= {prompt_files[n] for n in (Ref.parse(r).name for r in suite.prompts) if n in prompt_files}
        if touched & changed:
            selected.append(path)
    return selected, sha


def _uses_labels(project: Project, suites: list[Path]) -> bool:
    return any("@" in r for p in suites for r in read_suite(project, p)[0].prompts)

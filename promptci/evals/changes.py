"""``--changed``: the suites that a change touches, through their prompts (a pipeline's own file
and its step prompts), datasets or own files."""

from __future__ import annotations

from pathlib import Path

from ..errors import GitError
from ..pipelines.load import Pipelines
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
    pipelines = Pipelines(project, registry)
    pipeline_names = set(pipelines.paths()) if pipelines.files() else set()
    selected = []
    for path in suites:
        suite, _ = read_suite(project, path)
        touched = {path}
        if suite.dataset:
            touched.add((path.parent / suite.dataset.path).resolve())
        for name in (Ref.parse(r).name for r in suite.prompts):
            if name in pipeline_names:  # its own file and each step's prompt
                pipeline = pipelines.get(name)
                touched |= {project.root / pipeline.path, *(project.root / p.path for p in pipeline.prompts)}
            elif name in prompt_files:
                touched.add(prompt_files[name])
        if touched & changed:
            selected.append(path)
    return selected, sha


def _uses_labels(project: Project, suites: list[Path]) -> bool:
    return any("@" in r for p in suites for r in read_suite(project, p)[0].prompts)

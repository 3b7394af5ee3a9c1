"""A prompt's versions through git history, and the difference between two of them."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import NotFoundError, PromptciError
from ..git import Commit
from ..yamlio import parse_yaml
from .registry import Ref, Registry, prompt_hash, with_schema_files


@dataclass(frozen=True)
class Version:
    """One version of a prompt. ``commit`` is None for uncommitted working-tree changes."""

    commit: Commit | None
    path: str
    content_hash: str | None  # None where that version does not parse

    def as_dict(self) -> dict[str, Any]:
        return {
            "commit": asdict(self.commit) if self.commit else None,
            "path": self.path,
            "content_hash": self.content_hash,
        }


def versions(registry: Registry, name: str, max_count: int | None = None) -> list[Version]:
    """The versions of ``name``, newest first, following renames of its file."""
    try:
        prompt = registry.get(name)
    except NotFoundError:
        prompt = registry.get(name, "HEAD")  # deleted from the working tree, still in history
    repo = registry.repo
    git_path = repo.relpath(registry.project.root / prompt.path)
    found: list[Version] = []
    if prompt.rev is None and repo.is_dirty(git_path):
        found.append(Version(None, prompt.path, prompt.content_hash))
    for commit in repo.log(git_path, max_count=max_count):
        text = repo.read(commit.sha, commit.path or git_path)
        path = commit.path or git_path
        found.append(Version(commit, path, _hash(text, path, registry, commit.sha)))
    return found[:max_count] if max_count else found


def _hash(text: str | None, path: str, registry: Registry, sha: str) -> str | None:
    if text is None:
        return None  # the commit deleted the file
    try:
        return prompt_hash(with_schema_files(parse_yaml(text, path), registry.reader(sha)), registry.images(sha))
    except PromptciError:
        return None


@dataclass(frozen=True)
class PromptDiff:
    old_label: str
    new_label: str
    old_hash: str
    new_hash: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.old_hash != self.new_hash}


def diff_versions(registry: Registry, name: str, rev1: str, rev2: str | None) -> PromptDiff:
    """A unified diff of the prompt file between two revisions or labels (rev2 None: working tree)."""
    old = registry.resolve(Ref(name, rev1))
    new = registry.resolve(Ref(name, rev2))
    old_label, new_label = f"{name}@{rev1}", f"{name}@{rev2}" if rev2 else f"{name} (working tree)"
    lines = difflib.unified_diff(
        old.source.splitlines(keepends=True),
        new.source.splitlines(keepends=True),
        fromfile=f"{old.path} ({old_label})",
        tofile=f"{new.path} ({new_label})",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return PromptDiff(old_label, new_label, old.content_hash, new.content_hash, text)

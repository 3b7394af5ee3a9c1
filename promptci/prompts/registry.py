"""Finding prompts by name, in the working tree or at any git revision or label."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..config import validation_error
from ..errors import InputError, NotFoundError, PromptciError
from ..files import read_text
from ..project import Project
from ..yamlio import YamlDocument, parse_yaml
from .labelfile import LATEST, read_labels
from .prompt import Prompt, PromptVersion, content_hash
from .spec import PromptSpec

if TYPE_CHECKING:
    from ..git import Repo

PROMPT_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Ref:
    """``NAME``, ``NAME@REV`` or ``NAME@LABEL`` split apart."""

    name: str
    at: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        name, sep, at = text.partition("@")
        if not name or (sep and not at):
            raise InputError(f"bad prompt reference '{text}'", hint="write NAME, NAME@REV or NAME@LABEL")
        return cls(name, at or None)

    def __str__(self) -> str:
        return f"{self.name}@{self.at}" if self.at else self.name


def parse_prompt(text: str, path: str) -> tuple[YamlDocument, PromptSpec]:
    """Parse and validate one prompt file; the first problem raises a positioned error."""
    doc = parse_yaml(text, path)
    if not isinstance(doc.data, dict):
        raise InputError("a prompt file must be a mapping with at least 'name'", path=path, line=1, col=1)
    try:
        return doc, PromptSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(exc, doc) from None


def declared_name(text: str, path: str) -> str | None:
    """The ``name`` a file declares, read without validating the rest."""
    try:
        data = parse_yaml(text, path).data
    except InputError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


class Registry:
    """The prompts of one project. Git is opened only when a revision is asked for."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._repo: Repo | None = None

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            from ..git import Repo

            self._repo = Repo(self.project.root)
        return self._repo

    def files(self) -> list[Path]:
        """The prompt files in the working tree, sorted."""
        root = self.project.prompts_dir
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.suffix in PROMPT_SUFFIXES and p.is_file())

    def paths(self) -> dict[str, str]:
        """Prompt name -> file (relative to the root) in the working tree, for readable files."""
        return {name: path for path, name in self._index_worktree() if name}

    def load_all(self, rev: str | None = None) -> list[Prompt]:
        """Every prompt in the working tree or at ``rev``, validated; the first bad file raises."""
        if rev is None:
            return [self._load_worktree(path) for path in self.files()]
        sha = self.repo.resolve(rev)
        index = self._index_at(sha)
        names = sorted({name for _, name in index if name})
        return [self._load_at(sha, self._find(name, index, rev), rev) for name in names]

    def get(self, name: str, rev: str | None = None) -> Prompt:
        """The prompt called ``name`` in the working tree, or at commit-ish ``rev``."""
        if rev is None:
            return self._load_worktree(self.project.root / self._find(name, self._index_worktree(), None))
        sha = self.repo.resolve(rev)
        return self._load_at(sha, self._find(name, self._index_at(sha), rev), rev)

    def get_label(self, name: str, label: str) -> Prompt:
        """The version of ``name`` that ``label`` points at."""
        labels = read_labels(self.project).get(name, {})
        if label == LATEST:
            return self.get(name, "HEAD")
        if label not in labels:
            known = ", ".join(sorted(labels)) or "none"
            raise NotFoundError(f"prompt '{name}' has no label '{label}'", hint=f"labels: {known}")
        return self.get(name, labels[label])

    def resolve(self, ref: str | Ref) -> Prompt:
        """A prompt from ``NAME``, ``NAME@REV``, ``NAME@LABEL`` or ``NAME@latest``."""
        ref = Ref.parse(ref) if isinstance(ref, str) else ref
        if ref.at is None:
            return self.get(ref.name)
        labels = read_labels(self.project).get(ref.name, {})
        if ref.at in labels:
            return self.get(ref.name, labels[ref.at])
        if ref.at == LATEST:
            return self.get(ref.name, "HEAD")
        try:
            return self.get(ref.name, ref.at)
        except NotFoundError as exc:
            if exc.message.startswith("unknown revision"):
                known = ", ".join(sorted(labels)) or "none"
                raise NotFoundError(
                    f"'{ref.at}' is neither a label of '{ref.name}' nor a git revision",
                    hint=f"labels: {known}; or use a sha, tag, branch or HEAD~N",
                ) from None
            raise

    def _load_at(self, sha: str, path: str, rev: str) -> Prompt:
        git_path = self.git_path(path)
        text = self.repo.read(sha, git_path)
        assert text is not None
        doc, spec = parse_prompt(text, f"{path}@{rev}")
        digest = content_hash(doc.data)
        return Prompt(spec, path, text, digest, sha, lambda: self._version_at(git_path, sha, digest))

    def _load_worktree(self, path: Path) -> Prompt:
        rel = self.project.rel(path)
        text = read_text(self.project.path(path), rel, what="prompt")
        doc, spec = parse_prompt(text, rel)
        digest = content_hash(doc.data)
        return Prompt(spec, rel, text, digest, None, lambda: self._version_worktree(path, digest))

    def _index_worktree(self) -> list[tuple[str, str | None]]:
        index: list[tuple[str, str | None]] = []
        for path in self.files():
            rel = self.project.rel(path)
            try:
                text = read_text(self.project.path(path), rel, what="prompt")
            except PromptciError:
                index.append((rel, None))  # unreadable, outside the project, or not UTF-8: lint says which
                continue
            index.append((rel, declared_name(text, rel)))
        return index

    def _index_at(self, sha: str) -> list[tuple[str, str | None]]:
        prefix = self.git_path(self.project.config.prompts_dir)
        index = []
        for git_path in self.repo.list_files(sha, prefix):
            if not git_path.endswith(PROMPT_SUFFIXES):
                continue
            rel = self.project.rel(self.repo.toplevel / git_path)
            index.append((rel, declared_name(self.repo.read(sha, git_path) or "", rel)))
        return index

    def _find(self, name: str, index: Iterable[tuple[str, str | None]], rev: str | None) -> str:
        index = list(index)
        paths = [path for path, declared in index if declared == name]
        where = f" at {rev}" if rev else ""
        if not paths:
            unreadable = [path for path, declared in index if declared is None]
            if unreadable and rev is None:
                self._raise_unreadable(name, unreadable)
            hint = f"run `promptci ls{' --rev ' + rev if rev else ''}` to see the names"
            if unreadable:
                hint = f"these files could not be read and may declare it: {', '.join(unreadable)}; run `promptci lint`"
            raise NotFoundError(f"no prompt named '{name}'{where}", hint=hint)
        if len(paths) > 1:
            raise InputError(
                f"prompt name '{name}' is declared by {len(paths)} files{where}: {', '.join(paths)}",
                path=paths[1],
                hint="names must be unique; rename one",
            )
        return paths[0]

    def _raise_unreadable(self, name: str, unreadable: list[str]) -> None:
        """The first unreadable file's own error: it may be the prompt asked for."""
        try:
            self._load_worktree(self.project.root / unreadable[0])
        except PromptciError as exc:
            others = f" (and {len(unreadable) - 1} more unreadable)" if len(unreadable) > 1 else ""
            exc.hint = f"no readable file declares prompt '{name}'; this one may{others}"
            raise

    def git_path(self, rel: str) -> str:
        return self.repo.relpath(self.project.root / rel)

    def _version_worktree(self, path: Path, digest: str) -> PromptVersion:
        from ..errors import GitError

        try:
            repo = self.repo
        except GitError:
            return PromptVersion(digest, None, True)
        git_path = repo.relpath(path)
        if repo.is_dirty(git_path):
            return PromptVersion(digest, None, True)
        last = repo.last_change(git_path)
        return PromptVersion(digest, last.sha if last else None, False)

    def _version_at(self, git_path: str, sha: str, digest: str) -> PromptVersion:
        last = self.repo.last_change(git_path, sha)
        return PromptVersion(digest, last.sha if last else sha, False)

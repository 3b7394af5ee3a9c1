"""Finding prompts by name, in the working tree or at any git revision or label."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import ValidationError

from ..config import validation_error
from ..errors import InputError, NotFoundError, PromptciError
from ..files import read_text
from ..project import Project
from ..yamlio import YamlDocument, parse_yaml
from . import schemafiles
from .images import ImageError, Images, digests
from .labelfile import LATEST, read_labels
from .prompt import Prompt, PromptVersion, content_hash
from .schemafiles import Reader
from .spec import PromptSpec

if TYPE_CHECKING:
    from ..git import Repo

PROMPT_SUFFIXES = (".yaml", ".yml")

T = TypeVar("T")


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


def parse_prompt(text: str, path: str, read: Reader | None = None) -> tuple[YamlDocument, PromptSpec]:
    """Parse and validate one prompt file; the first problem raises a positioned error.

    Its schema files (``$ref: schemas/x.json``) are read with ``read`` and put in place, so the
    document's data, and the content hash taken over it, hold them."""
    doc = parse_yaml(text, path)
    if not isinstance(doc.data, dict):
        raise InputError("a prompt file must be a mapping with at least 'name'", path=path, line=1, col=1)
    doc = with_schema_files(doc, read)
    try:
        return doc, PromptSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(exc, doc) from None


def prompt_hash(doc: YamlDocument, images: Images) -> str:
    """A prompt's content hash: its data, schema files in place, and the bytes of each image it
    names by a fixed repository path (a missing or unfit image is an error at its line)."""
    data = doc.data
    try:
        found = digests(data.get("messages") if isinstance(data, dict) else None, images)
    except ImageError as exc:
        at = _image_position(doc, str(exc))
        raise InputError(str(exc), path=doc.path, line=at[0], col=at[1]) from None
    pool = data.get("examples") if isinstance(data, dict) else None
    if isinstance(pool, dict) and isinstance(pool.get("from"), str):  # the example pool's bytes, too
        from .examples import MAX_POOL_BYTES

        try:
            pooled = images.read_file(pool["from"], MAX_POOL_BYTES, "example pool")
        except ImageError as exc:
            where = doc.position(("examples", "from"), value=True)
            raise InputError(str(exc), path=doc.path, line=where.line, col=where.col) from None
        found[pool["from"]] = hashlib.sha256(pooled).hexdigest()
    return content_hash({**data, "images": found} if found else data)


def _image_position(doc: YamlDocument, message: str) -> tuple[int, int]:
    """Where the image a message names is written (the first image part that names it)."""
    messages = doc.data.get("messages") if isinstance(doc.data, dict) else None
    for i, m in enumerate(messages if isinstance(messages, list) else ()):
        content = m.get("content") if isinstance(m, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if (
                isinstance(part, dict)
                and isinstance(part.get("image"), str)
                and f"'{part['image'].strip()}'" in message
            ):
                pos = doc.position(("messages", i, "content", j, "image"), value=True)
                return pos.line, pos.col
    return 1, 1


def with_schema_files(doc: YamlDocument, read: Reader | None) -> YamlDocument:
    """``doc`` with its schema files put in place; a ref that cannot be is an error at its line."""
    if not schemafiles.has_file_refs(doc.data):
        return doc
    try:
        if read is None:
            raise schemafiles.SchemaFileError((), "this prompt's schema files can only be read from its repository")
        return replace(doc, data=schemafiles.inline(doc.data, read))
    except schemafiles.SchemaFileError as exc:
        at = doc.position(exc.at, value=True)
        raise InputError(exc.message, path=doc.path, line=at.line, col=at.col) from None


def declared_name(text: str, path: str) -> str | None:
    """The ``name`` a file declares, read without validating the rest."""
    try:
        data = parse_yaml(text, path).data
    except InputError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


class Files(Generic[T]):
    """Named YAML files under one directory of a project, in the working tree or at any git
    revision or label. Git is opened only when a revision is asked for. Subclasses say which
    directory and how one file is read."""

    noun = "file"

    def __init__(self, project: Project) -> None:
        self.project = project
        self._repo: Repo | None = None

    @property
    def directory(self) -> str:
        raise NotImplementedError

    def _read(self, text: str, path: str, shown: str, sha: str | None) -> tuple[T, str]:
        """The object ``text`` holds and its content hash: the file ``path`` (``shown`` in
        messages) at commit ``sha``, or in the working tree."""
        raise NotImplementedError

    def _made(self, thing: T, lookup: Callable[[], PromptVersion]) -> T:
        """``thing`` with the way to find its version attached."""
        raise NotImplementedError

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            from ..git import Repo

            self._repo = Repo(self.project.root)
        return self._repo

    def files(self) -> list[Path]:
        """The files in the working tree, sorted."""
        root = self.project.path(self.directory)
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.suffix in PROMPT_SUFFIXES and p.is_file())

    def paths(self) -> dict[str, str]:
        """Name -> file (relative to the root) in the working tree, for readable files."""
        return {name: path for path, name in self._index_worktree() if name}

    def load_all(self, rev: str | None = None) -> list[T]:
        """Everything in the working tree or at ``rev``, validated; the first bad file raises."""
        if rev is None:
            return [self._load_worktree(path) for path in self.files()]
        sha = self.repo.resolve(rev)
        index = self._index_at(sha)
        names = sorted({name for _, name in index if name})
        return [self._load_at(sha, self._find(name, index, rev), rev) for name in names]

    def get(self, name: str, rev: str | None = None) -> T:
        """The one called ``name`` in the working tree, or at commit-ish ``rev``."""
        if rev is None:
            return self._load_worktree(self.project.root / self._find(name, self._index_worktree(), None))
        sha = self.repo.resolve(rev)
        return self._load_at(sha, self._find(name, self._index_at(sha), rev), rev)

    def get_label(self, name: str, label: str, key: str | None = None) -> T:
        """The version of ``name`` that ``label`` points at; where the label splits traffic, the
        version ``key`` gets (the same one every time), or one drawn by the weights."""
        labels = read_labels(self.project).get(name, {})
        if label == LATEST:
            return self.get(name, "HEAD")
        if label not in labels:
            known = ", ".join(sorted(labels)) or "none"
            raise NotFoundError(f"{self.noun} '{name}' has no label '{label}'", hint=f"labels: {known}")
        target = labels[label]
        return self.get(name, target if isinstance(target, str) else target.choose(name, label, key))

    def resolve(self, ref: str | Ref) -> T:
        """From ``NAME``, ``NAME@REV``, ``NAME@LABEL`` or ``NAME@latest``."""
        ref = Ref.parse(ref) if isinstance(ref, str) else ref
        if ref.at is None:
            return self.get(ref.name)
        labels = read_labels(self.project).get(ref.name, {})
        if ref.at in labels:
            target = labels[ref.at]
            if not isinstance(target, str):
                raise InputError(
                    f"'{ref}' splits traffic between versions ({target.describe()}), so it names none of them",
                    hint=f"name one version: {ref.name}@<commit>",
                )
            return self.get(ref.name, target)
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

    def _load_at(self, sha: str, path: str, rev: str) -> T:
        git_path = self.git_path(path)
        text = self.repo.read(sha, git_path)
        assert text is not None
        thing, digest = self._read(text, path, f"{path}@{rev}", sha)
        return self._made(thing, lambda: self._version_at(git_path, sha, digest))

    def _load_worktree(self, path: Path) -> T:
        rel = self.project.rel(path)
        text = read_text(self.project.path(path), rel, what=self.noun)
        thing, digest = self._read(text, rel, rel, None)
        return self._made(thing, lambda: self._version_worktree(path, digest))

    def _index_worktree(self) -> list[tuple[str, str | None]]:
        index: list[tuple[str, str | None]] = []
        for path in self.files():
            rel = self.project.rel(path)
            try:
                text = read_text(self.project.path(path), rel, what=self.noun)
            except PromptciError:
                index.append((rel, None))  # unreadable, outside the project, or not UTF-8: lint says which
                continue
            index.append((rel, declared_name(text, rel)))
        return index

    def _index_at(self, sha: str) -> list[tuple[str, str | None]]:
        prefix = self.git_path(self.directory)
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
            raise NotFoundError(f"no {self.noun} named '{name}'{where}", hint=hint)
        if len(paths) > 1:
            raise InputError(
                f"{self.noun} name '{name}' is declared by {len(paths)} files{where}: {', '.join(paths)}",
                path=paths[1],
                hint="names must be unique; rename one",
            )
        return paths[0]

    def _raise_unreadable(self, name: str, unreadable: list[str]) -> None:
        """The first unreadable file's own error: it may be the one asked for."""
        try:
            self._load_worktree(self.project.root / unreadable[0])
        except PromptciError as exc:
            others = f" (and {len(unreadable) - 1} more unreadable)" if len(unreadable) > 1 else ""
            exc.hint = f"no readable file declares {self.noun} '{name}'; this one may{others}"
            raise

    def git_path(self, rel: str) -> str:
        return self.repo.relpath(self.project.root / rel)

    def images(self, sha: str | None) -> Images:
        """How a prompt's repository images are read: at commit ``sha``, or in the working tree."""
        root, limit = self.project.root, self.project.config.images.max_bytes
        if sha is None:
            return Images(lambda rel, most: schemafiles.worktree(root, most, "image")(rel), limit)
        repo = self.repo
        return Images(lambda rel, most: repo.read_bytes(sha, self.git_path(rel), limit=most, shown=rel), limit)

    def reader(self, sha: str | None) -> Reader:
        """How files the project's files refer to are read: at commit ``sha``, or in the working tree."""
        if sha is None:
            return schemafiles.worktree(self.project.root)
        return schemafiles.at_commit(self.repo, sha, self.git_path)

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


class Registry(Files[Prompt]):
    """The prompts of one project."""

    noun = "prompt"

    @property
    def directory(self) -> str:
        return self.project.config.prompts_dir

    def _read(self, text: str, path: str, shown: str, sha: str | None) -> tuple[Prompt, str]:
        doc, spec = parse_prompt(text, shown, self.reader(sha))
        found = self.images(sha)
        digest = prompt_hash(doc, found)
        return Prompt(spec, path, text, digest, sha, images=found), digest

    def _made(self, thing: Prompt, lookup: Callable[[], PromptVersion]) -> Prompt:
        return replace(thing, _commit_lookup=lookup)

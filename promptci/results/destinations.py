"""Where Parquet sets are published: a git branch, or a directory or fsspec URL.

Both hold the same layout (:class:`Listing`) and are only ever added to. A destination lists
what it holds, makes files readable by duckdb, and publishes new files.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import check_size
from ..git import Repo
from ..redact import redact
from ..store.parquet import MAX_FILE_BYTES, SETS

LEGACY_FILE = "results.duckdb"  # the whole-database snapshot the branch held before Parquet sets
MAX_SNAPSHOT_BYTES = 4 * 2**30
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_SET_FILE = re.compile(rf"^(runs|optimizations)/({_NAME})/([a-z_]+)\.parquet$")
_CACHE_FILE = re.compile(r"^cache/([0-9a-f]{32})\.parquet$")


@dataclass(frozen=True)
class Entry:
    path: str  # in the layout, e.g. runs/<id>/results.parquet
    location: str  # where it is read from: a file path, a URL, or the path in the branch's tree
    size: int | None


@dataclass
class Listing:
    """What a destination holds: complete sets by kind and id, published cache batches, and
    whether it still holds a whole-database snapshot."""

    sets: dict[str, dict[str, dict[str, Entry]]] = field(default_factory=lambda: {k: {} for k in SETS})
    cache: dict[str, Entry] = field(default_factory=dict)
    legacy: Entry | None = None

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Listing:
        listing = cls()
        found: dict[str, dict[str, dict[str, Entry]]] = {k: {} for k in SETS}
        for entry in entries:
            if entry.path == LEGACY_FILE:
                listing.legacy = entry
            elif match := _SET_FILE.match(entry.path):
                kind, set_id, table = match.groups()
                found[kind].setdefault(set_id, {})[table] = entry
            elif match := _CACHE_FILE.match(entry.path):
                listing.cache[match.group(1)] = entry
        for kind, sets in found.items():  # a set without its marker is still being written, or broken
            listing.sets[kind] = {i: files for i, files in sets.items() if SETS[kind][-1] in files}
        return listing

    def ids(self, kind: str) -> set[str]:
        return set(self.sets[kind])

    def lacking(self, kind: str, have: set[str]) -> dict[str, dict[str, Entry]]:
        """The sets of ``kind`` held here but not in ``have``, by id, in id order."""
        return {i: files for i, files in sorted(self.sets[kind].items()) if i not in have}

    def size(self) -> int:
        every = [e for sets in self.sets.values() for files in sets.values() for e in files.values()]
        return sum(e.size or 0 for e in [*every, *self.cache.values()])


class Destination:
    name: str

    def listing(self) -> Listing:
        raise NotImplementedError

    def readable(self, entries: Mapping[str, Entry], scratch: Path) -> dict[str, tuple[str, int | None]]:
        """Each entry as (a location duckdb can read, its size)."""
        return {key: (e.location, e.size) for key, e in entries.items()}

    def local_copy(self, entry: Entry, scratch: Path) -> Path:
        """``entry`` as a local file of at most :data:`MAX_FILE_BYTES`, so that what is checked is
        what is read."""
        location, _ = self.readable({entry.path: entry}, scratch)[entry.path]
        return Path(location)

    def publish(self, files: list[tuple[str, Path]], message: str, drop_legacy: bool) -> bool:
        """Add ``files`` (layout path, local file), in order; False when another publisher got in
        first and the caller should list again and retry."""
        raise NotImplementedError

    def filesystem(self) -> Any | None:
        """The fsspec filesystem duckdb must read locations through (None: duckdb reads them itself)."""
        return None

    def prefetch(self, entries: list[Entry], scratch: Path) -> None:
        """Make many entries readable at once, where that is cheaper than one by one."""


class Folder(Destination):
    """A directory, or anything fsspec reaches (``s3://bucket/prefix``, ``gcs://…``, ``memory://…``).

    A set's files are each written whole (a rename on a local disk, one object PUT on a store)
    and its marker last, so a reader never sees half a set. Publishers never touch each other's
    files, so concurrent pushes need no lock.
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.name = redact(url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **dict(options or {}))
        except (ImportError, ValueError) as exc:
            raise InputError(
                f"cannot use results url {self.name}: {exc}", hint="install the fsspec backend it needs"
            ) from None
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = self.root.rstrip("/")

    def _location(self, path: str) -> str:
        full = f"{self.root}/{path}"
        return full if self.local else str(self.fs.unstrip_protocol(full))

    def listing(self) -> Listing:
        try:
            found = self.fs.find(self.root, detail=True) if self.fs.exists(self.root) else {}
        except OSError as exc:
            raise InputError(f"cannot list results at {self.name}: {exc}") from None
        entries = []
        for full, info in found.items():
            path = str(full)[len(self.root) + 1 :] if str(full).startswith(self.root + "/") else None
            if path is not None and info.get("type", "file") == "file":
                entries.append(Entry(path, self._location(path), info.get("size")))
        return Listing.of(entries)

    def filesystem(self) -> Any | None:
        return None if self.local else self.fs

    def local_copy(self, entry: Entry, scratch: Path) -> Path:
        if self.local:
            return Path(entry.location)
        if entry.size is None or entry.size > MAX_FILE_BYTES:
            raise InputError(f"{entry.size} bytes, over the limit of {MAX_FILE_BYTES}", path=entry.path)
        target = scratch / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(f"{self.root}/{entry.path}", str(target))
        check_size(target.stat().st_size, entry.path, limit=MAX_FILE_BYTES)
        return target

    def publish(self, files: list[tuple[str, Path]], message: str, drop_legacy: bool) -> bool:
        for path, local in files:
            target = f"{self.root}/{path}"
            if self.local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                partial = f"{target}.{uuid.uuid4().hex[:8]}.partial"
                shutil.copyfile(local, partial)
                os.replace(partial, target)
            else:
                self.fs.put_file(str(local), target)
        return True


class Branch(Destination):
    """A git branch (``promptci-results``) on a remote. Each push is one commit that adds files
    to the tip's tree; a push that loses the race is retried on the new tip by the caller."""

    def __init__(self, repo: Repo, remote: str, branch: str) -> None:
        self.repo, self.remote, self.branch = repo, remote, branch
        self.name = f"{remote}/{branch}"
        self.tip: str | None = None

    def listing(self) -> Listing:
        self.tip = self.repo.fetch_branch(self.remote, self.branch)
        if self.tip is None:
            return Listing()
        return Listing.of(Entry(path, path, size) for path, size in self.repo.tree_files(self.tip))

    def readable(self, entries: Mapping[str, Entry], scratch: Path) -> dict[str, tuple[str, int | None]]:
        """The entries' blobs written out into ``scratch`` (duckdb cannot read a git tree), unless
        :meth:`prefetch` wrote them there already."""
        assert self.tip is not None
        found = {}
        for key, entry in entries.items():
            target = scratch / entry.path
            if not target.is_file():
                shown = f"{self.name}:{entry.path}"
                data = self.repo.read_bytes(self.tip, entry.path, limit=MAX_FILE_BYTES, shown=shown)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data or b"")
            found[key] = (str(target), entry.size)
        return found

    def prefetch(self, entries: list[Entry], scratch: Path) -> None:
        """Write many blobs out at once (``git archive``, a few hundred paths a call); one over
        the size limit is left for :meth:`readable` to refuse."""
        import tarfile

        from ..errors import GitError

        if self.tip is None:
            return
        paths = [e.path for e in entries if e.size is not None and e.size <= MAX_FILE_BYTES]
        for start in range(0, len(paths), 300):
            with contextlib.suppress(GitError, tarfile.TarError, OSError):  # read one by one instead
                self.repo.extract(self.tip, paths[start : start + 300], scratch)

    def legacy_copy(self, scratch: Path) -> Path | None:
        """The branch's whole-database snapshot, written out, or None where it has none."""
        if self.tip is None:
            return None
        data = self.repo.read_bytes(
            self.tip, LEGACY_FILE, limit=MAX_SNAPSHOT_BYTES, shown=f"{self.branch}:{LEGACY_FILE}"
        )
        if data is None:
            return None
        target = scratch / LEGACY_FILE
        target.write_bytes(data)
        return target

    def publish(self, files: list[tuple[str, Path]], message: str, drop_legacy: bool) -> bool:
        commit = self.repo.commit_files(
            dict(files), self.tip, message, remove=(LEGACY_FILE,) if drop_legacy else ()
        )  # fmt: skip
        return self.repo.push(self.remote, commit, self.branch)


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="promptci-results-")

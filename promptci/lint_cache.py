"""Per-file lint results cached by content hash, so unchanged files cost nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic, Facts, Located
from .version import __version__

if TYPE_CHECKING:
    from .project import Project

# Bump when the analysis changes what it reports for the same bytes.
FORMAT = f"7:{__version__}"


class LintCache:
    """A JSON file of ``path -> (content hash, facts)``; ``path=None`` disables caching."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._old: dict[str, Any] = {}
        self._new: dict[str, Any] = {}
        self._labels_ok: set[str] = set()
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}  # a damaged cache is rebuilt, never trusted
            if isinstance(data, dict) and data.get("format") == FORMAT:
                self._old = data.get("files", {})
                self._labels_ok = set(data.get("labels_ok", []))

    def facts(self, project: Project, path: Path, kind: str, analyse: Callable[[str, str, str], Facts]) -> Facts:
        """The facts of one file, from the cache when its bytes are unchanged."""
        from .errors import PromptciError
        from .files import decode, read_bytes

        rel = project.rel(path)
        try:
            raw = read_bytes(project.path(path), rel)
            text = decode(raw, rel)
        except PromptciError as exc:
            where = (rel, exc.line or 1, exc.col or 1)
            return Facts(rel, kind, [Diagnostic(*where, "error", "read", exc.message)])  # type: ignore[arg-type]
        digest = hashlib.sha256(raw).hexdigest()
        cached = self._old.get(rel)
        if cached and cached.get("digest") == digest and cached.get("kind") == kind:
            f = cached["facts"]
            facts = Facts(
                rel,
                kind,  # type: ignore[arg-type]
                [Diagnostic(**d) for d in f["found"]],
                Located(**f["name"]) if f["name"] else None,
                f["variables"],
                [Located(**r) for r in f["refs"]],
                [Located(**u) for u in f["uses"]],
                Located(**f["dataset"]) if f["dataset"] else None,
                [tuple(entry) for entry in f["labels"]],  # type: ignore[misc]
                Located(**f["optimize"]) if f.get("optimize") else None,
                [Located(**m) for m in f.get("scorer_modules", [])],
                Located(**f["loglik"]) if f.get("loglik") else None,
                f["required"],
                [Located(**p) for p in f["step_prompts"]],
                f["step_ids"],
                [[Located(**v) for v in step] for step in f["step_vars"]],
            )
        else:
            facts = analyse(text, rel, kind)
        self._new[rel] = {"digest": digest, "kind": kind, "facts": asdict(facts)}
        return facts

    def label_ok(self, prompt: str, sha: str) -> bool:
        return f"{prompt}@{sha}" in self._labels_ok

    def mark_label_ok(self, prompt: str, sha: str) -> None:
        self._labels_ok.add(f"{prompt}@{sha}")

    def save(self) -> None:
        """Write the cache; a cache that cannot be written is skipped silently."""
        if self.path is None:
            return
        from .yamlio import atomic_write

        data = {"format": FORMAT, "files": self._new, "labels_ok": sorted(self._labels_ok)}
        with contextlib.suppress(OSError):
            atomic_write(self.path, json.dumps(data, separators=(",", ":")))

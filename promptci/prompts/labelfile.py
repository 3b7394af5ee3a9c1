"""The labels file (``labels.yaml``): prompt -> label -> commit (or a split between commits),
read, validated and written.

Below the registry, which resolves ``NAME@LABEL`` through it; moving labels, with a
commit for every move, is :mod:`promptci.prompts.labels`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..errors import InputError
from ..files import read_text
from ..project import Project
from ..redact import clip
from ..yamlio import YamlDocument, parse_yaml
from .spec import NAME_PATTERN
from .split import Split, Target

LATEST = "latest"  # NAME@latest: the newest committed version (HEAD)
LABEL_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")
SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
HEADER = (
    "# Prompt labels: prompt -> label -> commit. Managed by `promptci label set/rm`;\n"
    "# every move is a commit, so `promptci label history` is the audit trail.\n"
)

Labels = dict[str, dict[str, Target]]


def read_labels(project: Project) -> Labels:
    """The labels in the working tree; no file means no labels."""
    path = project.labels_path
    if not path.is_file():
        return {}
    shown = project.rel(path)
    labels, _ = parse_labels(read_text(path, shown, what="labels file"), shown)
    return labels


def parse_labels(text: str, path: str) -> tuple[Labels, YamlDocument]:
    """Validate a labels file; the first problem raises a positioned :class:`InputError`."""
    doc = parse_yaml(text, path)
    data = doc.data if doc.data is not None else {}

    def fail(message: str, *loc: str) -> InputError:
        pos = doc.position(loc)
        return InputError(message, path=path, line=pos.line, col=pos.col)

    if not isinstance(data, dict):
        raise fail("the labels file must map prompt names to {label: commit}")
    labels: Labels = {}
    for prompt, entries in data.items():
        if not isinstance(prompt, str) or not re.fullmatch(NAME_PATTERN, prompt):
            raise fail(f"'{clip(str(prompt), 60)}' is not a prompt name", str(prompt))
        if not isinstance(entries, dict):
            raise fail(f"labels of '{prompt}' must be a mapping of label: commit", str(prompt))
        for label, sha in entries.items():
            if not isinstance(label, str) or not LABEL_RE.match(label) or label == LATEST:
                raise fail(f"bad label name '{label}'", str(prompt), str(label))
            if isinstance(sha, dict):
                entries[label] = _split(sha, f"{prompt}@{label}", fail)
            elif not isinstance(sha, str) or not SHA_RE.match(sha):
                raise fail(f"label '{prompt}@{label}' must point at a full commit sha", str(prompt), label)
        labels[str(prompt)] = dict(entries)
    return labels, doc


def _split(data: dict[object, object], where: str, fail: Callable[..., InputError]) -> Split:
    """``{versions: {sha: weight, …}}``, checked."""
    loc = where.split("@")
    if set(data) != {"versions"} or not isinstance(data["versions"], dict):
        raise fail(f"label '{where}' must be a commit sha or {{versions: {{sha: weight, …}}}}", *loc)
    weights = data["versions"]
    for sha in weights:
        if not isinstance(sha, str) or not SHA_RE.match(sha):
            raise fail(f"label '{where}': '{sha}' is not a full commit sha", *loc, "versions")
    try:
        return Split.of({str(k): v for k, v in weights.items()}, f"label '{where}'")  # type: ignore[misc]
    except InputError as exc:
        raise fail(exc.message, *loc, "versions") from None


def dump_labels(labels: Labels) -> str:
    body = "".join(
        f"{prompt}:\n" + "".join(_dump(label, target) for label, target in sorted(entries.items()))
        for prompt, entries in sorted(labels.items())
        if entries
    )
    return HEADER + (body or "{}\n")


def _dump(label: str, target: Target) -> str:
    if isinstance(target, str):
        return f"  {label}: '{target}'\n"
    shares = ", ".join(f"'{sha}': {weight!r}" for sha, weight in target.versions)
    return f"  {label}:\n    versions: {{{shares}}}\n"

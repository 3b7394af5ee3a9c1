"""Labels (``production``, ``staging`` …): movable pointers from a prompt to a commit.

They live in one tracked YAML file, so every move is a commit and ``git log`` of
that file is the audit trail: who moved which label, when, and from where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError, PromptciError
from ..git import Commit
from ..yamlio import atomic_write
from .labelfile import LABEL_RE, LATEST, Labels, dump_labels, parse_labels, read_labels
from .registry import Files
from .split import Split, Target


@dataclass(frozen=True)
class LabelMove:
    """One label change. ``old`` is None for a new label, ``new`` is None for a removal; either
    is a commit, or a split of the traffic between commits."""

    prompt: str
    label: str
    old: Target | None
    new: Target | None
    commit: Commit | None = None


def describe(target: Target | None, short: int = 10) -> str:
    """A label's target as messages show it: a short sha, or each version's share of a split."""
    if target is None:
        return "-"
    return target[:short] if isinstance(target, str) else target.describe(short)


def as_json(target: Target | None) -> str | dict[str, dict[str, float]] | None:
    """A label's target as the labels file writes it: a sha, or ``{versions: {sha: weight}}``."""
    if target is None or isinstance(target, str):
        return target
    return {"versions": dict(target.versions)}


def kind(registry: Files[Any], move: LabelMove) -> str:
    """``new``, ``removed``, ``split`` (traffic shared between versions), ``rollback`` (back to a
    version older than the one it replaced) or ``forward``."""
    if move.old is None:
        return "split" if isinstance(move.new, Split) else "new"
    if move.new is None:
        return "removed"
    if isinstance(move.new, Split):
        return "split"
    old = move.old if isinstance(move.old, str) else max(move.old.versions, key=lambda v: v[1])[0]
    return "rollback" if old != move.new and registry.repo.is_ancestor(move.new, old) else "forward"


def check_label_name(label: str) -> None:
    if label == LATEST:
        raise InputError(f"'{LATEST}' is reserved: NAME@{LATEST} always means the newest committed version")
    if not LABEL_RE.match(label):
        raise InputError(f"bad label name '{label}'", hint="use lowercase letters, digits, '.', '_' or '-'")


def set_label(registry: Files[Any], prompt: str, label: str, rev: str = "HEAD", *, commit: bool = True) -> LabelMove:
    """Point ``prompt@label`` at the version of the prompt at ``rev``, as a commit.

    The label stores the commit that last changed the prompt's file at ``rev``.
    The prompt must exist there. Only the labels file is committed; whatever
    else is staged stays staged.
    """
    check_label_name(label)
    return _move(registry, prompt, label, _version(registry, prompt, rev), commit)


def split_label(
    registry: Files[Any], prompt: str, label: str, weights: dict[str, float], *, commit: bool = True
) -> LabelMove:
    """Split the traffic of ``prompt@label`` between the versions at each revision of ``weights``
    (rev: share, the shares summing to 1), as a commit: an A/B release."""
    check_label_name(label)
    versions: dict[str, float] = {}
    for rev, weight in weights.items():
        sha = _version(registry, prompt, rev)
        if sha in versions:
            raise InputError(f"{rev} is the same version of '{prompt}' as another revision given ({sha[:10]})")
        versions[sha] = weight
    return _move(registry, prompt, label, Split.of(versions, f"{prompt}@{label}"), commit)


def _version(registry: Files[Any], prompt: str, rev: str) -> str:
    """The commit that last changed ``prompt`` at ``rev``: the version's identity, so labelling the
    same version twice is a no-op and label commits never chase HEAD."""
    found = registry.get(prompt, registry.repo.resolve(rev))  # raises when the prompt is not there
    sha = found.version.commit or found.rev
    assert isinstance(sha, str)
    return sha


def _move(registry: Files[Any], prompt: str, label: str, target: Target, commit: bool) -> LabelMove:
    labels = read_labels(registry.project)
    old = labels.get(prompt, {}).get(label)
    if old == target:
        return LabelMove(prompt, label, old, target)
    labels.setdefault(prompt, {})[label] = target
    verb = f"{label} -> {describe(target)}" + (f" (was {describe(old)})" if old else "")
    return _write(registry, LabelMove(prompt, label, old, target), labels, f"promptci: label {prompt}@{verb}", commit)


def remove_label(registry: Files[Any], prompt: str, label: str, *, commit: bool = True) -> LabelMove:
    """Delete ``prompt@label``, as a commit."""
    labels = read_labels(registry.project)
    old = labels.get(prompt, {}).pop(label, None)
    if old is None:
        raise InputError(f"'{prompt}' has no label '{label}'", hint="see `promptci label ls`")
    message = f"promptci: remove label {prompt}@{label} (was {describe(old)})"
    return _write(registry, LabelMove(prompt, label, old, None), labels, message, commit)


def _write(registry: Files[Any], move: LabelMove, labels: Labels, message: str, commit: bool) -> LabelMove:
    path = registry.project.labels_path
    before = path.read_text(encoding="utf-8") if path.exists() else None
    repo = registry.repo if commit else None
    atomic_write(path, dump_labels(labels))
    if repo is None:
        return move
    try:
        made = repo.commit_only([repo.relpath(path)], message)
    except PromptciError:
        # Leave the labels file exactly as it was: a move is a commit or nothing.
        if before is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, before)
        raise
    return LabelMove(move.prompt, move.label, move.old, move.new, made)


def history(registry: Files[Any], prompt: str | None = None, label: str | None = None) -> list[LabelMove]:
    """Every label move recorded in git, newest first, optionally for one prompt or label."""
    repo = registry.repo
    commits = repo.log(repo.relpath(registry.project.labels_path))
    moves: list[LabelMove] = []
    previous: Labels = {}
    for c in reversed(commits):
        text = repo.read(c.sha, c.path or "") or ""
        try:
            current, _ = parse_labels(text, c.path or "")
        except InputError:
            continue  # a broken historic version moved nothing we can show
        for name in sorted(set(previous) | set(current)):
            before, after = previous.get(name, {}), current.get(name, {})
            for lab in sorted(set(before) | set(after)):
                if before.get(lab) != after.get(lab):
                    moves.append(LabelMove(name, lab, before.get(lab), after.get(lab), c))
        previous = current
    moves = [m for m in moves if (prompt is None or m.prompt == prompt) and (label is None or m.label == label)]
    return moves[::-1]

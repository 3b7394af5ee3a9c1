"""``promptci eval --watch``: the suites again on every save, the model kept loaded.

The project's prompts, suites, pipelines, datasets and ``promptci.yaml`` are polled for changes
(by size and modification time, a bounded number of files); each change re-plans and re-runs
the suites through one :class:`~promptci.providers.pool.ModelPool`, so only the first run pays
for loading the model, and the response cache answers every case the change did not touch. What
changed since the run before is set out per suite: its score, and the cases that flipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..project import Project
from .runner import EvalReport
from .summary import TaskSummary

MAX_FILES = 20_000  # files polled; past it, the rest are not watched
SHOWN = 5  # flipped cases named per suite


def snapshot(project: Project) -> frozenset[tuple[str, int, int]]:
    """(path, size, mtime) of every file a run depends on, at most ``MAX_FILES``."""
    found: list[tuple[str, int, int]] = []
    for path in _files(project):
        try:
            stat = path.stat()
        except OSError:  # removed while we looked
            continue
        found.append((str(path), stat.st_size, stat.st_mtime_ns))
        if len(found) >= MAX_FILES:
            break
    return frozenset(found)


def _files(project: Project) -> Iterator[Path]:
    config = project.root / "promptci.yaml"
    if config.is_file():
        yield config
    for folder in dict.fromkeys((project.prompts_dir, project.evals_dir, project.pipelines_dir)):
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@dataclass(frozen=True)
class Change:
    """One suite × prompt between two runs: its score before and after, and its flipped cases."""

    label: str
    before: float | None
    after: float | None
    down: tuple[str, ...]  # pass→fail
    up: tuple[str, ...]  # fail→pass

    def line(self) -> str:
        if self.before is None:
            return f"{self.label}: {_score(self.after)} (new)"
        moved = f"{_score(self.before)} → {_score(self.after)}"
        if self.before is not None and self.after is not None:
            moved += f" ({self.after - self.before:+.3f})"
        flips = []
        for what, names in (("pass→fail", self.down), ("fail→pass", self.up)):
            if names:
                shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
                flips.append(f"{len(names)} {what}: {shown}")
        return f"{self.label}: {moved}" + ("; " + "; ".join(flips) if flips else "; no case flipped")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def changes(before: EvalReport | None, after: EvalReport) -> list[Change]:
    """Per suite × prompt of ``after``: what moved since ``before``."""
    old = {(s.suite, s.prompt): s for s in (before.summaries if before else [])}
    found = []
    for s in after.summaries:
        prior = old.get((s.suite, s.prompt))
        passed = _passes(prior) if prior else {}
        now = _passes(s)
        down = tuple(name for cid, (name, ok) in now.items() if cid in passed and passed[cid][1] and not ok)
        up = tuple(name for cid, (name, ok) in now.items() if cid in passed and not passed[cid][1] and ok)
        found.append(Change(f"{s.suite} × {s.prompt}", prior.score if prior else None, s.score, down, up))
    return found


def _passes(summary: TaskSummary) -> dict[str, tuple[str, bool]]:
    return {o.case_id: (o.name, bool(o.passed)) for o in summary.outcomes if o.passed is not None}


def watch(
    project: Project,
    run: Callable[[EvalReport | None], EvalReport | None],
    *,
    interval: float = 0.3,
    runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call ``run`` (given the report before) now and after every change; ``runs`` bounds how many
    runs (None: until interrupted). ``run`` returns None where the project could not be planned."""
    stamp = snapshot(project)
    last = run(None)
    done = 1
    while runs is None or done < runs:
        sleep(interval)
        current = snapshot(project)
        if current == stamp:
            continue
        stamp = current
        report = run(last)
        done += 1
        last = report or last
    return done

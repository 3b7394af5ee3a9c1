"""``promptci ab report``: outcome logs loaded into the results database, and each version of a
label compared with the label's main version (the one with the most outcomes)."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..outcomes import MAX_OUTCOME, MAX_PROBLEMS, frame
from ..store import Store
from . import stats

CAVEAT = (
    "Each report that sees new outcomes is a look, and every look spends part of alpha ({rule}), so "
    "that peeking daily keeps the false positive rate under alpha = {alpha:g}. Decide the sample size "
    "up front (--planned N) for the most power at the end."
)


@dataclass
class Loaded:
    new: int = 0
    seen: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, by file and line
    refused: int = 0  # every line refused


def load_logs(store: Store, logs: list[Path], progress: Callable[[Path, int, int], None] | None = None) -> Loaded:
    """Every good line of ``logs`` into the database (a line already stored is skipped); the bad
    ones, by file and line. ``progress`` is called with a log, its bytes read and its size.

    Python only frames the lines (bounded, UTF-8, whole); duckdb parses and checks them, so a
    million lines load in seconds, and Ctrl-C stops the load before anything is stored."""
    loaded = Loaded()
    with tempfile.TemporaryDirectory(prefix="promptci-outcomes-") as tmp:
        for i, path in enumerate(logs):
            staged = Path(tmp) / f"{i}.jsonl"
            with staged.open("wb") as out:
                framed = frame(path, out, None if progress is None else functools.partial(progress, path))
            result = store.load_outcomes(staged, str(path), MAX_OUTCOME, shown=MAX_PROBLEMS)
            problems = [(p.line or 0, str(p)) for p in framed.problems]
            for line, why in result.problems:
                problems.append((line, str(InputError(f"not an outcome line: {why}", path=str(path), line=line))))
            loaded.problems += [text for _, text in sorted(problems)[:MAX_PROBLEMS]]
            loaded.refused += framed.refused + result.refused
            loaded.new += result.new
            loaded.seen += result.seen
            staged.unlink()
    return loaded


@dataclass(frozen=True)
class VersionResult:
    prompt: str
    label: str
    version: str
    commit: str | None
    n: int
    mean: float
    control: bool
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    test: str | None = None
    look: int | None = None
    alpha: float | None = None  # what this look may spend
    verdict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Group:
    prompt: str
    label: str
    versions: tuple[VersionResult, ...]
    rule: str
    alpha: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "label": self.label,
            "alpha": self.alpha,
            "rule": self.rule,
            "versions": [v.as_dict() for v in self.versions],
        }


def analyse(
    store: Store,
    prompt: str | None,
    label: str | None,
    *,
    alpha: float = 0.05,
    planned: int | None = None,
    record: bool = True,
    control: str | None = None,
) -> list[Group]:
    """Per prompt and label, each version against the main one. Where new outcomes arrived since
    the last look, this is a new look: recorded, unless not ``record`` (a read-only report).
    ``control`` (a commit or content hash, or a prefix of one) names the version the others are
    compared with; by default it is the one with the most outcomes."""
    by_label: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in store.outcome_groups(prompt, label):
        by_label.setdefault((row[0], row[1]), []).append(row)
    rule = f"O'Brien-Fleming over {planned} outcomes per version" if planned else "look k spends alpha / 2^k"
    groups = []
    for (name, lab), rows in sorted(by_label.items()):
        main = _control(rows, control, f"{name}@{lab}")
        results = [VersionResult(name, lab, main[2], main[3], main[4], main[5], True)]
        for row in rows:
            if row is not main:
                results.append(_against(store, row, main, alpha, planned, record))
        groups.append(Group(name, lab, tuple(results), rule, alpha))
    return groups


def _control(rows: list[tuple[Any, ...]], named: str | None, where: str) -> tuple[Any, ...]:
    if named is None:
        return max(rows, key=lambda r: (r[4], r[2]))
    found = [r for r in rows if str(r[2]).startswith(named) or str(r[3] or "").startswith(named)]
    if len(found) != 1:
        versions = ", ".join(f"{r[2][:12]} ({(r[3] or '-')[:10]})" for r in rows)
        why = "matches no version" if not found else "matches several versions"
        raise InputError(f"--control {named} {why} of {where}", hint=f"versions: {versions}")
    return found[0]


def _against(
    store: Store, row: tuple[Any, ...], control: tuple[Any, ...], alpha: float, planned: int | None, record: bool
) -> VersionResult:
    name, lab, version, commit, n, mean, var, boolean = row
    _, _, base, _, n0, mean0, var0, boolean0 = control
    if boolean and boolean0:
        found = stats.proportions(round(mean0 * n0), n0, round(mean * n), n)
    else:
        found = stats.welch(mean0, var0, n0, mean, var, n)
    looks = store.looks(name, lab, version, base)
    size = min(n, n0)
    if looks and looks[-1][1] >= size:  # nothing new since the last look: judge it again, spend nothing
        look, _, spend = looks[-1]
    else:
        look = len(looks) + 1
        before = looks[-1][1] / planned if looks and planned else None
        spend = stats.spent(alpha, look, size / planned if planned else None, before)
        if record:
            store.add_look(name, lab, version, base, look, size, spend)
    return VersionResult(
        name, lab, version, commit, n, mean, False, found.delta, found.ci_low, found.ci_high, found.p_value,
        found.test, look, spend, _verdict(found, spend),
    )  # fmt: skip


def _verdict(r: stats.Unpaired, alpha: float) -> str:
    """The words ``compare`` uses, at the alpha this look may spend."""
    significant = r.p_value < alpha
    if significant and r.delta < 0:
        return "regressed"
    if significant and r.delta > 0:
        return "improved"
    if r.ci_low < -1e-12:
        return "inconclusive"
    return "unchanged"


def render(groups: list[Group]) -> str:
    if not groups:
        return "no outcomes stored for that prompt and label\n"
    lines = []
    for g in groups:
        control = g.versions[0]
        lines.append(f"{g.prompt}@{g.label}: {len(g.versions)} versions; main version {control.version[:12]}")
        lines.append(
            f"  {'version':12}  {'commit':10}  {'n':>7}  {'mean':>7}  {'delta':>8}  {'95% CI':>19}"
            f"  {'p':>8}  {'look':>4}  {'alpha':>8}  verdict"
        )
        for v in g.versions:
            head = f"  {v.version[:12]:12}  {(v.commit or '-')[:10]:10}  {v.n:>7}  {v.mean:>7.3f}"
            if v.control:
                lines.append(head + "  (main version)")
                continue
            assert v.delta is not None and v.ci_low is not None and v.ci_high is not None and v.p_value is not None
            ci = f"[{v.ci_low:+.3f}, {v.ci_high:+.3f}]"
            lines.append(
                head + f"  {v.delta:>+8.3f}  {ci:>19}  {v.p_value:>8.2g}  {v.look:>4}  {v.alpha:>8.2g}  {v.verdict}"
                f" ({v.test})"
            )
        lines.append("  " + CAVEAT.format(rule=g.rule, alpha=g.alpha))
    return "\n".join(lines) + "\n"

"""Pairing two sides case by case, checking they are comparable, and the gate's verdict.

Gate policy, per suite × prompt, with ``max_drop`` and ``alpha`` from promptci.yaml
(``gate.suites.NAME`` overrides them for one suite); p is adjusted for the number of rows
tested together, by ``gate.correction`` (Holm unless it says otherwise):

- **regressed**: the mean score dropped by more than ``max_drop`` and the adjusted p < alpha.
  The verdict that fails the gate (exit 1), with flaky cases under ``gate.flaky: fail``.
- **improved**: the mean rose and the adjusted p < alpha.
- **underpowered**: not significant, the smallest drop this suite detects (at ``gate.power``)
  exceeds ``max_drop``, and the 95% CI still holds drops larger than that: a drop the suite
  is meant to catch may be there, and it is too small to tell.
- **inconclusive**: not significant, but the CI still allows a drop larger than ``max_drop``:
  more cases or repeats are needed to rule a regression out.
- **unchanged**: otherwise.

Cases with repeats are tested on their per-case means by the permutation test (never McNemar
on one draw), and a case whose repeats disagree on pass/fail is flaky: listed apart from the
flips, and left out of the test under ``gate.flaky: ignore``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..config import GateConfig
from ..evals.estimate import run_spend
from ..redact import clip
from ..store import Store
from .power import CORRECTIONS, Detectable, detectable_drop
from .sides import SideResults
from .stats import PairedResult, paired

VERDICT_ORDER = ("regressed", "underpowered", "inconclusive", "improved", "unchanged")


@dataclass(frozen=True)
class CaseSide:
    score: float | None
    passed: bool | None
    output: str | None
    error: str | None
    repeats: int


INPUT_CHARS = 200


@dataclass(frozen=True)
class StepOutputs:
    """One pipeline step of one case on both sides (None where that side never reached it)."""

    step: str
    base: str | None
    head: str | None
    base_error: str | None = None
    head_error: str | None = None


@dataclass(frozen=True)
class StepChange:
    """How many of a pipeline's cases changed at one step, between base and head."""

    step: str
    changed: int
    total: int


@dataclass(frozen=True)
class Flip:
    case_id: str
    name: str
    base: CaseSide
    head: CaseSide
    input: str = ""  # the case's own text as the model read it (its last user turn), clipped
    first_step: str | None = None  # a pipeline's first step whose output differs between the sides
    trace: tuple[StepOutputs, ...] = ()  # a pipeline's steps on both sides

    @property
    def direction(self) -> str:
        return "pass→fail" if self.base.passed else "fail→pass"

    @property
    def change(self) -> str | None:
        """What changed in a structured output (tool calls, a JSON object), in a line."""
        from .outputs import change

        return change(self.base.output, self.head.output)


@dataclass(frozen=True)
class FlakyCase:
    """A case whose repeats disagree on pass/fail on a side: passes out of scored repeats, per side."""

    case_id: str
    name: str
    base: tuple[int, int]
    head: tuple[int, int]


@dataclass
class SuiteComparison:
    suite: str
    prompt: str
    stats: PairedResult
    verdict: str
    max_drop: float
    alpha: float
    base_hash: str | None
    head_hash: str | None
    flips: list[Flip] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # case names only on the head side
    removed: list[str] = field(default_factory=list)
    errors: tuple[int, int] = (0, 0)
    reasons: tuple[str | None, str | None] = (None, None)  # each side's commonest error
    mismatches: list[str] = field(default_factory=list)
    prompt_file: str | None = None
    steps: list[StepChange] = field(default_factory=list)  # a pipeline's, in run order
    p_adjusted: float | None = None  # p after gate.correction, across the rows tested together
    detectable: Detectable | None = None  # the smallest drop this suite detects at gate.power
    flaky: list[FlakyCase] = field(default_factory=list)
    repeats: int = 1  # the most scored repeats of a case, on either side
    judge_note: str | None = None  # a doubt on the judge the scores come from (see .judges)

    @property
    def p(self) -> float:
        """The p the verdict rests on: adjusted where rows were tested together."""
        return self.stats.p_value if self.p_adjusted is None else self.p_adjusted


@dataclass
class Comparison:
    base: str
    head: str
    suites: list[SuiteComparison]
    correction: str = "none"  # how p was adjusted: holm, bh, or none (one row)
    power: float = 0.8
    flaky_policy: str = "report"
    spend: list[str] = field(default_factory=list)  # per head-side run: its estimate beside what it spent

    @property
    def verdict(self) -> str:
        verdicts = {s.verdict for s in self.suites}
        return next((v for v in VERDICT_ORDER if v in verdicts), "unchanged")

    @property
    def flaky(self) -> int:
        return sum(len(s.flaky) for s in self.suites)

    @property
    def fails(self) -> bool:
        """Whether the gate fails: a regression, or flaky cases under ``gate.flaky: fail``."""
        return self.verdict == "regressed" or (self.flaky_policy == "fail" and self.flaky > 0)

    @property
    def mismatches(self) -> list[str]:
        return [f"{s.suite} × {s.prompt}: {m}" for s in self.suites for m in s.mismatches]


def compare(store: Store, base: SideResults, head: SideResults, gate: GateConfig) -> Comparison:
    """Pair the two sides' cases per suite × prompt, in DuckDB, and judge each pair of distributions."""
    identity = {(r[0], r[1], r[2]): r[3:] for r in store.side_identities(base.table, head.table)}
    keys = sorted({(s, p) for s, p, _ in identity})
    pairs = store.pair_cases(base.table, head.table, keys)
    flips = _flips(store, base.table, head.table)
    changes, traces = _step_changes(store.step_pairs(base.table, head.table))
    only: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for suite, prompt, name, in_base in store.unpaired_cases():
        only[(suite, prompt)][1 if in_base else 0].append(name)
    errors = {(r[0], r[1]): (r[2], r[3]) for r in store.errored_counts()}
    reasons = [store.error_reasons(side.table) for side in (base, head)]
    flaky = _flaky(store.flaky_cases())
    spread: dict[tuple[str, str], float] = {}
    gids = pairs["gid"]
    suites = []
    for gid, (suite, prompt) in enumerate(keys):
        lo, hi = int(np.searchsorted(gids, gid, "left")), int(np.searchsorted(gids, gid, "right"))
        keep = slice(lo, hi)
        rows = np.arange(lo, hi)
        if gate.flaky == "ignore":  # flaky cases stay out of the test
            rows = rows[~pairs["flaky"][keep].astype(bool)]
        b_id, h_id = identity.get((suite, prompt, "base")), identity.get((suite, prompt, "head"))
        max_drop, alpha = gate.for_suite(suite)
        bs, hs = pairs["bs"][rows].astype(float), pairs["hs"][rows].astype(float)
        bp, hp = pairs["bp"][rows].astype(bool), pairs["hp"][rows].astype(bool)
        repeats = int(pairs["reps"][keep].max()) if hi > lo else 1
        binary = repeats <= 1 and bool(np.all(np.isin(bs, (0.0, 1.0))) and np.all(np.isin(hs, (0.0, 1.0))))
        result = paired(bs, hs, bp, hp, binary=binary)
        spread[(suite, prompt)] = _discordance(bs, hs, bp, hp, binary)
        added, removed = only.get((suite, prompt), ([], []))
        suites.append(
            SuiteComparison(
                suite,
                prompt,
                result,
                "inconclusive",  # until every row is tested: see _judge
                max_drop,
                alpha,
                _first(b_id, 3),
                _first(h_id, 3),
                [_traced(f, traces.get((suite, prompt, f.case_id), ())) for f in flips.get((suite, prompt), [])],
                added,
                removed,
                errors.get((suite, prompt), (0, 0)),
                tuple(r[0] if (r := side.get((suite, prompt))) else None for side in reasons),  # type: ignore[arg-type]
                _mismatches(b_id, h_id),
                head.prompt_files.get(prompt) or base.prompt_files.get(prompt),
                changes.get((suite, prompt), []),
                flaky=flaky.get((suite, prompt), []),
                repeats=repeats,
            )
        )
    tested = [s for s in suites if s.stats.n > 0]
    correction = gate.correction if len(tested) > 1 else "none"
    adjusted = CORRECTIONS[correction]([s.stats.p_value for s in tested])
    for s, p in zip(tested, adjusted, strict=True):
        s.p_adjusted = p if correction != "none" else None
        # A drop in this row alone is tested at alpha / m by Holm's first step and by BH's.
        level = s.alpha / len(tested) if correction != "none" else s.alpha
        s.detectable = detectable_drop(
            s.stats.n, binary=s.stats.test == "mcnemar-exact", discordance=spread[(s.suite, s.prompt)],
            alpha=level, power=gate.power, max_drop=s.max_drop,
        )  # fmt: skip
        s.verdict = _verdict(s.stats, s.p, s.max_drop, s.alpha, s.detectable)
    spend = [f"run {run}: {line}" for run in store.side_runs(head.table) if (line := run_spend(store, run))]
    return Comparison(base.side.label, head.side.label, suites, correction, gate.power, gate.flaky, spend)


def _discordance(bs: np.ndarray, hs: np.ndarray, bp: np.ndarray, hp: np.ndarray, binary: bool) -> float:
    """What the detectable drop is computed from: the share of cases whose pass/fail changed
    (pass/fail suites), or the sd of the per-case differences (scored ones)."""
    if binary:
        return float(np.mean(bp != hp)) if len(bp) else 0.0
    return float(np.std(hs - bs, ddof=1)) if len(bs) > 1 else 0.0


def _flaky(rows: list[tuple[str, str, str, str, int, int, int, int]]) -> dict[tuple[str, str], list[FlakyCase]]:
    found: dict[tuple[str, str], list[FlakyCase]] = defaultdict(list)
    for suite, prompt, case_id, name, b_pass, b_n, h_pass, h_n in rows:
        found[(suite, prompt)].append(FlakyCase(case_id, name, (int(b_pass), int(b_n)), (int(h_pass), int(h_n))))
    return found


def _flips(store: Store, base: str, head: str) -> dict[tuple[str, str], list[Flip]]:
    """Cases whose pass/fail differs, with each side's first answer."""
    found: dict[tuple[str, str], list[Flip]] = defaultdict(list)
    rows = store.flipped_cases(base, head)
    for r in rows:
        found[(r[0], r[1])].append(
            Flip(
                r[2],
                r[3],
                CaseSide(r[4], r[5], r[6], None, r[7]),
                CaseSide(r[8], r[9], r[10], None, r[11]),
                case_input(r[12]),
            )
        )
    return found


def _step_changes(
    rows: list[tuple[Any, ...]],
) -> tuple[dict[tuple[str, str], list[StepChange]], dict[tuple[str, str, str], tuple[StepOutputs, ...]]]:
    """Per suite × pipeline, how many cases changed at each step; per case, its steps on both sides."""
    traces: dict[tuple[str, str, str], list[StepOutputs]] = defaultdict(list)
    order: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for suite, prompt, case_id, step, at, _, _, b_out, h_out, b_err, h_err in rows:
        traces[(suite, prompt, case_id)].append(StepOutputs(step, b_out, h_out, b_err, h_err))
        order[(suite, prompt)].setdefault(step, at)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (suite, prompt, _), steps in traces.items():
        totals[(suite, prompt)] += 1
        for s in steps:
            counts[(suite, prompt)][s.step] += _differs(s)
    changes = {
        key: [StepChange(step, counts[key][step], totals[key]) for step in sorted(steps, key=steps.__getitem__)]
        for key, steps in order.items()
    }
    return changes, {key: tuple(steps) for key, steps in traces.items()}


def _differs(s: StepOutputs) -> bool:
    return (s.base, s.base_error) != (s.head, s.head_error)


def _traced(flip: Flip, trace: tuple[StepOutputs, ...]) -> Flip:
    if not trace:
        return flip
    first = next((s.step for s in trace if _differs(s)), None)
    return replace(flip, first_step=first, trace=trace)


def case_input(rendered: str | None, limit: int = INPUT_CHARS) -> str:
    """The last user turn of a stored rendered input (JSON messages), clipped to ``limit`` characters."""
    import json

    if not rendered:
        return ""
    try:
        messages = json.loads(rendered)
    except ValueError:
        messages = None
    text = rendered
    if isinstance(messages, list):
        users = [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = str(users[-1]) if users else text
    elif isinstance(messages, dict):  # a case that did not render keeps its variables
        text = ", ".join(f"{k}={v}" for k, v in messages.items())
    return clip(" ".join(text.split()), limit)


def _first(identity: tuple[Any, ...] | None, index: int) -> str | None:
    values = identity[index] if identity else None
    return str(values[0]) if values else None


def _mismatches(base: tuple[Any, ...] | None, head: tuple[Any, ...] | None) -> list[str]:
    if base is None:
        return ["no results on the base side (a new suite or prompt)"]
    if head is None:
        return ["no results on the head side (a removed suite or prompt)"]
    found = []
    for i, what in enumerate(("model", "generation parameters", "scorers or thresholds")):
        if list(base[i]) != list(head[i]):
            found.append(f"{what} differ: {', '.join(map(str, base[i]))} vs {', '.join(map(str, head[i]))}")
    return found


def _verdict(r: PairedResult, p: float, max_drop: float, alpha: float, detectable: Detectable | None) -> str:
    significant = p < alpha
    if significant and r.delta < -max_drop:
        return "regressed"
    if significant and r.delta > 0:
        return "improved"
    if not significant and r.ci_low < -max_drop - 1e-12:
        least = detectable.drop if detectable is not None else None
        if least is None or (least > max_drop and r.ci_low < -least):
            return "underpowered"
        return "inconclusive"
    return "unchanged"

"""What a reviewer reads: the held-out comparison, the PR body, the plot and the commit message."""

from __future__ import annotations

import difflib
import html
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..compare.stats import PairedResult
from ..redact import clip
from ..store import TrajectoryRow
from .outcome import Outcome
from .split import input_key

ALPHA = 0.05
NOT_REFUSED = ("scored", "initial", "duplicate")
SMALL_DEV = 20  # fewer dev cases than this cannot tell candidates a few points apart
TRAILER = "Promptci-Optimization"  # marks the commits promptci makes, so that it never overwrites a human's
HELD_OUT_TRAILER = "Promptci-Held-Out"  # the suite, prompt, split and seed of its test cases


@dataclass(frozen=True)
class HeldOut:
    """Initial against chosen instruction on the test split, paired by case."""

    result: PairedResult
    passed_before: int
    passed_after: int
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.result.p_value < self.alpha


def held_out(outcome: Outcome, case_threshold: float, alpha: float = ALPHA) -> HeldOut:
    return paired_cases(outcome.test_before.per_case, outcome.test_after.per_case, case_threshold, alpha)


def paired_cases(
    before: dict[str, float], after: dict[str, float], case_threshold: float, alpha: float = ALPHA
) -> HeldOut:
    """Two sets of per-case scores compared on the cases they share, as ``compare`` compares them."""
    import numpy as np

    from ..compare.stats import paired

    ids = sorted(set(before) & set(after))
    base = np.array([before[i] for i in ids], dtype=float)
    head = np.array([after[i] for i in ids], dtype=float)
    binary = bool(np.isin(np.concatenate([base, head]), (0.0, 1.0)).all())
    base_pass, head_pass = base >= case_threshold, head >= case_threshold
    # Cases in id order and the bootstrap seeded as `compare` seeds it: the CI it prints is this one.
    result = paired(base, head, base_pass, head_pass, binary=binary)
    return HeldOut(result, int(base_pass.sum()), int(head_pass.sum()), alpha)


def branch_name(outcome: Outcome) -> str:
    return f"promptci/optimize/{outcome.prompt}/{outcome.method}-{outcome.id.rsplit('-', 1)[-1]}"


def headline(outcome: Outcome, stats: HeldOut) -> str:
    r = stats.result
    return (
        f"test {r.base_mean:.3f} → {r.head_mean:.3f} ({r.delta:+.3f}, {_test_name(r.test)} p={r.p_value:.3g}, n={r.n})"
    )


def commit_message(outcome: Outcome, stats: HeldOut) -> str:
    gain = "Held-out gain" if stats.significant else f"Held-out change, not significant at α = {stats.alpha:g},"
    return (
        f"optimize {outcome.prompt} ({outcome.method}): {headline(outcome, stats)}\n\n"
        f"{gain} on {stats.result.n} test cases of suite {outcome.suite} that the optimizer never saw.\n"
        f"Optimization {outcome.id}: {_steps(outcome)} steps, {outcome.usage.calls} model calls,"
        f" {outcome.usage.tokens} tokens.\n\n"
        f"{TRAILER}: {outcome.id}\n"
        f"{HELD_OUT_TRAILER}: {held_out_spec(outcome)}\n"
    )


def held_out_spec(outcome: Outcome) -> str:
    """What ``compare --optimization`` needs to rebuild the test split without the database."""
    s = outcome.settings
    split = "/".join(f"{f:g}" for f in s.split)
    return f"suite={outcome.suite} prompt={outcome.prompt} split={split} seed={s.seed}"


def read_held_out_spec(message: str) -> dict[str, str] | None:
    """The fields of a commit message's held-out trailer, or None where it has none."""
    for line in message.splitlines():
        if line.startswith(f"{HELD_OUT_TRAILER}:"):
            return dict(part.split("=", 1) for part in line.split(":", 1)[1].split() if "=" in part)
    return None


def prompt_diff(outcome: Outcome) -> str:
    """The unified diff of every prompt file the winner changes (a pipeline's: one per step)."""
    changes = outcome.files or [(outcome.path, outcome.source_before, outcome.source_after)]
    return "".join(
        "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
            )
        )
        for path, before, after in changes
    )


def link_table(outcome: Outcome) -> list[str]:
    """A chain's links in order: what each did to the dev score, at what cost."""
    lines = ["| link | dev before | dev after | change | calls |", "|---|---|---|---|---|"]
    for method, before, after, calls, changed in outcome.links:
        shown = [f"{v:.3f}" if v is not None else "–" for v in (before, after)]
        delta = f"{after - before:+.3f}" if changed and before is not None and after is not None else "unchanged"
        lines.append(f"| {method} | {shown[0]} | {shown[1]} | {delta} | {calls} |")
    return lines


def credit_table(outcome: Outcome) -> list[str]:
    """A pipeline's search, step by step: the step it changed, why, and the blame votes."""
    lines = ["| search step | step changed | chosen | blame votes |", "|---|---|---|---|"]
    for step, target, chosen_by, votes in outcome.rounds:
        why = "blamed most" if chosen_by == "blame" else "its turn"
        tally = ", ".join(f"{k} {v}" for k, v in votes.items()) or "–"
        lines.append(f"| {step} | {target} | {why} | {tally} |")
    return lines


def pr_body(outcome: Outcome, stats: HeldOut, *, plot: str | None = None, branch: bool = True) -> str:
    """The markdown a reviewer decides from. ``plot`` is a link to the SVG, where one was written;
    ``branch`` says whether the change was committed on a branch (else the body is a report)."""
    r = stats.result
    verdict = f"{'' if stats.significant else '**not** '}significant at α = {stats.alpha:g}"
    n_train, n_dev = len(outcome.split.train), len(outcome.split.dev)
    lines = [f"## promptci optimize: `{outcome.prompt}` with {outcome.method.upper()}", ""]
    if outcome.changed and r.delta > 0 and not stats.significant:
        lines += [f"⚠️ **Not significant** (p = {r.p_value:.3g} ≥ α = {stats.alpha:g}): this change may be noise.", ""]
    lines += [
        f"**Held-out test: {r.base_mean:.3f} → {r.head_mean:.3f} ({r.delta:+.3f},"
        f" 95% CI [{r.ci_low:+.3f}, {r.ci_high:+.3f}])**, {_test_name(r.test)} p = {r.p_value:.3g}"
        f" over {r.n} paired cases: {verdict}.",
        "",
        *opening_table(outcome, stats),
    ]
    rejected = outcome.rejected()
    if rejected:
        lines += ["", "Refused candidates: " + ", ".join(f"{n} {reason}" for reason, n in rejected.items()) + "."]
    if outcome.held_back:
        lines += ["", f"The search's choice was not taken: {outcome.held_back}."]
    stuck = initial_collapse(outcome)
    if stuck:
        lines += ["", f"⚠️ {stuck}"]
    if n_dev < SMALL_DEV:
        lines += [
            "",
            f"⚠️ The dev split has {n_dev} cases: one case moves a dev score by {1 / max(n_dev, 1):.3f}, too coarse"
            " to choose between candidates. Give the suite more cases, or a larger dev fraction with `--split`.",
        ]
    lines += [
        "",
        f"The optimizer saw only the {n_train} train and {n_dev} dev cases of suite `{outcome.suite}`;"
        f" the {r.n} test cases were scored once with each instruction.",
    ]
    if not outcome.changed and not outcome.held_back:
        lines += ["", "No candidate beat the initial instruction on dev, so the prompt is unchanged."]
    if outcome.status == "budget":
        lines += ["", f"⚠️ The search stopped early: the budget ({_budget(outcome)}) was spent."]
    if r.test == "mcnemar-exact":
        lines += ["", f"Discordant cases: {r.discordant[1]} fail → pass, {r.discordant[0]} pass → fail."]
    if outcome.probe:
        lines += ["", "### Why this method (`--method auto`)", "", *outcome.probe]
    if outcome.links:
        lines += ["", "### Each link on dev", "", *link_table(outcome)]
    diff = prompt_diff(outcome)
    if diff:
        lines += ["", "### Prompt diff", "", "```diff", diff.rstrip("\n"), "```"]
    if outcome.rounds:
        lines += ["", "### Credit: the step each search step changed", "", *credit_table(outcome)]
        if outcome.feedback:
            shown = [f"- step {n}, `{step}`: {_cell(text, 200)}" for n, step, text in outcome.feedback[:10]]
            lines += ["", "<details><summary>Feedback on the blamed steps</summary>", "", *shown, "", "</details>"]
    lines += ["", "### Dev score per step", "", mermaid(outcome)]
    if plot:
        lines += ["", f"![dev score per step]({plot})"]
    if outcome.frontier:
        lines += ["", "### The pool on dev (Pareto frontier)", "", *frontier_table(outcome)]
    lines += ["", "### Trajectory", "", *trajectory_table(outcome)]
    every = candidate_table(outcome.rows, outcome.describe)
    lines += ["", "<details><summary>Every candidate</summary>", "", *every, "", "</details>"]
    lines += ["", "### Run", "", *run_facts(outcome)]
    where = "on a checkout of this branch" if branch else "with the new prompt file in place"
    lines += [
        "",
        "### Check it yourself",
        "",
        f"The same held-out comparison, with the same interval, from the results database, {where}:",
        "",
        "```",
        f"promptci compare {outcome.base_commit[:12]} HEAD --optimization {outcome.id} --run-missing",
        "```",
    ]
    return "\n".join(lines) + "\n"


def initial_collapse(outcome: Outcome) -> str:
    """A warning when the initial instruction's test answers collapsed onto one value: its score
    is then the constant answer's, and a gain over it says little about reading the cases."""
    answers = list(outcome.test_before.answers.values())
    if not outcome.test_before.collapsed(outcome.split.test):
        return ""
    top, n = Counter(a for a in answers if a).most_common(1)[0]
    given = sum(1 for a in answers if a)
    return (
        f"The initial instruction's answers collapsed: {n} of {given} test answers are `{_cell(top, 40)}`"
        f" ({len(answers) - given} cases gave no answer)."
    )


def frontier_table(outcome: Outcome) -> list[str]:
    """Each candidate of a Pareto search's pool: its dev score and the dev cases it is best on.
    A candidate best on no case is off the frontier; the search chose parents among the rest."""
    n = len(outcome.split.dev)
    lines = [
        f"| step.cand | dev | best on (of {n} dev cases) | alone best on | on the frontier | text |",
        "|---|---|---|---|---|---|",
    ]
    for row, best, sole in sorted(outcome.frontier, key=lambda f: (-(f[0].dev_score or 0.0), f[0].step)):
        chosen = " ✓" if row.text_hash == outcome.best.text_hash else ""
        lines.append(
            f"| {row.step}.{row.candidate}{chosen} | {row.dev_score or 0.0:.3f} | {best} | {sole} |"
            f" {'yes' if best else 'no'} | {_cell(outcome.describe(row.text), 120)} |"
        )
    return lines


def opening_table(outcome: Outcome, stats: HeldOut) -> list[str]:
    """Before, after and the best constant answer on the test cases, with tokens per call."""
    r = stats.result
    before, after = outcome.test_before, outcome.test_after
    lines = [
        "| held-out test | score | cases passed | tokens per call |",
        "|---|---|---|---|",
        f"| before | {r.base_mean:.3f} | {stats.passed_before}/{r.n} | {before.per_call:.0f} |",
        f"| after | {r.head_mean:.3f} | {stats.passed_after}/{r.n} | {after.per_call:.0f}"
        f" ({after.per_call - before.per_call:+.0f}) |",
    ]
    constant = outcome.constant_test
    if constant is not None:
        lines.append(f"| best constant answer on test, {constant.label} | {constant.score:.3f} | | 0 |")
    return lines


def run_facts(outcome: Outcome) -> list[str]:
    s = outcome.settings
    sides = (outcome.split.train, outcome.split.dev, outcome.split.test)
    split = "/".join(str(len(side)) for side in sides) + " cases"
    inputs = [len({input_key(c) for c in side}) for side in sides]
    if inputs != [len(side) for side in sides]:  # some cases share an input: each input is on one side only
        split += f" ({'/'.join(map(str, inputs))} distinct inputs, none on two sides)"
    return [
        f"- Optimization `{outcome.id}`, based on commit `{outcome.base_commit[:12]}`.",
        f"- Task model `{outcome.task_model}`; optimizer model `{outcome.optimizer_model}`.",
        f"- Split train/dev/test {split} (seed {s.seed}); {_steps(outcome)} of {s.steps} steps, {outcome.per_step}.",
        f"- Cost: {outcome.usage.calls} model calls ({outcome.usage.cached} answered from the cache),"
        f" {outcome.usage.tokens} tokens, {outcome.usage.cost:.4f} in configured prices,"
        f" {outcome.wall_s:.0f} s.",
        f"- {outcome.unparsable} optimizer replies held no parsable candidate and were skipped.",
        f'- The trajectory is in the results database: `promptci db "select * from trajectory'
        f" where optimization_id = '{outcome.id}'\"`.",
    ]


def step_summary(outcome: Outcome) -> list[tuple[int, TrajectoryRow | None, list[TrajectoryRow], float]]:
    """Per step: the candidate accepted (if any), all rows, and the best dev score so far."""
    out = []
    best = float("-inf")
    for step in range(0, max(r.step for r in outcome.rows) + 1):
        rows = [r for r in outcome.rows if r.step == step]
        for r in rows:
            if r.dev_score is not None and r.status in ("initial", "scored"):
                best = max(best, r.dev_score)
        accepted = next((r for r in rows if r.accepted), None)
        out.append((step, accepted, rows, best if best > float("-inf") else 0.0))
    return out


def trajectory_table(outcome: Outcome) -> list[str]:
    lines = [
        "| step | new / dup / refused / unparsable / budget-stopped | best train | accepted: dev | edits (budget)"
        " | accepted |",
        "|---|---|---|---|---|---|",
    ]
    for step, accepted, rows, _ in step_summary(outcome):
        counts = (
            sum(r.status in ("scored", "initial") for r in rows),
            sum(r.status == "duplicate" for r in rows),
            sum(r.status not in (*NOT_REFUSED, "unparsable", "error", "budget") for r in rows),
            sum(r.status in ("unparsable", "error") for r in rows),
            sum(r.status == "budget" for r in rows),
        )
        trains = [r.train_score for r in rows if r.train_score is not None]
        best_train = f"{max(trains):.3f}" if trains else "–"
        dev = f"{accepted.dev_score:.3f}" if accepted and accepted.dev_score is not None else "–"
        edits = "–"
        if accepted and accepted.edit_distance is not None:
            edits = f"{accepted.edit_distance}" + (f" ({accepted.edit_budget})" if accepted.edit_budget else "")
        text = _cell(outcome.describe(accepted.text), 90) if accepted else "–"
        lines.append(f"| {step} | {' / '.join(map(str, counts))} | {best_train} | {dev} | {edits} | {text} |")
    return lines


def candidate_table(rows: list[TrajectoryRow], describe: Callable[[str], str] = str) -> list[str]:
    lines = ["| step.cand | status | train | dev | edits | text |", "|---|---|---|---|---|---|"]
    for r in rows:
        train = f"{r.train_score:.3f}" if r.train_score is not None else ""
        dev = f"{r.dev_score:.3f}" if r.dev_score is not None else ""
        edits = "" if r.edit_distance is None else str(r.edit_distance)
        mark = " ✓" if r.accepted else ""
        text = _cell(describe(r.text), 160)
        lines.append(f"| {r.step}.{r.candidate} | {r.status}{mark} | {train} | {dev} | {edits} | {text} |")
    return lines


def mermaid(outcome: Outcome) -> str:
    """A line chart GitHub renders inside the PR body: best dev so far, and each step's accepted dev."""
    summary = step_summary(outcome)
    best = [round(b, 3) for _, _, _, b in summary]
    accepted, last = [], best[0]
    for _, row, _, _ in summary:
        if row is not None and row.dev_score is not None:
            last = round(row.dev_score, 3)
        accepted.append(last)
    steps = ", ".join(str(s) for s, *_ in summary)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            '  title "Dev score per step (upper: best so far; lower: accepted candidate)"',
            f'  x-axis "step" [{steps}]',
            '  y-axis "dev score" 0 --> 1',
            f"  line [{', '.join(map(str, best))}]",
            f"  line [{', '.join(map(str, accepted))}]",
            "```",
        ]
    )


def svg_plot(outcome: Outcome, width: int = 640, height: int = 320) -> str:
    """Dev score per step as a standalone SVG: every candidate scored on dev, the accepted path, the best so far."""
    summary = step_summary(outcome)
    left, right, top, bottom = 56, 16, 36, 40
    steps = max(1, len(summary) - 1)

    def x(step: float) -> float:
        return left + (width - left - right) * step / steps

    def y(score: float) -> float:
        return top + (height - top - bottom) * (1 - score)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="13">{html.escape(outcome.prompt)}: dev score per step'
        f" ({outcome.method.upper()})</text>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    for step, *_ in summary:
        parts.append(f'<text x="{x(step):.1f}" y="{height - bottom + 16}" text-anchor="middle">{step}</text>')
    parts.append(f'<text x="{(left + width) / 2:.0f}" y="{height - 6}" text-anchor="middle">step</text>')
    for row in outcome.rows:
        if row.dev_score is not None and row.status in ("initial", "scored"):
            parts.append(
                f'<circle cx="{x(row.step):.1f}" cy="{y(row.dev_score):.1f}" r="3" fill="#9ab" opacity="0.7"/>'
            )
    best_points = " ".join(f"{x(s):.1f},{y(b):.1f}" for s, _, _, b in summary)
    parts.append(f'<polyline points="{best_points}" fill="none" stroke="#1a7f37" stroke-width="2"/>')
    path = [(s, r.dev_score) for s, r, _, _ in summary if r is not None and r.dev_score is not None]
    if path:
        points = " ".join(f"{x(s):.1f},{y(d):.1f}" for s, d in path)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="1.5" stroke-dasharray="4 3"/>'
        )
    legend_y = top - 8
    parts += [
        f'<line x1="{width - 330}" x2="{width - 310}" y1="{legend_y}" y2="{legend_y}" stroke="#1a7f37"'
        ' stroke-width="2"/>',
        f'<text x="{width - 305}" y="{legend_y + 4}">best so far</text>',
        f'<line x1="{width - 230}" x2="{width - 210}" y1="{legend_y}" y2="{legend_y}" stroke="#0969da"'
        ' stroke-dasharray="4 3"/>',
        f'<text x="{width - 205}" y="{legend_y + 4}">accepted</text>',
        f'<circle cx="{width - 140}" cy="{legend_y}" r="3" fill="#9ab"/>',
        f'<text x="{width - 133}" y="{legend_y + 4}">candidate</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _cell(text: str, limit: int) -> str:
    flat = clip(" ".join(text.split()), limit)
    return html.escape(flat).replace("|", "\\|") or "(empty)"


def _test_name(test: str) -> str:
    return {"mcnemar-exact": "exact McNemar", "permutation": "paired permutation"}.get(test, test)


def _steps(outcome: Outcome) -> int:
    return max(r.step for r in outcome.rows)


def _budget(outcome: Outcome) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in outcome.settings.budget.items()) or "none"

"""A comparison as a terminal table, PR-comment markdown, versioned JSON, JUnit XML and
GitHub Actions annotations."""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict
from typing import Any
from xml.etree import ElementTree as ET

from ..project import Project
from ..providers.replies import readable
from ..redact import clip
from .engine import CaseSide, Comparison, Flip, SuiteComparison

MARKER = "<!-- promptci-compare -->"  # finds our PR comment to update it in place
MAX_FLIPS = 50


def fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def rows(c: Comparison) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    adjusted = c.correction != "none"
    for s in c.suites:
        r = s.stats
        row = [
            s.suite,
            s.prompt,
            str(r.n),
            f"{r.base_mean:.3f}",
            f"{r.head_mean:.3f}",
            f"{r.delta:+.3f}",
            f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
            fmt_p(r.p_value),
        ]
        if adjusted:
            row.append(fmt_p(s.p))
        row += [r.test, s.verdict, detects(s), _flip_counts(s)]
        if c.flaky:
            row.append(str(len(s.flaky)))
        out.append(tuple(row))
    return out


def headers(c: Comparison) -> tuple[str, ...]:
    """The table's columns: an adjusted p where rows were tested together, flaky where any is."""
    names = list(HEADERS)
    if c.correction != "none":
        names.insert(names.index("p") + 1, f"p ({CORRECTION_NAMES[c.correction]})")
    if c.flaky:
        names.append("flaky")
    return tuple(names)


def detects(s: SuiteComparison) -> str:
    """The smallest drop the suite detects, in points of the score scale: ``≥ 12 pts``."""
    d = s.detectable
    if d is None:
        return "–"
    return "none at this size" if d.drop is None else f"≥ {points(d.drop)} pts"


def points(drop: float) -> str:
    """A drop on the 0–1 scale in points: 0.123 is 12.3, 0.5 is 50."""
    value = drop * 100
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def detects_sentence(c: Comparison, s: SuiteComparison) -> str | None:
    """``this suite detects drops of 12 points or more (80% power, α 0.05)``."""
    d = s.detectable
    if d is None:
        return None
    level = f"α {s.alpha:g}" + (
        f" over {len(c.suites)} rows, {CORRECTION_NAMES[c.correction]}" if c.correction != "none" else ""
    )
    if d.drop is None:
        return f"at {s.stats.n} cases this suite detects no drop with {d.power:.0%} power ({level})"
    return f"this suite detects drops of {points(d.drop)} points or more ({d.power:.0%} power, {level})"


def _flip_counts(s: SuiteComparison) -> str:
    down = sum(f.direction == "pass→fail" for f in s.flips)
    return f"{down}/{len(s.flips) - down}"


HEADERS = (
    "suite", "prompt", "cases", "base", "head", "delta", "95% CI", "p", "test", "verdict", "detects", "flips ↓/↑",
)  # fmt: skip
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini–Hochberg", "none": "none"}


def _clip(text: str | None, n: int = 160) -> str:
    """A case's output, input or name for a report: tool calls read as calls, then cut."""
    text = readable(text)
    if text is None:
        return "(none)"
    return clip(" ".join(text.split()), n)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]!~|])")


def _cell(text: str | None) -> str:
    """Model output or a case name as inert text in a table cell: no HTML, links, images or code."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(_clip(text), quote=False))


def markdown(c: Comparison) -> str:
    """The PR comment: the verdict, a table, then the flipped cases in collapsible details."""
    lines = [MARKER, f"### promptci: **{c.verdict}**", "", f"Base `{c.base}` → head `{c.head}`.", ""]
    names = headers(c)
    lines += ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(c)]
    for s in c.suites:
        notes = [f"⚠️ {m}" for m in s.mismatches]
        sentence = detects_sentence(c, s)
        if sentence:
            notes.append(sentence)
        if s.judge_note:
            notes.append(f"⚠️ {_cell(s.judge_note)}")
        if s.added or s.removed:
            notes.append(f"{len(s.added)} case(s) added, {len(s.removed)} removed (not paired)")
        if any(s.errors):
            notes.append(f"errored cases: {s.errors[0]} on base, {s.errors[1]} on head (not scored)")
            for side, reason in zip(("base", "head"), s.reasons, strict=True):
                if reason:
                    notes.append(f"commonest error on {side}: {_cell(reason)}")
        if s.steps:
            notes.append("changed per step: " + step_changes(s))
        if s.flaky:
            notes.append(f"{len(s.flaky)} flaky case(s): their repeats disagree, " + _flaky_policy(c.flaky_policy))
        if notes or s.flips:
            lines += [
                "",
                f"**{s.suite} × {s.prompt}**: " + "; ".join(notes) if notes else f"**{s.suite} × {s.prompt}**",
            ]
        if s.flips:
            shown = _ordered(s.flips)[:MAX_FLIPS]
            step = f"{_first_label(s)} | " if s.steps else ""
            changed = any(f.change for f in shown)  # structured outputs: what changed in them
            lines += [
                "",
                f"<details><summary>{len(s.flips)} flipped case(s)</summary>",
                "",
                f"| case | input | flip | {step}base output | head output |" + (" what changed |" if changed else ""),
                "|---|---|---|---|---|" + ("---|" if s.steps else "") + ("---|" if changed else ""),
            ]
            lines += [
                f"| {_cell(f.name)} | {_cell(f.input)} | {f.direction} | "
                + (f"{_cell(_step_name(f.first_step) if f.first_step else '(none)')} | " if s.steps else "")
                + f"{_cell(f.base.output)} | {_cell(f.head.output)} |"
                + (f" {_cell(f.change or '')} |" if changed else "")
                for f in shown
            ]
            if len(s.flips) > MAX_FLIPS:
                lines.append(
                    f"| … | | {len(s.flips) - MAX_FLIPS} more | | |"
                    + (" |" if s.steps else "")
                    + (" |" if changed else "")
                )
            lines += ["", "</details>"]
        if s.flaky:
            lines += [
                "",
                f"<details><summary>{len(s.flaky)} flaky case(s)</summary>",
                "",
                "| case | base passes | head passes |",
                "|---|---|---|",
            ]
            lines += [
                f"| {_cell(f.name)} | {f.base[0]}/{f.base[1]} | {f.head[0]}/{f.head[1]} |" for f in s.flaky[:MAX_FLIPS]
            ]
            if len(s.flaky) > MAX_FLIPS:
                lines.append(f"| … | {len(s.flaky) - MAX_FLIPS} more | |")
            lines += ["", "</details>"]
    corrected = (
        f" p adjusted across the {len(c.suites)} rows by {CORRECTION_NAMES[c.correction]}."
        if c.correction != "none"
        else ""
    )
    fails = "**regressed**" + (" and flaky cases (`gate.flaky: fail`)" if c.flaky_policy == "fail" else "")
    if c.spend:
        spent = [_MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(x, quote=False)) for x in c.spend[:10]]
        lines += ["", "**Estimate and spend** (head): " + "; ".join(spent)]
    lines += [
        "",
        "<sub>Paired per case: exact McNemar on pass/fail, or a sign-flip permutation test on per-case means"
        f" (scores, repeats); 95% CI by bootstrap.{corrected} *detects*: the smallest drop found with"
        f" {c.power:.0%} power. Only {fails} fails the check.</sub>",
    ]
    return "\n".join(lines) + "\n"


def _flaky_policy(policy: str) -> str:
    return {
        "ignore": "left out of the test (gate.flaky: ignore)",
        "report": "listed apart from regressions (gate.flaky: report)",
        "fail": "and they fail the gate (gate.flaky: fail)",
    }[policy]


def is_conversation(s: SuiteComparison) -> bool:
    """Whether the suite's steps are a conversation's turns (``turn N``, ``user N``), not a pipeline's."""
    return bool(s.steps) and all(c.step.startswith(("turn ", "user ")) for c in s.steps)


def first_difference(s: SuiteComparison, step: str) -> str:
    """``first step to differ: draft``, or for a conversation ``first turn to differ: 2``."""
    return f"{_first_label(s)}: {_step_name(step)}"


def _first_label(s: SuiteComparison) -> str:
    return "first turn to differ" if is_conversation(s) else "first step to differ"


def _step_name(step: str) -> str:
    return step.removeprefix("turn ")


def step_changes(s: SuiteComparison) -> str:
    """``reason 31/40, answer 12/40``: per pipeline step, the cases whose output there changed."""
    return ", ".join(f"{c.step} {c.changed}/{c.total}" for c in s.steps)


def _ordered(flips: list[Flip]) -> list[Flip]:
    """Pass→fail first, then by name with numbers in numeric order ("case 2" before "case 10")."""
    return sorted(flips, key=lambda f: (f.direction != "pass→fail", _natural(f.name)))


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def _case_side(side: CaseSide) -> dict[str, Any]:
    return {"score": side.score, "passed": side.passed, "output": side.output, "repeats": side.repeats}


def as_dict(c: Comparison) -> dict[str, Any]:
    def suite(s: SuiteComparison) -> dict[str, Any]:
        r = s.stats
        return {
            "suite": s.suite,
            "prompt": s.prompt,
            "verdict": s.verdict,
            "max_drop": s.max_drop,
            "alpha": s.alpha,
            "base_prompt_hash": s.base_hash,
            "head_prompt_hash": s.head_hash,
            "n": r.n,
            "base_mean": r.base_mean,
            "head_mean": r.head_mean,
            "delta": r.delta,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "p_value": r.p_value,
            "p_adjusted": s.p_adjusted,
            "test": r.test,
            "repeats": s.repeats,
            "judge_note": s.judge_note,
            "detectable_drop": s.detectable.drop if s.detectable else None,
            "flaky": [
                {"case_id": f.case_id, "name": f.name, "base": list(f.base), "head": list(f.head)} for f in s.flaky
            ],
            "discordant": list(r.discordant),
            "flips": [
                {
                    "case_id": f.case_id,
                    "name": f.name,
                    "input": f.input,
                    "direction": f.direction,
                    "base": _case_side(f.base),
                    "head": _case_side(f.head),
                    "change": f.change,
                    **({"first_step": f.first_step, "trace": [asdict(t) for t in f.trace]} if s.steps else {}),
                }
                for f in _ordered(s.flips)
            ],
            "steps": [asdict(c) for c in s.steps],
            "added": s.added,
            "removed": s.removed,
            "errors": {"base": s.errors[0], "head": s.errors[1]},
            "error_reasons": {"base": s.reasons[0], "head": s.reasons[1]},
            "mismatches": s.mismatches,
        }

    return {
        "version": 1,
        "base": c.base,
        "head": c.head,
        "verdict": c.verdict,
        "fails": c.fails,
        "correction": c.correction,
        "power": c.power,
        "flaky_policy": c.flaky_policy,
        "spend": c.spend,
        "suites": [suite(s) for s in c.suites],
    }


def to_json(c: Comparison) -> str:
    return json.dumps(as_dict(c), indent=2, ensure_ascii=False) + "\n"


def junit(c: Comparison) -> str:
    root = ET.Element("testsuites", name="promptci compare")
    for s in c.suites:
        r = s.stats
        el = ET.SubElement(
            root,
            "testsuite",
            name=f"{s.suite}/{s.prompt}",
            tests=str(1 + len(s.flips)),
            failures=str(int(s.verdict == "regressed") + sum(f.direction == "pass→fail" for f in s.flips)),
        )
        gate = ET.SubElement(el, "testcase", classname=f"{s.suite}.{s.prompt}", name="gate")
        summary = (
            f"delta {r.delta:+.3f} (95% CI {r.ci_low:+.3f}..{r.ci_high:+.3f}), p={fmt_p(s.p)} ({r.test}),"
            f" detects {detects(s)}"
        )
        if s.verdict == "regressed":
            ET.SubElement(gate, "failure", message=f"regressed: {summary}")
        else:
            ET.SubElement(gate, "system-out").text = f"{s.verdict}: {summary}"
        for f in _ordered(s.flips):
            case = ET.SubElement(el, "testcase", classname=f"{s.suite}.{s.prompt}", name=f.name)
            text = f"base: {_clip(f.base.output, 400)}\nhead: {_clip(f.head.output, 400)}"
            if f.change:
                text += f"\nchanged: {_clip(f.change, 400)}"
            if f.direction == "pass→fail":
                ET.SubElement(case, "failure", message="pass→fail").text = text
            else:
                ET.SubElement(case, "system-out").text = "fail→pass\n" + text
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def github_annotations(c: Comparison, lines: dict[str, int]) -> list[str]:
    """``::error``/``::warning`` workflow commands pointing at the prompt file and line."""
    out = []
    for s in c.suites:
        if s.verdict not in ("regressed", "underpowered", "inconclusive") or not s.prompt_file:
            continue
        level = "error" if s.verdict == "regressed" else "warning"
        r = s.stats
        message = (
            f"{s.suite}: {s.verdict}, {r.base_mean:.3f} → {r.head_mean:.3f} ({r.delta:+.3f}),"
            f" p={fmt_p(s.p)}, {len(s.flips)} flipped, detects {detects(s)}"
        )
        line = lines.get(s.prompt_file, 1)
        out.append(f"::{level} file={s.prompt_file},line={line},title=promptci {s.verdict}::{message}")
    return out


def prompt_lines(project: Project, comparison: Comparison) -> dict[str, int]:
    """The line of each prompt file's `messages:` or `template:`, where an annotation belongs."""
    from ..errors import PromptciError
    from ..files import read_text
    from ..yamlio import parse_yaml

    lines = {}
    for s in comparison.suites:
        if s.prompt_file and s.prompt_file not in lines:
            try:
                doc = parse_yaml(read_text(project.path(s.prompt_file), s.prompt_file), s.prompt_file)
            except (OSError, PromptciError):
                continue
            key = "messages" if isinstance(doc.data, dict) and "messages" in doc.data else "template"
            lines[s.prompt_file] = doc.position((key,)).line
    return lines

"""Inline SVG charts shared by the static report and the viewer: no script, no network.

A chart plots scores (0–1) over versions in order, with each version's commit written on the
x axis and the suite's threshold drawn as a dashed line. Points with errored cases are hollow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import markupsafe

WIDTH, HEIGHT, PAD, AXIS, LEFT = 560, 200, 32, 36, 56
MAX_LABELS = 12


@dataclass(frozen=True)
class Mark:
    """One point: its score (None: nothing scored), its label on the x axis, its tooltip, and a
    link to follow when it is clicked."""

    score: float | None
    label: str
    tip: str
    href: str | None = None
    errored: bool = False


def chart(marks: Sequence[Mark], threshold: float | None = None, *, title: str = "") -> str:
    """The SVG markup of a line chart over ``marks`` in order."""
    n = len(marks)
    bottom = HEIGHT - AXIS
    step = (WIDTH - LEFT - PAD) / max(1, n - 1)

    def xy(i: int, score: float) -> tuple[float, float]:
        x = LEFT + (i * step if n > 1 else (WIDTH - LEFT - PAD) / 2)
        return round(x, 1), round(bottom - score * (bottom - PAD / 2), 1)

    label = f' aria-label="{markupsafe.escape(title)}"' if title else ""
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"{label}>']
    for level in (0.0, 0.5, 1.0):
        _, y = xy(0, level)
        parts.append(f'<line class="grid" x1="{LEFT - 8}" x2="{WIDTH - PAD}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 30}" y="{y + 4}">{level:.1f}</text>')
    if threshold is not None and 0 < threshold <= 1:
        _, y = xy(0, threshold)
        parts.append(f'<line class="threshold" x1="{LEFT - 8}" x2="{WIDTH - PAD}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="threshold-label" x="{WIDTH - PAD}" y="{y - 3}" text-anchor="end">'
                     f"threshold {threshold:.2f}</text>")  # fmt: skip
    every = max(1, -(-n // MAX_LABELS))
    for i, m in enumerate(marks):
        if i % every and i != n - 1:
            continue
        x, _ = xy(i, 0.0)
        text = markupsafe.escape(m.label)
        parts.append(
            f'<text class="tick" x="{x}" y="{bottom + 12}" text-anchor="end" transform="rotate(-30 {x} {bottom + 12})">'
            f"{text}</text>"
        )
    scored = [(i, m) for i, m in enumerate(marks) if m.score is not None]
    if len(scored) > 1:
        line = " ".join(f"{x},{y}" for x, y in (xy(i, m.score) for i, m in scored if m.score is not None))
        parts.append(f'<polyline class="line" points="{line}"/>')
    for i, m in scored:
        assert m.score is not None
        x, y = xy(i, m.score)
        kind = "point errored" if m.errored else "point"
        circle = f'<circle class="{kind}" cx="{x}" cy="{y}" r="4"><title>{markupsafe.escape(m.tip)}</title></circle>'
        if m.href:
            circle = f'<a href="{markupsafe.escape(m.href)}">{circle}</a>'
        parts.append(circle)
    parts.append("</svg>")
    return "".join(parts)

"""``promptci report --html``: one self-contained page (no CDN, no external requests).

Score history per prompt × suite as inline SVG charts, the latest comparison and its
flipped cases. The data behind the charts is embedded as JSON for tools.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import jinja2
import markupsafe

from ..compare.history import Point

WIDTH, HEIGHT, PAD = 560, 180, 32


@dataclass(frozen=True)
class Chart:
    title: str
    model: str
    svg: str
    points: int
    latest: float | None
    cases: str = ""  # what the latest score is over: "24 cases", "6 cases, 34 errored, partial"


def chart(points: list[Point]) -> str:
    """An SVG line chart of scores (0–1) over versions, a circle with a tooltip per version."""
    n = len(points)
    step = (WIDTH - 2 * PAD) / max(1, n - 1)

    def xy(i: int, score: float) -> tuple[float, float]:
        x = PAD + (i * step if n > 1 else (WIDTH - 2 * PAD) / 2)
        return round(x, 1), round(HEIGHT - PAD - score * (HEIGHT - 2 * PAD), 1)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">']
    for level in (0.0, 0.5, 1.0):
        _, y = xy(0, level)
        parts.append(f'<line class="grid" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="axis" x="4" y="{y + 4}">{level:.1f}</text>')
    scored = [(i, p) for i, p in enumerate(points) if p.score is not None]
    if len(scored) > 1:
        line = " ".join(f"{x},{y}" for x, y in (xy(i, p.score) for i, p in scored if p.score is not None))
        parts.append(f'<polyline class="line" points="{line}"/>')
    for i, p in scored:
        assert p.score is not None
        x, y = xy(i, p.score)
        commit = p.commit[:10] if p.commit else "uncommitted"
        tip = f"{p.prompt_hash[:12]} @ {commit}, {p.first_seen:%Y-%m-%d %H:%M}: score {p.score:.3f}, {p.cases} cases"
        parts.append(f'<circle class="point" cx="{x}" cy="{y}" r="4"><title>{markupsafe.escape(tip)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def render(
    points: list[Point],
    comparison: dict[str, Any] | None,
    *,
    ab: list[dict[str, Any]] | None = None,
    title: str = "promptci report",
) -> str:
    series: dict[tuple[str, str, str], list[Point]] = defaultdict(list)
    for p in points:
        series[(p.prompt, p.suite, p.model_id)].append(p)
    charts = [
        Chart(f"{prompt} × {suite}", model, chart(pts), len(pts), pts[-1].score, _over(pts[-1]))
        for (prompt, suite, model), pts in sorted(series.items())
    ]
    data = {
        "history": [{**p.__dict__, "first_seen": p.first_seen.isoformat()} for p in points],
        "comparison": comparison,
        "ab": ab or [],
    }
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    source = (resources.files("promptci") / "templates" / "report.html.j2").read_text(encoding="utf-8")
    return env.from_string(source).render(
        title=title,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        charts=charts,
        comparison=comparison,
        ab=ab or [],
        # No "<", ">" or "&" in the script element: no string can end it or open a comment in it.
        data_json=json.dumps(data, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    )


def _over(p: Point) -> str:
    """What a version's score is over: its cases, those that errored, and whether it is partial."""
    text = f"{p.cases} cases" + (f", {p.errors} errored" if p.errors else "")
    return text + (f", partial (of {p.total})" if p.partial else "")

"""``promptci report --html``: one self-contained page (no CDN, no external requests).

Score history per prompt × suite as inline SVG charts (commits on the axis, the suite's
threshold drawn, errored cases counted with their reasons), the latest comparison and its
flipped cases. The data behind the charts is embedded as JSON for tools. The page's parts are
the viewer's (``templates/macros.html.j2``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import jinja2

from ..compare.history import Point
from ..providers.replies import readable
from ..redact import inert
from .chart import Mark, chart

Series = tuple[str, str, str]  # prompt, suite, model
Version = tuple[str, str, str, str]  # prompt, suite, model, prompt hash


@dataclass(frozen=True)
class Chart:
    title: str
    model: str
    svg: str
    points: int
    latest: float | None
    cases: str = ""  # what the latest score is over: "24 cases", "6 cases, 34 errored, partial"
    errored: int = 0  # the latest version's cases whose latest result is an error
    seen: int = 0  # the latest version's cases
    errors: list[dict[str, Any]] = field(default_factory=list)  # its error messages, most frequent first


def environment() -> jinja2.Environment:
    """The templates of the report and the viewer: autoescaped, and strict about missing names."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("promptci", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["segment"] = lambda value: quote(str(value), safe="")  # one path segment of a link
    env.filters["readable"] = lambda output: readable(output) or ""  # tool calls as name(arg=…)
    return env


def mark(p: Point, href: str | None = None) -> Mark:
    commit = p.commit[:10] if p.commit else "uncommitted"
    tip = f"{p.prompt_hash[:12]} @ {commit}, {p.first_seen:%Y-%m-%d %H:%M}: "
    tip += (f"score {p.score:.3f}" if p.score is not None else "nothing scored") + f", {over(p)}"
    return Mark(p.score, p.commit[:7] if p.commit else "wt", tip, href, errored=p.errors > 0)


def charts(
    points: Sequence[Point],
    thresholds: Mapping[str, float] | None = None,
    errors: Mapping[Version, list[dict[str, Any]]] | None = None,
    href: Any = None,
) -> list[Chart]:
    """A chart per prompt × suite × model, oldest version first, with the latest version's
    ``errors`` (by version, as the store lists them); ``href(point)`` links a point."""
    series: dict[Series, list[Point]] = defaultdict(list)
    for p in points:
        series[(p.prompt, p.suite, p.model_id)].append(p)
    found = []
    for key, pts in sorted(series.items()):
        prompt, suite, model = key
        last = pts[-1]
        svg = chart([mark(p, href(p) if href else None) for p in pts], (thresholds or {}).get(suite), title=suite)
        listed = (errors or {}).get((*key, last.prompt_hash), []) if last.errors else []
        seen = last.cases + last.errors
        title = f"{prompt} × {suite}"
        found.append(Chart(title, model, svg, len(pts), last.score, over(last), last.errors, seen, listed))
    return found


def render(
    points: list[Point],
    comparison: dict[str, Any] | None,
    *,
    ab: list[dict[str, Any]] | None = None,
    title: str = "promptci report",
    thresholds: Mapping[str, float] | None = None,
    errors: Mapping[Version, list[dict[str, Any]]] | None = None,
) -> str:
    data = {
        "history": [{**p.__dict__, "first_seen": p.first_seen.isoformat()} for p in points],
        "comparison": comparison,
        "ab": ab or [],
    }
    page = (
        environment()
        .get_template("report.html.j2")
        .render(
            title=title,
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            charts=charts(points, thresholds, errors),
            comparison=comparison,
            ab=ab or [],
            # No "<", ">" or "&" in the script element: no string can end it or open a comment in it.
            data_json=json.dumps(data, default=str)
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026"),
        )
    )
    return inert(page)  # NUL, escapes and bidi overrides from model output are shown, not acted on


def over(p: Point) -> str:
    """What a version's score is over: its cases, those that errored, and whether it is partial."""
    text = f"{p.cases} cases" + (f", {p.errors} errored" if p.errors else "")
    return text + (f", partial (of {p.total})" if p.partial else "")

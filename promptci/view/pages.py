"""What each page of the viewer shows, read from the registry and the results database.

Every function takes an open read-only :class:`Store` and returns the template's context; none
writes. Pages of many rows are read a page at a time (:mod:`promptci.store.browse`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

from ..compare.history import Point, history
from ..errors import InputError, NotFoundError, PromptciError
from ..evals.estimate import stored_estimate
from ..project import Project
from ..report.chart import Mark, chart
from ..report.html import charts
from ..store import Page, Store

CASE_PAGE = 50


class Missing(Exception):
    """The thing a URL names is not stored: the page answers 404 with this message."""


@dataclass(frozen=True)
class Pager:
    """Links to the previous and next page, keeping the other query parameters."""

    page: Page
    base: str
    query: Mapping[str, str]

    def _link(self, offset: int | None) -> str | None:
        if offset is None:
            return None
        params = {k: v for k, v in self.query.items() if v and k != "offset"}
        if offset:
            params["offset"] = str(offset)
        return self.base + ("?" + urlencode(params) if params else "")

    @property
    def previous(self) -> str | None:
        return self._link(self.page.previous_offset)

    @property
    def next(self) -> str | None:
        return self._link(self.page.next_offset)

    @property
    def shown(self) -> str:
        p = self.page
        if not p.total:
            return "none"
        return f"{p.offset + 1}–{p.offset + len(p.rows)} of {p.total:,}"


def index(project: Project, store: Store | None) -> dict[str, Any]:
    """Every prompt and pipeline in the registry, with its latest score per suite."""
    from ..pipelines.load import Pipelines
    from ..prompts.labelfile import read_labels
    from ..prompts.registry import Registry

    registry = Registry(project)
    problems: list[str] = []
    entries: list[tuple[str, Any]] = []
    for kind, loader in (("prompt", registry), ("pipeline", Pipelines(project, registry))):
        try:
            entries += [(kind, p) for p in loader.load_all()]
        except PromptciError as exc:
            problems.append(str(exc))
    labels = read_labels(project)
    latest: dict[str, dict[tuple[str, str], Point]] = {}
    for p in history(store) if store else []:  # oldest first: the last one per suite and model stays
        latest.setdefault(p.prompt, {})[(p.suite, p.model_id)] = p
    stored = {r["prompt"]: r for r in store.prompt_runs()} if store else {}
    rows = [
        {
            "name": p.name,
            "kind": kind,
            "path": p.path,
            "description": p.spec.description,
            "labels": sorted(labels.get(p.name, {})),
            "latest": list(latest.get(p.name, {}).values()),
            "runs": stored.get(p.name, {}).get("runs", 0),
            "last_run": stored.get(p.name, {}).get("last_run"),
        }
        for kind, p in entries
    ]
    return {"rows": rows, "problems": problems, "stored": store is not None}


def prompt(project: Project, store: Store | None, name: str) -> dict[str, Any]:
    """A prompt's or pipeline's versions, labels and their history, scores over versions, A/B groups."""
    from ..evals.plan import thresholds
    from ..pipelines.load import Pipelines
    from ..prompts.history import versions
    from ..prompts.labelfile import read_labels
    from ..prompts.labels import describe
    from ..prompts.labels import history as label_history
    from ..prompts.registry import Registry
    from ..release.ab import analyse

    registry = Registry(project)
    files: Any = registry
    try:
        subject = registry.get(name)
        kind = "prompt"
    except NotFoundError:
        files = Pipelines(project, registry)
        try:
            subject = files.get(name)
        except NotFoundError:
            raise Missing(f"no prompt or pipeline named {name!r}") from None
        kind = "pipeline"
    found = versions(files, name, 200)
    moves = label_history(files, name)
    points = history(store, name) if store else []
    errors = store.version_errors(name) if store else {}
    cards = charts(points, thresholds(project), errors, href=_version_link)
    groups = [g.as_dict() for g in analyse(store, name, None, record=False)] if store else []
    optimizations = store.optimizations_page(0, 20, name).rows if store else []
    labels = {label: describe(target) for label, target in read_labels(project).get(name, {}).items()}
    return {
        "name": name,
        "kind": kind,
        "subject": subject,
        "versions": found,
        "moves": moves,
        "labels": labels,
        "charts": cards,
        "ab": groups,
        "optimizations": optimizations,
        "describe": describe,
    }


def _version_link(p: Point) -> str:
    return "/runs?" + urlencode({"prompt": p.prompt})


def runs(store: Store | None, query: Mapping[str, str]) -> dict[str, Any]:
    prompt_name = query.get("prompt") or None
    page = store.runs_page(_offset(query), 50, prompt_name) if store else Page([], 0, 0, 50)
    return {"page": page, "pager": Pager(page, "/runs", query), "prompt": prompt_name}


def run(store: Store | None, run_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    row = store.run_row(run_id) if store else None
    if store is None or row is None:
        raise Missing(f"no run {run_id!r} is stored")
    status = query.get("status", "all")
    text = (query.get("q") or "").strip()[:200]
    suite, prompt_name = query.get("suite") or None, query.get("prompt") or None
    offset = _offset(query)
    page = store.case_page(
        run_id, offset=offset, limit=CASE_PAGE, status=status, query=text or None, suite=suite, prompt=prompt_name
    )
    totals = store.run_totals(run_id)
    return {
        "run": row,
        "estimate": stored_estimate(row),  # a damaged one is not shown
        "spent_in": sum(int(t["new_tokens_in"] or 0) for t in totals),  # new calls: what the estimate counts
        "spent_out": sum(int(t["new_tokens_out"] or 0) for t in totals),
        "totals": totals,
        "errors": store.run_errors(run_id),
        "page": page,
        "pager": Pager(page, f"/runs/{quote(run_id, safe='')}", query),
        "status": status,
        "q": text,
        "suite": suite or "",
        "prompt": prompt_name or "",
        "suites": sorted({t["suite"] for t in totals}),
        "prompts": sorted({t["prompt"] for t in totals}),
        "case_link": lambda r: f"/runs/{quote(run_id, safe='')}/case?" + urlencode(
            {"suite": r["suite"], "prompt": r["prompt"], "case": r["case_id"]}
        ),
    }  # fmt: skip


def case(store: Store | None, run_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    suite, prompt_name, case_id = query.get("suite", ""), query.get("prompt", ""), query.get("case", "")
    results = store.case_result(run_id, suite, prompt_name, case_id) if store else []
    if store is None or not results:
        raise Missing(f"run {run_id!r} holds no case {case_id!r} of {suite} × {prompt_name}")
    steps = [{**asdict(s), "chat": chat(s.input)} for s in store.case_trace(run_id, suite, prompt_name, case_id)]
    return {"run_id": run_id, "suite": suite, "prompt": prompt_name, "results": results, "steps": steps}


def _text(content: Any) -> str:
    """A message's content as text: its text parts, and each image as ``[image: URL]``."""
    if not isinstance(content, list):
        return str(content)
    parts = []
    for p in content:
        image = p.get("image_url") if isinstance(p, dict) else None
        parts.append(f"[image: {image.get('url')}]" if isinstance(image, dict) else str(p.get("text", "")))
    return "\n".join(parts)


def chat(stored: str | None, limit: int = 50) -> list[tuple[str, str]]:
    """A step's stored input (its chat as JSON) as (role, text) turns; other text as one turn."""
    try:
        messages = json.loads(stored or "[]")
    except ValueError:
        return [("input", stored or "")]
    if not isinstance(messages, list):
        return [("input", stored or "")]
    turns = [(str(m.get("role", "?")), _text(m.get("content", ""))) for m in messages[:limit] if isinstance(m, dict)]
    return turns + ([("…", f"{len(messages) - limit} more messages")] if len(messages) > limit else [])


def compare(project: Project, store: Store | None, query: Mapping[str, str]) -> dict[str, Any]:
    """Two sides (commits, ``prompt@label``, run ids) case by case, as ``promptci compare`` does."""
    from ..compare import report
    from ..compare.engine import compare as run_compare
    from ..compare.judges import judge_notes
    from ..compare.sides import load_pair, resolve_side

    base, head = (query.get("base") or "").strip(), (query.get("head") or "").strip()
    context: dict[str, Any] = {"base": base, "head": head, "comparison": None, "error": None, "missing": []}
    if not (base and head) or store is None:
        return context
    try:
        sides = [resolve_side(project, store, _side(project, text)) for text in (base, head)]
        results, left_out = load_pair(project, store, sides)
        comparison = run_compare(store, results[0], results[1], project.config.gate)
        judge_notes(project, store, comparison)
    except PromptciError as exc:
        context["error"] = str(exc)
        return context
    context["comparison"] = report.as_dict(comparison)
    context["left_out"] = left_out
    context["missing"] = [(r.side.label, len(r.missing)) for r in results if r.missing]
    return context


def _side(project: Project, text: str) -> str:
    """``prompt@label`` as the commit the label points at; anything else as given."""
    from ..prompts.labelfile import read_labels

    if "@" not in text:
        return text
    name, label = text.split("@", 1)
    target = read_labels(project).get(name, {}).get(label)
    if target is None:
        raise InputError(f"no label {label!r} on {name!r}")
    if not isinstance(target, str):
        raise InputError(f"{text} splits traffic between versions: compare one of its commits")
    return target


def optimizations(store: Store | None, query: Mapping[str, str]) -> dict[str, Any]:
    page = store.optimizations_page(_offset(query), 50, query.get("prompt") or None) if store else Page([], 0, 0, 50)
    return {"page": page, "pager": Pager(page, "/optimizations", query)}


def optimization(store: Store | None, opt_id: str) -> dict[str, Any]:
    row = store.optimization(opt_id) if store else None
    if store is None or row is None:
        raise Missing(f"no optimization {opt_id!r} is stored")
    rows = store.trajectory(opt_id)
    best: float | None = None
    marks = []
    for step in sorted({r.step for r in rows}):
        scored = [r.dev_score for r in rows if r.step == step and r.dev_score is not None and r.accepted]
        if scored:
            best = max([*scored, *([best] if best is not None else [])])
        marks.append(Mark(best, str(step), f"step {step}: best on dev so far {best:.3f}" if best is not None else ""))
    frontier = store.dev_frontier(opt_id) if row["method"].startswith("gepa") else []
    return {
        "o": row,
        "rows": rows,
        "svg": chart(marks, title="best dev score by step"),
        "credit": store.credit(opt_id),
        "frontier": frontier,
        "settings": row.get("settings") or "",
    }


def _offset(query: Mapping[str, str]) -> int:
    try:
        return max(0, int(query.get("offset", "0")))
    except ValueError:
        return 0


def ab(store: Store | None) -> dict[str, Any]:
    """Every released label's A/B comparison, as ``promptci release report`` shows it."""
    from ..release.ab import analyse

    return {"ab": [g.as_dict() for g in analyse(store, None, None, record=False)] if store else []}

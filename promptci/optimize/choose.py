"""Which prompts opted in to optimizer passes, which of them are due, and with what settings.

A prompt opts in with an ``optimize:`` block in its own file, or under ``optimize: {NAME:
...}`` in promptci.yaml. ``promptci optimize --changed`` selects those whose file (or
block) changed since the base, ``--due`` those whose schedule falls today, ``--all``
every one; a NAME picks one. A block's method and options are checked against the
method's own config, with the error at the block's line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..config import CONFIG_FILE
from ..errors import InputError, NotFoundError
from ..evals.changes import base_revision
from ..files import read_text
from ..pipelines.load import Pipelines
from ..project import Project
from ..prompts.registry import Registry
from ..settings import OptimizeSpec, parse_fractions
from ..yamlio import parse_yaml
from . import methods
from .output import TRAILER
from .settings import Settings


@dataclass(frozen=True)
class OptIn:
    name: str
    spec: OptimizeSpec
    source: str  # the file that declares it


@dataclass(frozen=True)
class Selected:
    optin: OptIn
    why: str


def opted_in(project: Project) -> dict[str, OptIn]:
    """Every prompt with optimize settings, from its own file or from promptci.yaml, its method
    and options checked."""
    registry = Registry(project)
    pipelines = Pipelines(project, registry)
    found = {p.name: OptIn(p.name, p.spec.optimize, p.path) for p in registry.load_all() if p.spec.optimize}
    found |= {p.name: OptIn(p.name, p.spec.optimize, p.path) for p in pipelines.load_all() if p.spec.optimize}
    for optin in found.values():
        check_method(project, optin.spec, optin.source, ("optimize",))
    paths = {**registry.paths(), **pipelines.paths()}
    for name, spec in project.config.optimize.items():
        if name in found:
            raise InputError(
                f"optimize settings for '{name}' are also in {found[name].source}",
                path=CONFIG_FILE,
                line=_config_line(project, name),
                hint="keep them in one place",
            )
        if name not in paths:
            raise NotFoundError(
                f"optimize: no prompt or pipeline named '{name}'", path=CONFIG_FILE, line=_config_line(project, name)
            )
        check_method(project, spec, CONFIG_FILE, ("optimize", name))
        found[name] = OptIn(name, spec, CONFIG_FILE)
    return dict(sorted(found.items()))


def check_method(project: Project, spec: OptimizeSpec, source: str, at: tuple[str, ...]) -> None:
    """The block's method exists and its ``options`` validate; else an error at their line in ``source``."""
    try:
        methods.configure(spec.method, spec.options)
    except methods.OptionError as exc:
        loc = (*at, "method") if exc.key is None else (*at, "options", *exc.key.split("."))
        doc = parse_yaml(read_text(project.path(source), source), source)
        pos = doc.position(loc)
        raise InputError(exc.message, path=source, line=pos.line, col=pos.col, hint=exc.hint) from None


def _config_line(project: Project, name: str) -> int | None:
    if project.config_path is None:
        return None
    doc = parse_yaml(read_text(project.config_path, CONFIG_FILE), CONFIG_FILE)
    return doc.position(("optimize", name)).line


def is_due(schedule: str | None, today: dt.date) -> bool:
    """``daily`` every day, ``weekly`` on Mondays, ``monthly`` on the 1st (UTC dates)."""
    if schedule == "daily":
        return True
    if schedule == "weekly":
        return today.weekday() == 0
    if schedule == "monthly":
        return today.day == 1
    return False


def select(
    project: Project,
    *,
    names: Sequence[str] = (),
    changed: bool = False,
    base: str | None = None,
    due: dt.date | None = None,
    everything: bool = False,
) -> tuple[list[Selected], list[str]]:
    """The opted-in prompts to optimize, each with the reason; and notes on those left out."""
    optins = opted_in(project)
    unknown = [n for n in names if n not in optins]
    if unknown:
        raise NotFoundError(
            f"prompt '{unknown[0]}' has no optimize settings",
            hint="add an optimize: block to its file or to promptci.yaml, or pass --suite",
        )
    selected: dict[str, Selected] = {n: Selected(optins[n], "asked for by name") for n in names}
    notes: list[str] = []
    if everything:
        for name, optin in optins.items():
            selected.setdefault(name, Selected(optin, "all opted-in prompts"))
    if due is not None:
        for name, optin in optins.items():
            if is_due(optin.spec.schedule, due):
                selected.setdefault(name, Selected(optin, f"scheduled {optin.spec.schedule}"))
    if changed:
        registry = Registry(project)
        repo = registry.repo
        given = base_revision(registry, base)
        sha = repo.merge_base(given) or given  # a PR's fork point; a push's previous tip is its own
        touched = repo.changed_since(sha)
        files = _files(project, registry)
        config_before = _config_at(project, registry, sha)
        for name, optin in optins.items():
            if name in selected:
                continue
            hit = [f for f in files.get(name, []) if registry.git_path(f) in touched]
            if hit:
                ours = all(
                    (messages := repo.messages_touching(registry.git_path(f), sha))
                    and all(TRAILER in m for m in messages)
                    and not repo.is_dirty(registry.git_path(f))
                    for f in hit
                )
                if ours:
                    notes.append(f"{name}: changed only by promptci's own optimization commits; skipped")
                    continue
                selected[name] = Selected(optin, f"{hit[0]} changed since {sha[:10]}")
            elif optin.source == CONFIG_FILE and config_before.get(name) != optin.spec:
                selected[name] = Selected(optin, f"its optimize settings in {CONFIG_FILE} changed since {sha[:10]}")
    return [selected[n] for n in sorted(selected)], notes


def _files(project: Project, registry: Registry) -> dict[str, list[str]]:
    """Each prompt's file, and each pipeline's own file then its step prompts' files."""
    files = {name: [path] for name, path in registry.paths().items()}
    pipelines = Pipelines(project, registry)
    for name in pipelines.paths():
        pipeline = pipelines.get(name)
        files[name] = [pipeline.path, *dict.fromkeys(p.path for p in pipeline.prompts)]
    return files


def _config_at(project: Project, registry: Registry, sha: str) -> dict[str, OptimizeSpec | None]:
    """The optimize settings in promptci.yaml at ``sha``, by prompt (None where unreadable)."""
    if project.config_path is None:
        return {}
    text = registry.repo.read(sha, registry.repo.relpath(project.config_path))
    if text is None:
        return {}
    try:
        data = parse_yaml(text, CONFIG_FILE).data
    except InputError:
        return {}
    entries = data.get("optimize") if isinstance(data, dict) else None
    found: dict[str, OptimizeSpec | None] = {}
    for name, raw in (entries or {}).items() if isinstance(entries, dict) else ():
        try:
            found[name] = OptimizeSpec.model_validate(raw)
        except ValueError:
            found[name] = None
    return found


def settings_for(spec: OptimizeSpec, options: Mapping[str, Any] | None = None, **overrides: Any) -> Settings:
    """The search settings an opt-in block asks for; ``options`` (``--set``) update the block's
    own, and ``overrides`` (given, not None) win over the rest."""
    settings = Settings(
        method=spec.method,
        steps=spec.steps or 0,
        candidates=spec.candidates,
        split=parse_fractions(spec.split),
        seed=spec.seed,
        budget={str(k): v for k, v in spec.budget.items()},
        config=_config(spec.method, {**spec.options, **(options or {})}),
    )
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _config(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """A block's options as its method takes them: auto takes none; a chain's are per link."""
    if method == "auto":
        return {}
    if "+" in method:
        return {link: dict(options.get(link) or {}) for link in method.split("+")}
    return methods.configure(method, options)

"""promptci: a git-native prompt registry and CI regression gate.

Applications load prompts at run time with :func:`load`::

    import promptci

    prompt = promptci.load("summarize", label="production")
    messages = prompt.render(text=article)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ExitCode, PromptciError
from .version import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .evals.trace import RunResult
    from .optimize.session import Result
    from .prompts.prompt import Prompt

__all__ = ["ExitCode", "Prompt", "PromptciError", "__version__", "load", "optimize_prompt", "run"]


def load(
    name: str,
    rev: str | None = None,
    label: str | None = None,
    root: str | Path | None = None,
    *,
    key: str | None = None,
    bundle: str | Path | None = None,
    outcomes: str | Path | None = None,
) -> Prompt:
    """Load the prompt ``name``.

    From a deploy bundle when ``bundle`` (or ``$PROMPTCI_BUNDLE``) is given: no git, and none of
    the CLI's dependencies, are needed; ``label`` defaults to ``production``. Otherwise from the
    registry: with neither ``rev`` nor ``label`` from the working tree; ``rev`` is any git
    revision (sha, tag, branch, ``HEAD~2``), ``label`` a label such as ``production``; ``root``
    is any path inside the project (default: the current directory, or ``$PROMPTCI_ROOT``).

    Where the label splits traffic between versions (an A/B release), ``key`` (a user id) picks
    one: always the same for the same key; without a key, one is drawn by the weights. A prompt
    loaded by label can ``.record(outcome)`` to ``outcomes`` (default ``$PROMPTCI_OUTCOMES``,
    else ``promptci-outcomes.jsonl``). Raises :class:`PromptciError` subclasses.
    """
    import os

    if rev is not None and label is not None:
        raise ValueError("give rev or label, not both")
    log = str(outcomes) if outcomes is not None else None
    if bundle is not None or (rev is None and os.environ.get("PROMPTCI_BUNDLE")):
        if rev is not None:
            raise ValueError("a bundle holds labels, not revisions")
        from .runtime import Bundle

        return Bundle.open(bundle).prompt(name, label or "production", key, log)
    from dataclasses import replace

    from .outcomes import Release, key_hash
    from .project import Project
    from .prompts.registry import Registry

    registry = Registry(Project.discover(root))
    if label is not None:
        return replace(registry.get_label(name, label, key), release=Release(label, key_hash(key), log))
    return registry.get(name, rev)


def run(
    pipeline: str,
    inputs: Mapping[str, object] | None = None,
    *,
    root: str | Path | None = None,
    use_cache: bool = True,
) -> RunResult:
    """Run pipeline ``pipeline`` (``NAME``, ``NAME@REV`` or ``NAME@LABEL``) once on ``inputs``, as
    ``promptci run`` does, through the project's response cache.

    ``.output`` is the output step's parsed value (None when a step failed), ``.trace.error``
    says which step failed and why, and ``.trace.steps`` holds each step's messages, output,
    parsed value, latency and tokens; ``.to_json()`` is what ``promptci run --format json``
    prints. Bad input raises :class:`PromptciError` subclasses.
    """
    from .evals.trace import run_pipeline
    from .project import Project

    return run_pipeline(Project.discover(root), pipeline, dict(inputs or {}), use_cache=use_cache)


def optimize_prompt(
    name: str,
    suite: str,
    method: str = "gpo",
    *,
    root: str | Path | None = None,
    optimizer_model: str | None = None,
    task_model: str | None = None,
    dry_run: bool = False,
    min_gain: float | None = None,
    alpha: float = 0.05,
    allow_insignificant: bool = False,
    options: dict[str, object] | None = None,
    **settings: object,
) -> Result:
    """Optimize prompt ``name`` on ``suite`` as ``promptci optimize`` does.

    ``method`` is any name :func:`promptci.optimize.methods.names` lists ("opro", "gpo",
    "greater", "catalyst" and installed plugins); ``options`` are its own, as ``--set``
    gives them (``{"topk": 40}``), checked by its config. ``settings`` are the shared fields
    of :class:`promptci.optimize.settings.Settings` (``steps``, ``candidates``, ``split``,
    ``seed``, ``position``, ``budget={"calls": 500}`` …). Returns the outcome, the held-out
    statistics, the PR body and the branch made: None on a dry run, or unless the held-out gain
    is above 0, at least ``min_gain`` and significant at ``alpha`` (``allow_insignificant``
    lifts the last).
    """
    from dataclasses import fields

    from .errors import InputError
    from .optimize.session import optimize as run
    from .optimize.settings import Settings
    from .project import Project

    shared = {f.name for f in fields(Settings)} - {"method", "config"}
    unknown = sorted(set(settings) - shared)
    if unknown:
        raise InputError(
            f"optimize_prompt() has no setting '{unknown[0]}'",
            hint=f"shared settings: {', '.join(sorted(shared))}; a method's own go in options={{...}}"
            f" (`promptci optimize --list-methods`)",
        )
    settings.setdefault("steps", 0)  # 0: the method's default
    config = dict(options or {})
    search = Settings(method=method, config=config, **settings)  # type: ignore[arg-type]
    return run(
        Project.discover(root),
        name,
        suite=suite,
        settings=search,
        optimizer_model=optimizer_model,
        task_model=task_model,
        dry_run=dry_run,
        min_gain=min_gain,
        alpha=alpha,
        allow_insignificant=allow_insignificant,
    )


def __getattr__(attr: str) -> object:
    if attr == "Prompt":
        from .prompts.prompt import Prompt

        return Prompt
    raise AttributeError(f"module 'promptci' has no attribute {attr!r}")

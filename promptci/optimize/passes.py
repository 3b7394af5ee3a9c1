"""Running the optimizer passes of opted-in prompts, as CI does: one API call for the command."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from ..errors import ExitCode, InputError
from ..github import ActionsEnv
from ..project import Project
from .auto import Unmoved
from .choose import OptIn, Selected, settings_for
from .context import Reporter
from .publish import Publication, publish
from .session import Result, optimize
from .settings import Settings


@dataclass(frozen=True)
class PassEntry:
    name: str
    why: str
    result: Result
    publication: Publication | None  # None without --push, or when there was no branch to push


@dataclass(frozen=True)
class Passes:
    """Which opted-in prompts to optimize, and where to publish the winners."""

    changed: bool
    base: str | None
    due: bool
    today: str | None
    everything: bool
    plan: bool
    push: bool
    remote: str
    pr_base: str | None


def prepare(
    project: Project, name: str | None, passes: Passes, sets: tuple[str, ...], branch: Callable[[], str | None]
) -> tuple[list[Selected], list[str], str, dict[str, Any], ActionsEnv]:
    """What a run of passes will do: the prompts chosen, notes on those left out, the PR's target
    branch (``branch`` gives the current one), the ``--set`` options for their one method, and
    the Actions environment. Bad flags raise :class:`InputError`."""
    import datetime as dt

    from .choose import select
    from .methods import parse_sets

    if not (name or passes.changed or passes.due or passes.everything):
        raise InputError("say which opted-in prompts to optimize: NAME, --changed, --due or --all")
    day = None
    if passes.due:
        try:
            day = dt.date.fromisoformat(passes.today) if passes.today else dt.datetime.now(dt.timezone.utc).date()
        except ValueError:
            raise InputError(f"bad --today '{passes.today}'", hint="write YYYY-MM-DD") from None
    names = (name,) if name else ()
    chosen, notes = select(
        project, names=names, changed=passes.changed, base=passes.base, due=day, everything=passes.everything
    )
    env = ActionsEnv.read()
    if passes.plan:
        return chosen, notes, "", {}, env
    target = passes.pr_base or env.head_ref or env.ref_name or branch()
    if passes.push and not target:
        raise InputError("--push needs the PR's target branch", hint="pass --pr-base BRANCH (HEAD is detached)")
    options: dict[str, Any] = {}
    if sets:
        used = {c.optin.spec.method for c in chosen}
        if len(used) != 1:
            raise InputError("--set applies to one method, but the selected prompts use several", hint="select by NAME")
        options = parse_sets(used.pop(), sets)
    return chosen, notes, target or "", options, env


ReporterFor = Callable[[Settings], AbstractContextManager[Reporter | None]]


def run_pass(
    project: Project,
    optin: OptIn,
    *,
    settings: Settings | None = None,
    task_model: str | None = None,
    optimizer_model: str | None = None,
    dry_run: bool = False,
    alpha: float | None = None,
    allow_insignificant: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """One configured optimization; a branch only for a held-out gain of at least ``min_gain``,
    significant at the block's ``alpha`` (or ``alpha``, given)."""
    spec = optin.spec
    return optimize(
        project,
        optin.name,
        suite=spec.suite,
        settings=settings or settings_for(spec),
        optimizer_model=optimizer_model or spec.optimizer_model,
        task_model=task_model or spec.task_model,
        dry_run=dry_run,
        min_gain=spec.min_gain,
        alpha=alpha if alpha is not None else spec.alpha,
        allow_insignificant=allow_insignificant,
        reporter=reporter,
    )


def run_passes(
    project: Project,
    chosen: Sequence[Selected],
    *,
    env: ActionsEnv,
    push: bool = False,
    target: str = "",
    remote: str = "origin",
    options: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    task_model: str | None = None,
    optimizer_model: str | None = None,
    dry_run: bool = False,
    alpha: float | None = None,
    allow_insignificant: bool = False,
    reporter_for: ReporterFor = lambda _: nullcontext(None),
    on_done: Callable[[PassEntry], None] = lambda _: None,
    on_skip: Callable[[str, str], None] = lambda *_: None,
) -> tuple[list[PassEntry], ExitCode]:
    """Run each chosen pass and, with ``push``, publish its winner as the prompt's one PR.

    Returns the passes and the exit code they add up to: a branch a human pushed to
    (``BRANCH_CONFLICT``) outranks a push or PR that failed (``PUBLISH_FAILED``).
    """
    entries = []
    worst = ExitCode.OK
    for c in chosen:
        settings = settings_for(c.optin.spec, options, **(overrides or {}))
        try:
            with reporter_for(settings) as reporter:
                result = run_pass(
                    project, c.optin, settings=settings, task_model=task_model, optimizer_model=optimizer_model,
                    dry_run=dry_run, alpha=alpha, allow_insignificant=allow_insignificant, reporter=reporter,
                )  # fmt: skip
        except Unmoved as exc:  # method: auto found nothing that moves the model: no pass to report
            on_skip(c.optin.name, exc.message)
            continue
        publication = None
        if push and result.branch:
            publication = publish(
                project, result, target=target, remote=remote, token=env.token, repo_slug=env.repository, api=env.api
            )
            if publication.status == "conflict":
                worst = ExitCode.BRANCH_CONFLICT
            elif publication.status == "failed" and worst != ExitCode.BRANCH_CONFLICT:
                worst = ExitCode.PUBLISH_FAILED
        entry = PassEntry(c.optin.name, c.why, result, publication)
        entries.append(entry)
        on_done(entry)
    return entries, worst


def summary(entries: Sequence[PassEntry]) -> str:
    """The job summary: for each prompt, what the pass did and why, then its evidence."""
    lines = ["## promptci optimize", ""]
    if not entries:
        lines.append("No opted-in prompt was selected: nothing to optimize.")
    for entry in entries:
        name, result, publication, why = entry.name, entry.result, entry.publication, entry.why
        lines.append(f"### `{name}`: {why}")
        lines.append("")
        r = result.stats.result
        lines.append(f"Held-out: {r.base_mean:.3f} → {r.head_mean:.3f} ({r.delta:+.3f}, p={r.p_value:.3g}, n={r.n})")
        if result.outcome.status == "budget":
            lines.append("The search stopped early: its budget was spent.")
        if publication is None:
            pushed = f"Branch {result.branch}, not pushed (no --push)."
            lines.append(f"No PR: {result.reason}." if result.branch is None else pushed)
        elif publication.ok and publication.pr is not None:
            verb = publication.status if publication.pushed else f"{publication.status} (the branch already held this)"
            lines.append(f"PR #{publication.pr.number} {verb}: {publication.pr.url}")
        else:
            lines.append(f"**No PR ({publication.status})**: {publication.reason}")
        lines += ["", "<details><summary>Evidence</summary>", "", result.body, "</details>", ""]
    return "\n".join(lines) + "\n"

"""Optimizer passes in CI: which prompts opted in, which of them to run, and publishing a result.

A prompt opts in with an ``optimize:`` block in its own file, or under ``optimize: {NAME:
...}`` in promptci.yaml. ``promptci optimize --changed`` (or ``--due``, or a NAME) runs the
pass as ``promptci optimize`` does; ``--push`` then publishes a winner to one branch per
prompt and target branch, ``promptci/optimize/NAME/TARGET``, and opens the one PR from it,
or updates it.

The branch is never force-pushed over a human: promptci replaces only commits that carry
its ``Promptci-Optimization`` trailer, and pushes with a lease on the tip it read. If
anyone else has pushed to the branch, the pass stops there and says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..config import CONFIG_FILE
from ..errors import GitError, InputError, NotFoundError
from ..evals.changes import base_revision
from ..files import read_text
from ..github import PullOutcome, upsert_pull_request
from ..project import Project
from ..prompts.registry import Registry
from ..settings import OptimizeSpec
from ..yamlio import parse_yaml
from .engine import Reporter, Settings
from .output import TRAILER
from .session import Result, optimize
from .split import parse_fractions

PR_LABEL = "promptci-optimization"  # not the trigger label: an optimization PR must not trigger a pass
BODY_LIMIT = 65_000  # GitHub refuses PR bodies over 65,536 characters


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
    """Every prompt with optimize settings, from its own file or from promptci.yaml."""
    registry = Registry(project)
    found = {p.name: OptIn(p.name, p.spec.optimize, p.path) for p in registry.load_all() if p.spec.optimize}
    paths = registry.paths()
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
                f"optimize: no prompt named '{name}'", path=CONFIG_FILE, line=_config_line(project, name)
            )
        found[name] = OptIn(name, spec, CONFIG_FILE)
    return dict(sorted(found.items()))


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
        paths = registry.paths()
        config_before = _config_at(project, registry, sha)
        for name, optin in optins.items():
            if name in selected:
                continue
            git_path = registry.git_path(paths[name])
            if git_path in touched:
                messages = repo.messages_touching(git_path, sha)
                if messages and all(TRAILER in m for m in messages) and not repo.is_dirty(git_path):
                    notes.append(f"{name}: changed only by promptci's own optimization commits; skipped")
                    continue
                selected[name] = Selected(optin, f"{paths[name]} changed since {sha[:10]}")
            elif optin.source == CONFIG_FILE and config_before.get(name) != optin.spec:
                selected[name] = Selected(optin, f"its optimize settings in {CONFIG_FILE} changed since {sha[:10]}")
    return [selected[n] for n in sorted(selected)], notes


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


def settings_for(spec: OptimizeSpec, **overrides: Any) -> Settings:
    """The search settings an opt-in block asks for; ``overrides`` (given, not None) win."""
    settings = Settings(
        method=spec.method,
        steps=spec.steps or 0,
        candidates=spec.candidates,
        split=parse_fractions(spec.split),
        seed=spec.seed,
        budget={str(k): v for k, v in spec.budget.items()},
    )
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def run_pass(
    project: Project,
    optin: OptIn,
    *,
    settings: Settings | None = None,
    task_model: str | None = None,
    optimizer_model: str | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """One configured optimization; a branch only for a held-out gain of at least ``min_gain``."""
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
        reporter=reporter,
    )


@dataclass(frozen=True)
class Publication:
    status: str  # created, updated, conflict or failed
    branch: str  # the PR's head branch on the remote
    pushed: bool  # False also when the branch already held this very change
    pr: PullOutcome | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("created", "updated")


def pr_branch(prompt: str, target: str) -> str:
    return f"promptci/optimize/{prompt}/{target}"


def pr_title(result: Result) -> str:
    o, r = result.outcome, result.stats.result
    return f"promptci: optimize {o.prompt} with {o.method.upper()} (held-out {r.base_mean:.3f} → {r.head_mean:.3f})"


def publish(
    project: Project,
    result: Result,
    *,
    target: str,
    remote: str = "origin",
    token: str | None,
    repo_slug: str | None,
    api: str = "https://api.github.com",
) -> Publication:
    """Push ``result``'s branch as the prompt's PR branch for ``target`` and open or update its PR."""
    assert result.commit is not None, "publish only a result that made a branch"
    repo = Registry(project).repo
    head = pr_branch(result.outcome.prompt, target)
    local = f"the branch {result.branch} exists locally"
    if not token:
        return Publication("failed", head, False, None, f"GITHUB_TOKEN is not set: nothing pushed; {local}")
    try:
        tip = repo.fetch_branch(remote, head)
        same = False
        if tip is not None:
            base = repo.parents(result.commit)[0]
            foreign = [c for c in repo.commits_not_in(tip, base) if TRAILER not in c[2]]
            if foreign:
                sha, author, message = foreign[0]
                subject = message.splitlines()[0] if message else ""
                return Publication(
                    "conflict",
                    head,
                    False,
                    None,
                    f"{head} has a commit promptci did not make ({sha[:10]} by {author}: {subject}); nothing was"
                    f" pushed over it. Merge or close that PR, or delete the branch, to let promptci update it;"
                    f" {local}",
                )
            same = repo.tree(tip) == repo.tree(result.commit) and repo.parents(tip) == repo.parents(result.commit)
        if not same and not repo.push_with_lease(remote, result.commit, head, tip):
            return Publication(
                "conflict", head, False, None, f"{head} changed on {remote} during this pass; nothing was overwritten"
            )
    except GitError as exc:
        return Publication("failed", head, False, None, f"git: {exc.message}; {local}")
    body = result.body if len(result.body) <= BODY_LIMIT else _trimmed(result.body)
    title = pr_title(result)
    pr = upsert_pull_request(
        title=title, body=body, head=head, base=target, labels=[PR_LABEL], token=token, repo=repo_slug, api=api
    )
    if pr.action == "skipped":
        reason = f"{head} is pushed, but the PR could not be opened: {pr.reason}"
        return Publication("failed", head, not same, pr, reason)
    return Publication(pr.action, head, not same, pr)


def _trimmed(body: str) -> str:
    """The body without its table of every candidate, which is what grows with the search."""
    start = body.find("<details><summary>Every candidate</summary>")
    end = body.find("</details>", start)
    if start >= 0 and end >= 0:
        body = body[:start] + "_Every candidate: too long for a PR body; see the job summary._" + body[end + 10 :]
    return body[:BODY_LIMIT]


def summary(entries: Sequence[tuple[str, Result | None, Publication | None, str]]) -> str:
    """The job summary: for each prompt, what the pass did and why, then its evidence."""
    lines = ["## promptci optimize", ""]
    if not entries:
        lines.append("No opted-in prompt was selected: nothing to optimize.")
    for name, result, publication, why in entries:
        lines.append(f"### `{name}`: {why}")
        lines.append("")
        if result is None:
            lines += ["Not run.", ""]
            continue
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

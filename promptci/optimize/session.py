"""One optimization from the outside: resolve the prompt and suite, run, write the branch.

The prompt is optimized as committed at HEAD (or the stored base commit, when
resuming), and the branch is that commit plus the new prompt file: uncommitted work
in the checkout neither leaks into the branch nor gets touched. The suite and its
data are read from the working tree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, NotFoundError
from ..evals.plan import Task, build_plan, pipeline_stages, suite_files
from ..pipelines.load import Pipeline, Pipelines
from ..project import Project
from ..prompts.registry import Ref, Registry
from ..providers import parse_model_option
from ..settings import ModelSettings
from ..store import Store
from . import methods
from .auto import Probe
from .context import Reporter
from .engine import Method, run, start
from .outcome import Outcome
from .output import ALPHA, HeldOut, branch_name, commit_message, held_out, pr_body
from .settings import Settings


@dataclass
class Result:
    outcome: Outcome
    stats: HeldOut
    body: str
    message: str
    branch: str | None  # None: dry run, nothing better found, or below --min-gain
    commit: str | None
    reason: str  # why there is no branch, or "" when there is one


def find_suite(project: Project, suite: str) -> Path:
    """A suite by name (``navigate``, ``sub/dir/name``) or by path."""
    as_path = Path(suite)
    if as_path.suffix in (".yaml", ".yml") and (Path.cwd() / as_path).is_file():
        return suite_files(project, (suite,))[0]
    for path in suite_files(project):
        rel = project.rel(path).removeprefix(project.config.evals_dir.rstrip("/") + "/")
        if rel.rsplit(".", 1)[0] == suite:
            return path
    raise NotFoundError(f"no suite named '{suite}' under {project.config.evals_dir}/")


def resolve_task(project: Project, name: str, suite: str, base_commit: str, task_model: str | None) -> Task:
    """The suite × prompt task, with the prompt as committed at ``base_commit``."""
    override = ModelSettings(**parse_model_option(task_model)) if task_model else None  # type: ignore[arg-type]
    plan = build_plan(project, [find_suite(project, suite)], prompts=(name,), override=override)
    if not plan.tasks:
        raise InputError(f"suite '{suite}' does not use prompt '{name}'", hint="add it to the suite's prompts:")
    task = plan.tasks[0]
    if isinstance(task.prompt, Pipeline):  # the pipeline and its steps as committed at the base
        pipeline = Pipelines(project).get(name, base_commit)
        stages = pipeline_stages(project, pipeline, task.suite.model, override)
        return replace(task, prompt=pipeline, stages=stages)
    committed = Registry(project).resolve(Ref(name, base_commit))
    return replace(task, prompt=committed)


def optimize(
    project: Project,
    name: str | None,
    *,
    suite: str | None = None,
    settings: Settings | None = None,
    optimizer_model: str | None = None,
    task_model: str | None = None,
    resume: str | None = None,
    dry_run: bool = False,
    min_gain: float | None = None,
    alpha: float = ALPHA,
    allow_insignificant: bool = False,
    reporter: Reporter | None = None,
    plot_link: str | None = None,
) -> Result:
    """Run an optimization (or resume one) and, unless ``dry_run``, commit its winner on a branch.

    A branch needs a held-out gain: above 0, at least ``min_gain``, and significant at ``alpha``
    by the paired test ``compare`` uses, unless ``allow_insignificant``.
    """
    registry = Registry(project)
    repo = registry.repo
    if resume:
        with Store(project.path(project.config.db)) as store:
            record = store.optimization(resume)
        if record is None:
            raise NotFoundError(f"no optimization '{resume}' in {project.config.db}")
        stored = Settings.from_json(record["settings"])
        known = methods.get(stored.method).Config.model_fields  # a flat record from before may carry others'
        stored = replace(stored, config={k: v for k, v in stored.config.items() if k in known})
        if settings is not None:  # only the length and budget of the search may change on resume
            steps = settings.steps if settings.steps > 0 else stored.steps
            stored = replace(stored, steps=steps, budget=settings.budget or stored.budget)
        settings, name, suite, base = stored, record["prompt"], record["suite"], record["base_commit"]
        opt_id: str | None = record["id"]
    else:
        if name is None or suite is None or settings is None:
            raise InputError("give a prompt NAME and --suite, or --resume ID")
        base = repo.resolve("HEAD")
        opt_id = None
    assert name is not None and suite is not None and settings is not None
    probe = None
    if settings.method == "auto":
        if resume:
            raise InputError("auto is not resumed: resume the optimization it ran, by that one's id")
        task = resolve_task(project, name, suite, base, task_model)
        settings, probe = _auto(project, task, replace(settings, task_model=task_model), optimizer_model, reporter)
    chained = "+" in settings.method
    if chained and resume:
        raise InputError("a chain is not resumed as one: resume its last link's optimization, by its own id")
    method = None if chained else methods.get(settings.method)
    if not chained:
        settings = replace(settings, config=methods.configure(settings.method, settings.config))
    task = resolve_task(project, name, suite, base, settings.task_model if resume else task_model)
    if isinstance(task.prompt, Pipeline):
        _check_pipeline_method(settings.method)
    hardware = {k: v for k, v in (("device", settings.device), ("dtype", settings.dtype)) if v}
    if hardware:
        task = replace(task, settings=task.settings.model_copy(update={"params": {**task.settings.params, **hardware}}))
    if not resume:
        settings = replace(settings, task_model=task_model, optimizer_model=optimizer_model)
        if settings.steps <= 0 and method is not None:
            from .split import split_cases

            n_train = len(split_cases(task.cases, settings.split, settings.seed).train)
            settings = replace(settings, steps=method.default_steps(n_train))
    optimizer = _optimizer_settings(settings.optimizer_model, task.settings)
    if method is None:
        from .chain import run_chain

        outcome = run_chain(project, task, settings, optimizer, base_commit=base, reporter=reporter)
    elif isinstance(task.prompt, Pipeline):
        outcome = _pipeline(project, task, settings, optimizer, method, base=base, reporter=reporter, resume=opt_id)
    else:
        ctx = start(project, task, settings, optimizer, base_commit=base, opt_id=opt_id, reporter=reporter)
        outcome = run(ctx, method)
    if probe is not None:  # the probe's calls are the optimization's too
        usage = replace(outcome.usage, calls=outcome.usage.calls + probe.calls)
        outcome = replace(outcome, probe=probe.table(), usage=usage)
    stats = held_out(outcome, task.suite.case_threshold, alpha)
    with Store(project.path(project.config.db)) as store:
        store.update_optimization(outcome.id, p_value=stats.result.p_value)
    message = commit_message(outcome, stats)
    branch = commit = None
    reason = refusal(
        outcome.changed,
        outcome.status,
        stats,
        min_gain=min_gain,
        allow_insignificant=allow_insignificant,
        held_back=outcome.held_back,
    )
    if reason is None and dry_run:
        reason = "dry run"
    elif reason is None:
        branch = branch_name(outcome)
        changes = outcome.files or [(outcome.path, outcome.source_before, outcome.source_after)]
        files = {registry.git_path(path): after.encode() for path, _, after in changes}
        commit = repo.commit_files_on_new_branch(branch, files, message, base=base)
        reason = ""
        with Store(project.path(project.config.db)) as store:
            store.update_optimization(outcome.id, branch=branch, branch_commit=commit)
    body = pr_body(outcome, stats, plot=plot_link, branch=branch is not None)
    return Result(outcome, stats, body, message, branch, commit, reason)


PIPELINE_METHODS = ("gpo", "opro", "textgrad", "gepa")


def _auto(
    project: Project, task: Task, settings: Settings, optimizer_model: str | None, reporter: Reporter | None
) -> tuple[Settings, Probe]:
    """The settings of the method ``auto`` chose, its budget less the probe's calls; :class:`Unmoved`
    when neither lever moved the model."""
    from .auto import Unmoved, choose

    if isinstance(task.prompt, Pipeline):
        raise InputError("auto probes one prompt: choose a method for a pipeline", hint="--method gpo")
    if settings.config:
        raise InputError("--set needs a method: auto chooses its own, on their defaults")
    probe = choose(project, task, settings, _optimizer_settings(optimizer_model, task.settings), reporter)
    if probe.pick is None:
        raise Unmoved(probe)
    if reporter:
        reporter.phase(f"auto: {probe.line()}")
    budget = dict(settings.budget)
    if "calls" in budget:
        budget["calls"] = max(budget["calls"] - probe.calls, 1.0)
    config: dict[str, Any] = {link: {} for link in probe.pick.split("+")} if "+" in probe.pick else {}
    return replace(settings, method=probe.pick, budget=budget, config=config), probe


def _check_pipeline_method(method: str) -> None:
    if method not in PIPELINE_METHODS:
        raise InputError(
            f"method '{method}' does not optimize a pipeline",
            hint=f"use one of: {', '.join(PIPELINE_METHODS)}; or optimize a step's prompt on a suite of its own",
        )


def _pipeline(
    project: Project,
    task: Task,
    settings: Settings,
    optimizer: ModelSettings,
    method: type[Method[Any]],
    *,
    base: str,
    reporter: Reporter | None,
    resume: str | None = None,
) -> Outcome:
    """A pipeline optimized as one system, one step's instruction at a time (:mod:`.pipeline`)."""
    from .pipeline import PipelineSearch

    search = PipelineSearch(project, task, settings, optimizer, base_commit=base, reporter=reporter, resume=resume)
    return search.run(method)


def refusal(
    changed: bool,
    status: str,
    stats: HeldOut,
    *,
    min_gain: float | None = None,
    allow_insignificant: bool = False,
    held_back: str = "",
) -> str | None:
    """Why an outcome makes no branch, or None when its held-out gain earns one."""
    r = stats.result
    if held_back:
        return f"the search's choice was not taken: {held_back}"
    if not changed:
        if status == "budget":
            return "the budget ran out before any candidate beat the initial instruction on dev"
        return "no candidate beat the initial instruction on dev"
    if r.delta <= 0:
        return f"the held-out score did not rise ({r.delta:+.3f})"
    if min_gain is not None and r.delta < min_gain:
        return f"the held-out gain {r.delta:+.3f} is below the minimum {min_gain:g}"
    if not stats.significant and not allow_insignificant:
        return f"no significant gain (p = {r.p_value:.3g}, α = {stats.alpha:g})"
    return None


def _optimizer_settings(option: str | None, task_settings: ModelSettings | None) -> ModelSettings:
    """``--optimizer-model``, else the task model's own settings (one loaded model serves both)."""
    if option:
        return ModelSettings(**parse_model_option(option))  # type: ignore[arg-type]
    if task_settings is None:
        return ModelSettings()
    return task_settings

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ExitCode, InputError
from .estimate_table import before_optimizing
from .optimize_options import OptimizeCommand, optimize_options
from .optimize_report import report, report_pass, unmoved
from .options import State, format_option, pass_state
from .progress import OptimizeProgress

if TYPE_CHECKING:
    from ..optimize.passes import Passes


@click.command(cls=OptimizeCommand)
@optimize_options
@format_option("markdown", "json")
@pass_state
def optimize(
    state: State,
    name: str | None,
    suite: str | None,
    method: str,
    sets: tuple[str, ...],
    target: str | None,
    optimizer_model: str | None,
    task_model: str | None,
    steps: int | None,
    candidates: int,
    budgets: tuple[str, ...],
    split: str,
    seed: int,
    position: str | None,
    credit: str,
    device: str | None,
    dtype: str | None,
    resume: str | None,
    dry_run: bool,
    min_gain: float | None,
    alpha: float | None,
    allow_insignificant: bool,
    changed: bool,
    base: str | None,
    due: bool,
    today: str | None,
    everything: bool,
    plan: bool,
    push: bool,
    remote: str,
    pr_base: str | None,
    output: Path | None,
    estimate_only: bool,
    max_calls: int | None,
    max_cost: float | None,
    fmt: str,
) -> int:
    """Search for a better instruction (OPRO, GPO, GReaTer, TextGrad) or few-shot demonstrations (demos)
    for prompt NAME on an eval suite, or use any installed method (--list-methods).

    --method auto first probes a slice of dev (a tenth of a call budget) to see whether the model's
    answers move with the instruction or with demonstrations, then runs demos, gpo, gpo+demos or
    nothing. A+B chains methods: each starts from the one before's choice, under one budget.

    NAME may be a pipeline: with gpo, opro, textgrad or gepa, one step's instruction changes at
    a time (the step blamed for failing train cases, or each in turn with --credit round-robin),
    every candidate scored end to end, and the winner may change several prompt files.

    The suite's cases are split (seeded) into train, dev and test. The optimizer sees
    train and dev only; test scores the initial and the chosen instruction once, with
    a paired significance test. The winner is committed on a new branch
    promptci/optimize/NAME/METHOD-ID made from HEAD plus the new prompt file, so a
    dirty working tree is fine and is never touched. The PR body (trajectory, plot,
    held-out before/after, prompt diff) goes to stdout. Every candidate is stored in
    the results database; an interrupted run continues with --resume ID.

    Prompts opt in to passes in CI with an optimize: block (suite, method, options,
    budget, models, schedule, min_gain) in their file or in promptci.yaml. Then NAME
    alone, --changed, --due or --all runs those passes, and --push publishes each winner
    as one PR per prompt. Exit codes: 4 when a winner could not be pushed or its PR not
    opened (no token, API unreachable: the branch stays local), 5 when a human has
    pushed to the PR branch (nothing is overwritten).
    """
    from ..optimize.chain import link_options
    from ..optimize.methods import parse_sets
    from ..optimize.session import optimize as run_optimization
    from ..optimize.settings import Settings
    from ..settings import parse_fractions
    from .eval_args import budget_values

    budget = budget_values(budgets, ("calls", "tokens", "cost", "seconds"))
    if target is not None:
        if "gepa" not in method.split("+"):
            raise InputError(f"--target {target} is GEPA's: use it with --method gepa")
        sets = (*sets, f"gepa.target={target}")
    selecting = changed or due or everything or plan or push or (name is not None and suite is None and not resume)
    if selecting and not resume:
        overrides = {"steps": steps, "budget": budget or None, "device": device, "dtype": dtype}
        from ..optimize.passes import Passes

        passes = Passes(changed, base, due, today, everything, plan, push, remote, pr_base)
        return _configured_passes(
            state, name, passes, sets=sets, dry_run=dry_run, task_model=task_model, optimizer_model=optimizer_model,
            overrides=overrides, fmt=fmt, gate=(alpha, allow_insignificant),
        )  # fmt: skip
    if not resume and not (name and suite):
        raise InputError("give a prompt NAME and --suite SUITE, or --resume ID")
    if output is not None and output.suffix != ".md":
        raise InputError(f"-o {output}: the PR body is markdown; name the file *.md")
    if method == "auto" and sets:
        raise InputError("--set needs a method: auto chooses its own, on their defaults")
    options = link_options(method, sets) if "+" in method else parse_sets(method, sets) if sets else {}
    settings = Settings(
        method=method, steps=steps or 0, candidates=candidates, split=parse_fractions(split), seed=seed,
        position=position, budget=budget, device=device, dtype=dtype, config=options,
        credit=credit,
    )  # fmt: skip
    if not resume and before_optimizing(
        state, name, suite, settings, task_model, estimate_only, (max_calls, max_cost), fmt
    ):  # fmt: skip
        return int(ExitCode.OK)
    plot = output.with_suffix(".svg") if output else None
    with OptimizeProgress(method, settings.budget) as progress, unmoved():
        result = run_optimization(
            state.project, name, suite=suite, settings=settings, optimizer_model=optimizer_model,
            task_model=task_model, resume=resume, dry_run=dry_run, min_gain=min_gain, alpha=alpha or 0.05,
            allow_insignificant=allow_insignificant, reporter=progress, plot_link=plot.name if plot else None,
        )  # fmt: skip
    report(result, fmt, output, plot)
    return int(ExitCode.OK)


def _configured_passes(
    state: State,
    name: str | None,
    passes: Passes,
    *,
    sets: tuple[str, ...],
    dry_run: bool,
    task_model: str | None,
    optimizer_model: str | None,
    overrides: dict[str, Any],
    fmt: str,
    gate: tuple[float | None, bool],
) -> int:
    """The passes of opted-in prompts: select, run, and with --push publish; then the job summary."""
    import json

    from ..optimize.passes import prepare, run_passes, summary

    chosen, notes, target, options, env = prepare(state.project, name, passes, sets, state.registry.repo.branch)
    for note in notes:
        click.echo(note, err=True)
    if passes.plan:
        click.echo(json.dumps([c.optin.name for c in chosen]))
        for c in chosen:
            click.echo(f"{c.optin.name}: {c.why}", err=True)
        return int(ExitCode.OK)
    for c in chosen:
        click.echo(f"{c.optin.name}: {c.why}", err=True)
    entries, worst = run_passes(
        state.project, chosen, env=env, push=passes.push, target=target or "", remote=passes.remote, options=options,
        overrides=overrides, task_model=task_model, optimizer_model=optimizer_model, dry_run=dry_run,
        alpha=gate[0], allow_insignificant=gate[1],
        reporter_for=lambda settings: OptimizeProgress(settings.method, settings.budget),
        on_done=lambda entry: report_pass(entry, fmt),
        on_skip=lambda prompt, why: click.echo(f"{prompt}: {why}", err=True),
    )  # fmt: skip
    if fmt == "json":
        from ..optimize.jsonout import entry_dict

        click.echo(json.dumps([entry_dict(e) for e in entries], indent=2))
    if env.step_summary:
        from ..redact import append_summary

        append_summary(env.step_summary, summary(entries))
    if not chosen:
        click.echo("no opted-in prompt selected: nothing to optimize", err=True)
    return int(worst)

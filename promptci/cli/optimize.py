from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import ExitCode, InputError
from .options import State, format_option, pass_state


@click.command()
@click.argument("name", required=False)
@click.option("--suite", metavar="SUITE", help="The eval suite to optimize on (a name under evals/, or a path).")
@click.option("--method", type=click.Choice(["opro", "gpo", "greater", "catalyst"]), default="gpo", show_default=True)
@click.option(
    "--optimizer-model", metavar="[PROVIDER:]MODEL", help="Model proposing instructions (default: the task model)."
)
@click.option("--task-model", metavar="[PROVIDER:]MODEL", help="Model answering the cases (default: the suite's).")
@click.option(
    "--steps", type=click.IntRange(min=1), help="Search steps (default: GPO 3 epochs of 8-case batches; OPRO 10)."
)
@click.option("--candidates", type=click.IntRange(min=1), default=8, show_default=True, help="Candidates per step.")
@click.option(
    "--budget",
    "budgets",
    multiple=True,
    metavar="calls=N|tokens=N|cost=X|seconds=N",
    help="Stop the search cleanly at this limit on new model calls or wall-clock time; repeatable.",
)
@click.option("--split", "split", default="0.2/0.2/0.6", show_default=True, help="Train/dev/test fractions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split, exemplars and sampling.")
@click.option(
    "--position",
    type=click.Choice(["system", "before", "after"]),
    help="Where the instruction sits: the system message, or a line before/after the question"
    " (default: system when the prompt has one).",
)
@click.option(
    "--examples", type=click.IntRange(min=1), default=8, show_default=True, help="GReaTer: train cases per step."
)
@click.option(
    "--reasoning-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="GReaTer: reasoning length."
)
@click.option(
    "--topk", type=click.IntRange(min=1), default=40, show_default=True, help="GReaTer: top-k candidate tokens."
)
@click.option(
    "--grad-batch",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="GReaTer: examples per forward/backward pass (raise it on a GPU, lower it to save memory).",
)
@click.option(
    "--checkpointing",
    is_flag=True,
    help="GReaTer: gradient checkpointing; recompute activations in the backward pass to save memory.",
)
@click.option(
    "--extractor", metavar="TEXT", help="GReaTer: the answer-extractor phrase (default: by the suite's scorer)."
)
@click.option(
    "--catalyst-block",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="catalyst: every Nth step is an optimizer-model proposal used as a restart.",
)
@click.option("--device", metavar="cpu|cuda|…", help="Local task model's device (default: cuda if present).")
@click.option("--dtype", metavar="auto|float32|bfloat16|float16", help="Local task model's dtype.")
@click.option("--resume", metavar="ID", help="Continue a stopped optimization from its stored trajectory.")
@click.option("--dry-run", is_flag=True, help="Do everything but create the branch.")
@click.option(
    "--min-gain", type=float, metavar="X", help="Create the branch only if the held-out score rose, by at least X."
)
@click.option("--changed", is_flag=True, help="Optimize the opted-in prompts that changed since --base.")
@click.option("--base", metavar="REF", help="Base for --changed (default: merge-base with the default branch).")
@click.option("--due", is_flag=True, help="Optimize the opted-in prompts whose schedule is due today (UTC).")
@click.option("--today", metavar="YYYY-MM-DD", hidden=True, help="The date --due checks (default: today, UTC).")
@click.option("--all", "everything", is_flag=True, help="Optimize every opted-in prompt.")
@click.option("--plan", is_flag=True, help="Print the selected prompts as a JSON list, and run nothing.")
@click.option(
    "--push",
    is_flag=True,
    help="Push each winner to promptci/optimize/NAME/TARGET and open or update its one PR (GITHUB_TOKEN).",
)
@click.option("--remote", default="origin", show_default=True, help="The remote --push pushes to.")
@click.option(
    "--pr-base",
    metavar="BRANCH",
    help="The PR's target branch (default: $GITHUB_HEAD_REF, else $GITHUB_REF_NAME, else the current branch).",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the PR body to FILE.md, and the plot beside it as FILE.svg.",
)
@format_option("markdown", "json")
@pass_state
def optimize(
    state: State,
    name: str | None,
    suite: str | None,
    method: str,
    optimizer_model: str | None,
    task_model: str | None,
    steps: int | None,
    candidates: int,
    budgets: tuple[str, ...],
    split: str,
    seed: int,
    position: str | None,
    examples: int,
    reasoning_tokens: int,
    topk: int,
    grad_batch: int,
    checkpointing: bool,
    extractor: str | None,
    catalyst_block: int,
    device: str | None,
    dtype: str | None,
    resume: str | None,
    dry_run: bool,
    min_gain: float | None,
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
    fmt: str,
) -> int:
    """Search for a better instruction for prompt NAME on an eval suite, with OPRO, GPO or GReaTer.

    The suite's cases are split (seeded) into train, dev and test. The optimizer sees
    train and dev only; test scores the initial and the chosen instruction once, with
    a paired significance test. The winner is committed on a new branch
    promptci/optimize/NAME/METHOD-ID made from HEAD plus the new prompt file, so a
    dirty working tree is fine and is never touched. The PR body (trajectory, plot,
    held-out before/after, prompt diff) goes to stdout. Every candidate is stored in
    the results database; an interrupted run continues with --resume ID.

    Prompts opt in to passes in CI with an optimize: block (suite, method, budget,
    models, schedule, min_gain) in their file or in promptci.yaml. Then NAME alone,
    --changed, --due or --all runs those passes, and --push publishes each winner as
    one PR per prompt. Exit codes: 4 when a winner could not be pushed or its PR not
    opened (no token, API unreachable: the branch stays local), 5 when a human has
    pushed to the PR branch (nothing is overwritten).
    """
    from ..optimize.engine import Settings
    from ..optimize.output import svg_plot
    from ..optimize.session import optimize as run_optimization
    from ..optimize.split import parse_fractions
    from .eval import budget_values
    from .progress import OptimizeProgress

    selecting = changed or due or everything or plan or push or (name is not None and suite is None and not resume)
    if selecting and not resume:
        overrides = {
            "steps": steps,
            "budget": budget_values(budgets, ("calls", "tokens", "cost", "seconds")) or None,
            "greater_examples": _given("examples", examples),
            "greater_reasoning_tokens": _given("reasoning_tokens", reasoning_tokens),
            "greater_topk": _given("topk", topk),
            "greater_batch": _given("grad_batch", grad_batch),
            "greater_checkpointing": checkpointing or None,
            "device": device,
            "dtype": dtype,
        }
        passes = Passes(changed, base, due, today, everything, plan, push, remote, pr_base)
        return _configured_passes(
            state, name, passes, dry_run=dry_run, task_model=task_model, optimizer_model=optimizer_model,
            overrides=overrides, fmt=fmt,
        )  # fmt: skip
    if not resume and not (name and suite):
        raise InputError("give a prompt NAME and --suite SUITE, or --resume ID")
    if output is not None and output.suffix != ".md":
        raise InputError(f"-o {output}: the PR body is markdown; name the file *.md")
    settings = Settings(
        method=method,
        steps=steps or 0,
        candidates=candidates,
        split=parse_fractions(split),
        seed=seed,
        position=position,
        budget=budget_values(budgets, ("calls", "tokens", "cost", "seconds")),
        greater_examples=examples,
        greater_reasoning_tokens=reasoning_tokens,
        greater_topk=topk,
        greater_batch=grad_batch,
        greater_checkpointing=checkpointing,
        extractor=extractor,
        catalyst_block=catalyst_block,
        device=device,
        dtype=dtype,
    )
    project = state.project
    plot = output.with_suffix(".svg") if output else None
    with OptimizeProgress(method, settings.budget) as progress:
        result = run_optimization(
            project,
            name,
            suite=suite,
            settings=settings,
            optimizer_model=optimizer_model,
            task_model=task_model,
            resume=resume,
            dry_run=dry_run,
            min_gain=min_gain,
            reporter=progress,
            plot_link=plot.name if plot else None,
        )
    outcome = result.outcome
    if output is not None and plot is not None:
        from ..redact import write

        write(output, result.body)
        write(plot, svg_plot(outcome))
        click.echo(f"wrote {output} and {plot}", err=True)
    if fmt == "json":
        import json

        click.echo(json.dumps(_result_dict(result), indent=2))
    else:
        click.echo(result.body)
    if result.branch:
        click.echo(f"created branch {result.branch} ({result.commit[:10] if result.commit else ''})", err=True)
    else:
        click.echo(f"no branch: {result.reason} (optimization {outcome.id})", err=True)
    return int(ExitCode.OK)


def _result_dict(result: Any) -> dict[str, Any]:
    outcome, r = result.outcome, result.stats.result
    return {
        "id": outcome.id,
        "status": outcome.status,
        "method": outcome.method,
        "prompt": outcome.prompt,
        "suite": outcome.suite,
        "initial": outcome.initial.text,
        "best": outcome.best.text,
        "test": {
            "n": r.n,
            "before": r.base_mean,
            "after": r.head_mean,
            "delta": r.delta,
            "ci": [r.ci_low, r.ci_high],
            "p_value": r.p_value,
            "test": r.test,
        },
        "calls": outcome.usage.calls,
        "tokens": outcome.usage.tokens,
        "cost": outcome.usage.cost,
        "wall_s": round(outcome.wall_s, 2),
        "branch": result.branch,
        "commit": result.commit,
        "reason": result.reason or None,
    }


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


def _given(param: str, value: object) -> object:
    """``value`` if the option was given on the command line, else None (the config decides)."""
    source = click.get_current_context().get_parameter_source(param)
    return value if source == click.core.ParameterSource.COMMANDLINE else None


def _configured_passes(
    state: State,
    name: str | None,
    passes: Passes,
    *,
    dry_run: bool,
    task_model: str | None,
    optimizer_model: str | None,
    overrides: dict[str, object],
    fmt: str,
) -> int:
    """The passes of opted-in prompts: select, run, and with --push publish; then the job summary."""
    import datetime as dt
    import json

    from ..optimize.ci import publish, run_pass, select, settings_for, summary
    from .progress import OptimizeProgress

    if not (name or passes.changed or passes.due or passes.everything):
        raise InputError("say which opted-in prompts to optimize: NAME, --changed, --due or --all")
    day = None
    if passes.due:
        try:
            day = dt.date.fromisoformat(passes.today) if passes.today else dt.datetime.now(dt.timezone.utc).date()
        except ValueError:
            raise InputError(f"bad --today '{passes.today}'", hint="write YYYY-MM-DD") from None
    project = state.project
    chosen, notes = select(
        project,
        names=(name,) if name else (),
        changed=passes.changed,
        base=passes.base,
        due=day,
        everything=passes.everything,
    )
    for note in notes:
        click.echo(note, err=True)
    if passes.plan:
        click.echo(json.dumps([c.optin.name for c in chosen]))
        for c in chosen:
            click.echo(f"{c.optin.name}: {c.why}", err=True)
        return int(ExitCode.OK)
    from ..github import ActionsEnv

    env = ActionsEnv.read()
    target = passes.pr_base or env.head_ref or env.ref_name or state.registry.repo.branch()
    if passes.push and not target:
        raise InputError("--push needs the PR's target branch", hint="pass --pr-base BRANCH (HEAD is detached)")
    entries = []
    worst = ExitCode.OK
    for c in chosen:
        click.echo(f"{c.optin.name}: {c.why}", err=True)
        settings = settings_for(c.optin.spec, **overrides)
        with OptimizeProgress(settings.method, settings.budget) as progress:
            result = run_pass(
                project, c.optin, settings=settings, task_model=task_model, optimizer_model=optimizer_model,
                dry_run=dry_run, reporter=progress,
            )  # fmt: skip
        publication = None
        if passes.push and result.branch:
            publication = publish(
                project,
                result,
                target=target or "",
                remote=passes.remote,
                token=env.token,
                repo_slug=env.repository,
                api=env.api,
            )
            if publication.status == "conflict":
                worst = ExitCode.BRANCH_CONFLICT
            elif publication.status == "failed" and worst != ExitCode.BRANCH_CONFLICT:
                worst = ExitCode.PUBLISH_FAILED
        entries.append((c.optin.name, result, publication, c.why))
        _report_pass(result, publication, fmt)
    if fmt == "json":
        listed = []
        for _, result, publication, why in entries:
            entry = {**_result_dict(result), "why": why}
            if publication is not None:
                pr = publication.pr
                entry["publication"] = {
                    "status": publication.status,
                    "branch": publication.branch,
                    "pushed": publication.pushed,
                    "pr": pr.number if pr else None,
                    "url": pr.url if pr else None,
                    "reason": publication.reason or (pr.reason if pr else None),
                }
            listed.append(entry)
        click.echo(json.dumps(listed, indent=2))
    text = summary(entries)
    if env.step_summary:
        from ..redact import append_summary

        append_summary(env.step_summary, text)
    if not chosen:
        click.echo("no opted-in prompt selected: nothing to optimize", err=True)
    return int(worst)


def _report_pass(result: object, publication: object, fmt: str) -> None:
    from ..optimize.ci import Publication
    from ..optimize.session import Result

    assert isinstance(result, Result)
    outcome = result.outcome
    if fmt == "markdown":
        click.echo(result.body)
    if publication is None:
        where = f"created branch {result.branch}" if result.branch else f"no branch: {result.reason}"
        click.echo(f"{outcome.prompt}: {where} (optimization {outcome.id})", err=True)
        return
    assert isinstance(publication, Publication)
    if publication.ok and publication.pr is not None:
        pushed = "pushed" if publication.pushed else "already up to date"
        click.echo(
            f"{outcome.prompt}: {publication.branch} {pushed}; PR #{publication.pr.number} {publication.status}:"
            f" {publication.pr.url or ''}",
            err=True,
        )
    else:
        click.echo(f"::warning title=promptci optimize::{outcome.prompt}: {publication.reason}", err=True)

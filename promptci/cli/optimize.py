from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ExitCode, InputError
from .options import State, format_option, pass_state
from .progress import OptimizeProgress

if TYPE_CHECKING:
    from ..optimize.passes import PassEntry


# Method options that were flags before methods had their own options, and their new spelling.
RENAMED = {
    "--examples": "greater.examples=N",
    "--reasoning-tokens": "greater.reasoning_tokens=N",
    "--topk": "greater.topk=N",
    "--grad-batch": "greater.batch=N",
    "--checkpointing": "greater.checkpointing=true",
    "--extractor": "greater.extractor=TEXT",
    "--catalyst-block": "catalyst.block=N",
}


class _Command(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if exc.option_name in RENAMED:
                new = RENAMED[exc.option_name]
                method = new.split(".")[0]
                raise click.UsageError(
                    f"{exc.option_name} is now a method option: --set {new} (with catalyst: --set {method}"
                    f"{new[len(method) :]} becomes catalyst{new[len(method) :]})"
                    if method == "greater"
                    else f"{exc.option_name} is now a method option: --set {new}",
                    ctx,
                ) from None
            raise


class _MethodName(click.ParamType):  # type: ignore[type-arg]
    """A registered method's name; the names are read only when help is shown or a value checked."""

    name = "method"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        from ..optimize.methods import names

        return "[" + "|".join(names()) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..optimize.methods import names

        if value not in names():
            self.fail(f"unknown method '{value}': one of {', '.join(names())}", param, ctx)
        return str(value)


def _list_methods(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from ..optimize.methods import describe, loadable

    found, broken = loadable()
    click.echo("\n\n".join(describe(name) for name in found))
    for problem in broken:
        click.echo(f"warning: {problem}", err=True)
    ctx.exit(0)


@click.command(cls=_Command)
@click.argument("name", required=False)
@click.option("--suite", metavar="SUITE", help="The eval suite to optimize on (a name under evals/, or a path).")
@click.option("--method", type=_MethodName(), default="gpo", show_default=True, help="The optimizer method.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="METHOD.KNOB=VALUE",
    help="One of the method's own options, e.g. greater.topk=40; repeatable. --list-methods lists them.",
)
@click.option(
    "--target",
    type=click.Choice(["instruction", "tool-descriptions", "both"]),
    help="With --method gepa: rewrite the instruction (default), the prompt's tool descriptions, or both.",
)
@click.option(
    "--list-methods",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_methods,
    help="List the methods, built-in and installed, with their options and defaults, and exit.",
)
@click.option(
    "--optimizer-model", metavar="[PROVIDER:]MODEL", help="Model proposing instructions (default: the task model)."
)
@click.option("--task-model", metavar="[PROVIDER:]MODEL", help="Model answering the cases (default: the suite's).")
@click.option("--steps", type=click.IntRange(min=1), help="Search steps (default: the method's; see --list-methods).")
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
    "--credit",
    type=click.Choice(["blame", "round-robin"]),
    default="blame",
    show_default=True,
    help="For a pipeline: change the step the optimizer model blames for failing cases, or each step in turn.",
)
@click.option("--device", metavar="cpu|cuda|…", help="Local task model's device (default: cuda if present).")
@click.option("--dtype", metavar="auto|float32|bfloat16|float16", help="Local task model's dtype.")
@click.option("--resume", metavar="ID", help="Continue a stopped optimization from its stored trajectory.")
@click.option("--dry-run", is_flag=True, help="Do everything but create the branch.")
@click.option(
    "--min-gain", type=float, metavar="X", help="Create the branch only if the held-out score rose, by at least X."
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Create the branch only if the held-out gain is significant at this level [default: 0.05, or the block's].",
)
@click.option(
    "--allow-insignificant", is_flag=True, help="Create the branch for a gain that is not significant, and say so."
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
    fmt: str,
) -> int:
    """Search for a better instruction (OPRO, GPO, GReaTer, TextGrad) or few-shot demonstrations (demos)
    for prompt NAME on an eval suite, or use any installed method (--list-methods).

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
    from ..optimize.methods import parse_sets
    from ..optimize.session import optimize as run_optimization
    from ..optimize.settings import Settings
    from ..settings import parse_fractions
    from .eval import budget_values

    budget = budget_values(budgets, ("calls", "tokens", "cost", "seconds"))
    if target is not None:
        if method != "gepa":
            raise InputError(f"--target {target} is GEPA's: use it with --method gepa")
        sets = (*sets, f"gepa.target={target}")
    selecting = changed or due or everything or plan or push or (name is not None and suite is None and not resume)
    if selecting and not resume:
        overrides = {"steps": steps, "budget": budget or None, "device": device, "dtype": dtype}
        passes = Passes(changed, base, due, today, everything, plan, push, remote, pr_base)
        return _configured_passes(
            state, name, passes, sets=sets, dry_run=dry_run, task_model=task_model, optimizer_model=optimizer_model,
            overrides=overrides, fmt=fmt, gate=(alpha, allow_insignificant),
        )  # fmt: skip
    if not resume and not (name and suite):
        raise InputError("give a prompt NAME and --suite SUITE, or --resume ID")
    if output is not None and output.suffix != ".md":
        raise InputError(f"-o {output}: the PR body is markdown; name the file *.md")
    settings = Settings(
        method=method, steps=steps or 0, candidates=candidates, split=parse_fractions(split), seed=seed,
        position=position, budget=budget, device=device, dtype=dtype, config=parse_sets(method, sets),
        credit=credit,
    )  # fmt: skip
    plot = output.with_suffix(".svg") if output else None
    with OptimizeProgress(method, settings.budget) as progress:
        result = run_optimization(
            state.project, name, suite=suite, settings=settings, optimizer_model=optimizer_model,
            task_model=task_model, resume=resume, dry_run=dry_run, min_gain=min_gain, alpha=alpha or 0.05,
            allow_insignificant=allow_insignificant, reporter=progress, plot_link=plot.name if plot else None,
        )  # fmt: skip
    _report(result, fmt, output, plot)
    return int(ExitCode.OK)


def _report(result: Any, fmt: str, output: Path | None, plot: Path | None) -> None:
    """One optimization's PR body (or JSON) on stdout, the files asked for, and what became of it."""
    from ..optimize.output import svg_plot

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
    import datetime as dt
    import json

    from ..github import ActionsEnv
    from ..optimize.choose import select
    from ..optimize.methods import parse_sets
    from ..optimize.passes import run_passes, summary

    if not (name or passes.changed or passes.due or passes.everything):
        raise InputError("say which opted-in prompts to optimize: NAME, --changed, --due or --all")
    day = None
    if passes.due:
        try:
            day = dt.date.fromisoformat(passes.today) if passes.today else dt.datetime.now(dt.timezone.utc).date()
        except ValueError:
            raise InputError(f"bad --today '{passes.today}'", hint="write YYYY-MM-DD") from None
    project = state.project
    names = (name,) if name else ()
    chosen, notes = select(
        project, names=names, changed=passes.changed, base=passes.base, due=day, everything=passes.everything
    )
    for note in notes:
        click.echo(note, err=True)
    if passes.plan:
        click.echo(json.dumps([c.optin.name for c in chosen]))
        for c in chosen:
            click.echo(f"{c.optin.name}: {c.why}", err=True)
        return int(ExitCode.OK)
    env = ActionsEnv.read()
    target = passes.pr_base or env.head_ref or env.ref_name or state.registry.repo.branch()
    if passes.push and not target:
        raise InputError("--push needs the PR's target branch", hint="pass --pr-base BRANCH (HEAD is detached)")
    options: dict[str, Any] = {}
    if sets:
        used = {c.optin.spec.method for c in chosen}
        if len(used) != 1:
            raise InputError("--set applies to one method, but the selected prompts use several", hint="select by NAME")
        options = parse_sets(used.pop(), sets)
    for c in chosen:
        click.echo(f"{c.optin.name}: {c.why}", err=True)
    entries, worst = run_passes(
        project, chosen, env=env, push=passes.push, target=target or "", remote=passes.remote, options=options,
        overrides=overrides, task_model=task_model, optimizer_model=optimizer_model, dry_run=dry_run,
        alpha=gate[0], allow_insignificant=gate[1],
        reporter_for=lambda settings: OptimizeProgress(settings.method, settings.budget),
        on_done=lambda entry: _report_pass(entry, fmt),
    )  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps([_entry_dict(e) for e in entries], indent=2))
    if env.step_summary:
        from ..redact import append_summary

        append_summary(env.step_summary, summary(entries))
    if not chosen:
        click.echo("no opted-in prompt selected: nothing to optimize", err=True)
    return int(worst)


def _entry_dict(entry: PassEntry) -> dict[str, Any]:
    found = {**_result_dict(entry.result), "why": entry.why}
    publication = entry.publication
    if publication is not None:
        pr = publication.pr
        found["publication"] = {
            "status": publication.status,
            "branch": publication.branch,
            "pushed": publication.pushed,
            "pr": pr.number if pr else None,
            "url": pr.url if pr else None,
            "reason": publication.reason or (pr.reason if pr else None),
        }
    return found


def _report_pass(entry: PassEntry, fmt: str) -> None:
    result, publication = entry.result, entry.publication
    outcome = result.outcome
    if fmt == "markdown":
        click.echo(result.body)
    if publication is None:
        where = f"created branch {result.branch}" if result.branch else f"no branch: {result.reason}"
        click.echo(f"{outcome.prompt}: {where} (optimization {outcome.id})", err=True)
        return
    if publication.ok and publication.pr is not None:
        pushed = "pushed" if publication.pushed else "already up to date"
        click.echo(
            f"{outcome.prompt}: {publication.branch} {pushed}; PR #{publication.pr.number} {publication.status}:"
            f" {publication.pr.url or ''}",
            err=True,
        )
    else:
        click.echo(f"::warning title=promptci optimize::{outcome.prompt}: {publication.reason}", err=True)

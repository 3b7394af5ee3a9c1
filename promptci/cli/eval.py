from __future__ import annotations

from pathlib import Path

import click

from ..errors import ExitCode, InputError
from .eval_args import budget_values, executor_pool, git_info, resume_batches, shard_option
from .options import State, format_option, output_option, pass_state
from .output import emit_json


@click.command(name="eval")
@click.argument("suites", nargs=-1)
@click.option("--prompt", "prompts", multiple=True, metavar="NAME", help="Only suites × this prompt; repeatable.")
@click.option("--changed", is_flag=True, help="Only suites whose prompts, datasets or files changed since --base.")
@click.option("--all", "every", is_flag=True, help="Also the suites marked `default: false`.")
@click.option("--base", metavar="REF", help="Base for --changed (default: merge-base with the default branch).")
@click.option("--repeat", type=click.IntRange(1, 1_000), help="Repeats per case, overriding the suites'.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Requests in flight for API providers.")
@click.option("--model", metavar="[PROVIDER:]MODEL", help="Run every suite on this model instead.")
@output_option(".json, .jsonl, .csv or .xml JUnit")
@click.option("--filter", "pattern", metavar="REGEX", help="Only cases whose name or id matches.")
@click.option(
    "--sample", type=click.IntRange(min=1), help="A seeded random N cases of each suite (the same N every run)."
)
@click.option("--head", type=click.IntRange(min=1), help="Only the first N cases of each suite.")
@click.option("--shard", metavar="I/N", help="Only shard I of N (by case id), for CI matrices.")
@format_option()
@click.option(
    "--budget",
    "budgets",
    multiple=True,
    metavar="calls=N|tokens=N|cost=X",
    help="Stop new model calls at this limit; repeatable.",
)
@click.option("--no-cache", is_flag=True, help="Call the model even where a cached answer exists.")
@click.option("--watch", is_flag=True, help="Run again on every save, the model kept loaded; Ctrl-C stops.")
@click.option(
    "--estimate",
    "estimate_only",
    is_flag=True,
    help="Print the calls, tokens, cost and time it would take; run nothing.",
)
@click.option(
    "--max-calls", type=click.IntRange(min=0), help="Refuse to start (exit 2) above this many new model calls."
)
@click.option(
    "--max-cost", type=click.FloatRange(min=0), metavar="USD", help="Refuse to start (exit 2) above this price."
)
@click.option(
    "--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
    help="ray: spread the cases over Ray actors ($RAY_ADDRESS, or a local cluster).",
)  # fmt: skip
@click.option("--actors", type=click.IntRange(1, 4096), default=2, show_default=True, help="Ray actors a model.")
@click.option("--batch", is_flag=True, help="API models' calls through their batch API; Ctrl-C leaves it.")
@click.option(
    "--batch-rerun", type=click.Choice(["realtime", "batch", "none"]), default="realtime", show_default=True,
    help="What becomes of requests a batch left unanswered.",
)  # fmt: skip
@click.option("--resume", is_flag=True, help="Run again the command whose batch is still out, and collect it.")
@pass_state
def eval_(
    state: State,
    suites: tuple[str, ...],
    prompts: tuple[str, ...],
    changed: bool,
    every: bool,
    base: str | None,
    repeat: int | None,
    jobs: int | None,
    model: str | None,
    outputs: tuple[Path, ...],
    pattern: str | None,
    sample: int | None,
    head: int | None,
    shard: str | None,
    fmt: str,
    budgets: tuple[str, ...],
    no_cache: bool,
    watch: bool,
    estimate_only: bool,
    max_calls: int | None,
    max_cost: float | None,
    executor: str,
    actors: int,
    batch: bool,
    batch_rerun: str,
    resume: bool,
) -> int:
    """Run eval suites and store every result in the DuckDB results file.

    SUITES are suite files or names under evals/; without them, every suite there but those marked
    `default: false` (--all takes them too). Exits 1 when a
    suite is below its threshold or a case errored (provider faults are recorded, not scored), and
    5 when --filter, --shard, --sample or --head leave no case to run.
    """
    from ..evals import export
    from ..evals.answers import Budget
    from ..evals.changes import changed_suites
    from ..evals.plan import CaseFilter, Plan, build_plan, by_default, suite_files
    from ..evals.runner import run_eval
    from ..pipelines.load import Subjects
    from ..providers import parse_model_option
    from ..settings import ModelSettings
    from .estimate_table import before_run
    from .progress import EvalProgress
    from .summary_table import print_summary

    if resume:
        return resume_batches(state)
    export.check_paths(outputs)
    project = state.project
    if prompts:
        Subjects(project).check_named(prompts)
    paths = suite_files(project, suites)
    if not suites and not changed and not every:
        paths, skipped = by_default(project, paths)
        if skipped:
            click.echo(f"left out {', '.join(skipped)} (default: false; name them, or pass --all)", err=True)
    if changed:
        paths, sha = changed_suites(project, paths, base)
        click.echo(f"--changed: {len(paths)} suite(s) affected since {sha[:10]}", err=True)
        if not paths:
            return int(ExitCode.OK)
    override = ModelSettings(**parse_model_option(model)) if model else None  # type: ignore[arg-type]
    case_filter = CaseFilter(pattern, sample, shard_option(shard), head)
    named = tuple(str(p) for p in paths)

    def make_plan() -> Plan:
        return build_plan(project, suite_files(project, named), prompts=prompts, repeat=repeat, override=override,
                          case_filter=case_filter)  # fmt: skip

    if watch:
        from .watch_loop import watch_evals

        if changed or estimate_only:
            raise InputError("--watch runs what it is given on every save: leave out --changed and --estimate")
        return watch_evals(state, make_plan, use_cache=not no_cache, jobs=jobs, git_info=git_info(state))
    plan = make_plan()
    if not plan.items:
        if case_filter.narrows:
            click.echo(f"no case matches {case_filter.describe()}", err=True)
            return int(ExitCode.NOTHING_SELECTED)
        click.echo("nothing to evaluate", err=True)
        return int(ExitCode.OK)
    for task in plan.tasks:  # a simulated user's turns are model calls the suite does not list
        sim = task.conversation.simulator if task.conversation else None
        if sim is not None:
            most = 2 * sim.max_turns * len(task.cases) * task.repeat
            click.echo(
                f"{task.label}: a simulated user ({sim.stage.prompt.name} on {sim.stage.model_id}) may add up to"
                f" {most} model calls: {sim.max_turns} turn(s) and the replies to them, per case",
                err=True,
            )
    estimate = before_run(state, plan, no_cache, estimate_only, max_calls, max_cost, fmt, batch)
    if estimate is None:
        return int(ExitCode.OK)
    with EvalProgress(note=estimate.pop("line")) as progress:
        report = run_eval(
            project,
            plan,
            use_cache=not no_cache,
            budget=Budget.from_values(budget_values(budgets)),
            jobs=jobs,
            progress=progress,
            git_info=git_info(state),
            estimate=estimate,
            models=executor_pool(project, executor, actors, batch, batch_rerun),
        )
    if fmt == "json":
        emit_json(export.summary_dict(report))
    else:
        print_summary(report)
    for path in outputs:
        export.write(report, path)
        click.echo(f"wrote {path}", err=True)
    return int(ExitCode.FAILED if report.failed or report.status != "complete" else ExitCode.OK)

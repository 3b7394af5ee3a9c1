from __future__ import annotations

from pathlib import Path

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
@click.option("--min-gain", type=float, metavar="X", help="Create the branch only if the held-out gain is at least X.")
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
    """
    from ..optimize.engine import Settings
    from ..optimize.output import svg_plot
    from ..optimize.session import optimize as run_optimization
    from ..optimize.split import parse_fractions
    from .eval import budget_values
    from .progress import OptimizeProgress

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
        output.write_text(result.body, encoding="utf-8")
        plot.write_text(svg_plot(outcome), encoding="utf-8")
        click.echo(f"wrote {output} and {plot}", err=True)
    if fmt == "json":
        import json

        r = result.stats.result
        click.echo(
            json.dumps(
                {
                    "id": outcome.id,
                    "status": outcome.status,
                    "method": outcome.method,
                    "prompt": outcome.prompt,
                    "suite": outcome.suite,
                    "initial": outcome.initial.text,
                    "best": outcome.best.text,
                    "test": {"n": r.n, "before": r.base_mean, "after": r.head_mean, "delta": r.delta,
                             "ci": [r.ci_low, r.ci_high], "p_value": r.p_value, "test": r.test},
                    "calls": outcome.usage.calls,
                    "tokens": outcome.usage.tokens,
                    "cost": outcome.usage.cost,
                    "wall_s": round(outcome.wall_s, 2),
                    "branch": result.branch,
                    "commit": result.commit,
                    "reason": result.reason or None,
                },
                indent=2,
            )
        )  # fmt: skip
    else:
        click.echo(result.body)
    if result.branch:
        click.echo(f"created branch {result.branch} ({result.commit[:10] if result.commit else ''})", err=True)
    else:
        click.echo(f"no branch: {result.reason} (optimization {outcome.id})", err=True)
    return int(ExitCode.OK)

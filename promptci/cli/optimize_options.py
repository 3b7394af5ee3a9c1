"""The options of ``promptci optimize``: its flags, the method names it takes, and the flags
that became method options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

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


class OptimizeCommand(click.Command):
    """Names the method option a retired flag became."""

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

        return "[auto|" + "|".join(names()) + "|A+B]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..optimize.methods import names

        known = names()
        if value == "auto":
            return "auto"
        for link in str(value).split("+"):  # a chain: gpo+demos
            if link not in known:
                self.fail(
                    f"unknown method '{link}': one of {', '.join(known)}, or a chain such as gpo+demos", param, ctx
                )
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


def optimize_options(f: F) -> F:
    """Every option of ``promptci optimize``, on ``f``."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


_OPTIONS: list[Callable[[Any], Any]] = [
    click.argument("name", required=False),
    click.option("--suite", metavar="SUITE", help="The eval suite to optimize on (a name under evals/, or a path)."),
    click.option("--method", type=_MethodName(), default="gpo", show_default=True, help="The optimizer method."),
    click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="METHOD.KNOB=VALUE",
        help="One of the method's own options, e.g. greater.topk=40; repeatable. --list-methods lists them.",
    ),
    click.option(
        "--target",
        type=click.Choice(["instruction", "tool-descriptions", "both"]),
        help="With --method gepa: rewrite the instruction (default), the prompt's tool descriptions, or both.",
    ),
    click.option(
        "--list-methods",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_list_methods,
        help="List the methods, built-in and installed, with their options and defaults, and exit.",
    ),
    click.option(
        "--optimizer-model", metavar="[PROVIDER:]MODEL", help="Model proposing instructions (default: the task model)."
    ),
    click.option("--task-model", metavar="[PROVIDER:]MODEL", help="Model answering the cases (default: the suite's)."),
    click.option(
        "--steps", type=click.IntRange(min=1), help="Search steps (default: the method's; see --list-methods)."
    ),
    click.option("--candidates", type=click.IntRange(min=1), default=8, show_default=True, help="Candidates per step."),
    click.option(
        "--budget",
        "budgets",
        multiple=True,
        metavar="calls=N|tokens=N|cost=X|seconds=N",
        help="Stop the search cleanly at this limit on new model calls or wall-clock time; repeatable.",
    ),
    click.option("--estimate", "estimate_only", is_flag=True, help="Print the calls, tokens and price; run nothing."),
    click.option(
        "--max-calls", type=click.IntRange(min=0), help="Refuse to start (exit 2) above this many model calls at most."
    ),
    click.option(
        "--max-cost", type=click.FloatRange(min=0), metavar="USD", help="Refuse to start (exit 2) above this price."
    ),
    click.option("--split", "split", default="0.2/0.2/0.6", show_default=True, help="Train/dev/test fractions."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split, exemplars and sampling."),
    click.option(
        "--position",
        type=click.Choice(["system", "before", "after"]),
        help="Where the instruction sits: the system message, or a line before/after the question"
        " (default: system when the prompt has one).",
    ),
    click.option(
        "--credit",
        type=click.Choice(["blame", "round-robin"]),
        default="blame",
        show_default=True,
        help="For a pipeline: change the step the optimizer model blames for failing cases, or each step in turn.",
    ),
    click.option("--device", metavar="cpu|cuda|…", help="Local task model's device (default: cuda if present)."),
    click.option("--dtype", metavar="auto|float32|bfloat16|float16", help="Local task model's dtype."),
    click.option("--resume", metavar="ID", help="Continue a stopped optimization from its stored trajectory."),
    click.option("--dry-run", is_flag=True, help="Do everything but create the branch."),
    click.option(
        "--min-gain", type=float, metavar="X", help="Create the branch only if the held-out score rose, by at least X."
    ),
    click.option(
        "--alpha",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        help="Create the branch only if the held-out gain is significant at this level"
        " [default: 0.05, or the block's].",
    ),
    click.option(
        "--allow-insignificant", is_flag=True, help="Create the branch for a gain that is not significant, and say so."
    ),
    click.option("--changed", is_flag=True, help="Optimize the opted-in prompts that changed since --base."),
    click.option("--base", metavar="REF", help="Base for --changed (default: merge-base with the default branch)."),
    click.option("--due", is_flag=True, help="Optimize the opted-in prompts whose schedule is due today (UTC)."),
    click.option("--today", metavar="YYYY-MM-DD", hidden=True, help="The date --due checks (default: today, UTC)."),
    click.option("--all", "everything", is_flag=True, help="Optimize every opted-in prompt."),
    click.option("--plan", is_flag=True, help="Print the selected prompts as a JSON list, and run nothing."),
    click.option(
        "--push",
        is_flag=True,
        help="Push each winner to promptci/optimize/NAME/TARGET and open or update its one PR (GITHUB_TOKEN).",
    ),
    click.option("--remote", default="origin", show_default=True, help="The remote --push pushes to."),
    click.option(
        "--pr-base",
        metavar="BRANCH",
        help="The PR's target branch (default: $GITHUB_HEAD_REF, else $GITHUB_REF_NAME, else the current branch).",
    ),
    click.option(
        "-o",
        "--output",
        "output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the PR body to FILE.md, and the plot beside it as FILE.svg.",
    ),
]

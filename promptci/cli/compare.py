from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ExitCode, InputError
from .options import State, format_option, output_option, pass_state, results_option, stored_results

if TYPE_CHECKING:
    pass

OUTPUTS = (".json", ".md", ".xml")


@click.command()
@click.argument("base", required=False)
@click.argument("head", required=False)
@click.argument("suites", nargs=-1)
@click.option("--prompt", "prompts", multiple=True, metavar="NAME", help="Only suites × this prompt; repeatable.")
@click.option("--filter", "pattern", metavar="REGEX", help="Only cases whose name or id matches, as in eval.")
@click.option("--sample", type=click.IntRange(min=1), help="The seeded random N cases of each suite, as in eval.")
@click.option("--head", "head_n", type=click.IntRange(min=1), help="Only the first N cases of each suite, as in eval.")
@click.option("--shard", metavar="I/N", help="Only shard I of N (by case id), as in eval.")
@click.option("--run-missing", is_flag=True, help="Evaluate cases a side has no stored results for.")
@click.option("--allow-mismatch", is_flag=True, help="Compare even when models, parameters or scorers differ.")
@click.option(
    "--optimization",
    metavar="ID",
    help="Only the held-out test cases of this optimization's suite and prompt: the comparison its PR body reports.",
)
@results_option
@output_option(".json, .md or .xml JUnit")
@format_option("text", "json", "markdown")
@pass_state
def compare(
    state: State,
    base: str | None,
    head: str | None,
    suites: tuple[str, ...],
    prompts: tuple[str, ...],
    pattern: str | None,
    sample: int | None,
    head_n: int | None,
    shard: str | None,
    run_missing: bool,
    allow_mismatch: bool,
    optimization: str | None,
    results_url: str | None,
    outputs: tuple[Path, ...],
    fmt: str,
) -> int:
    """Compare eval results of two sides case by case, with paired significance tests.

    BASE and HEAD are git revisions or run ids. BASE defaults to the merge-base
    with the default branch, HEAD to the working tree. SUITES (files or names under
    evals/) limit it to those suites; without them, the suites whose prompts, scorers,
    models or cases differ between the sides are compared, and the rest are named as
    left out. --prompt, --filter, --sample, --head and --shard pick what eval picks,
    so a sampled eval compares to a sampled eval. Exits 1 only when a suite
    regressed: a drop beyond gate.max_drop with p < gate.alpha (adjusted by
    gate.correction across the rows), or with gate.flaky: fail when a case's
    repeats disagree; 5 when the filters leave no case.
    """
    from ..compare import report
    from ..compare.engine import compare as run_compare
    from ..compare.judges import judge_notes
    from ..compare.sides import Scope, load_pair, missing_error, resolve_side
    from ..evals.changes import base_revision
    from ..evals.plan import CaseFilter
    from ..optimize.heldout import held_out
    from ..pipelines.load import Subjects
    from .eval_args import shard_option as _shard
    from .output import emit_json, table

    for path in outputs:
        if path.suffix not in OUTPUTS:
            raise InputError(f"cannot tell the report format of {path}", hint=f"use one of {', '.join(OUTPUTS)}")
    project = state.project
    db = project.path(project.config.db)
    cases = CaseFilter(pattern, sample, _shard(shard), head_n)
    scope = Scope(tuple(_as_named(project, s) for s in suites), prompts, cases)
    default_base = None if base else base_revision(state.registry, None)
    with stored_results(state, results_url) as store:
        held = held_out(state.project, state.registry, store, optimization) if optimization else None
        sides = [resolve_side(project, store, base, default_rev=default_base), resolve_side(project, store, head)]
        results, left_out = load_pair(project, store, sides, scope, held)
        if prompts:
            Subjects(project).check_named(prompts, frozenset().union(*(r.subjects() for r in results)))
        missing = [found for found in results if found.missing]
        if missing and not run_missing:
            raise missing_error(missing[0])
        if not missing:
            comparison = run_compare(store, results[0], results[1], project.config.gate)
    if missing:
        for found in missing:
            _run_missing(state, found, db)
        with stored_results(state, results_url) as store:  # side tables live in one connection: load again
            results, left_out = load_pair(project, store, sides, scope, held)
            comparison = run_compare(store, results[0], results[1], project.config.gate)
    with stored_results(state, results_url) as store:
        judge_notes(project, store, comparison)
    if left_out:
        click.echo(
            f"left out {len(left_out)} suite(s) the same on both sides (prompts, scorers, models and cases):"
            f" {', '.join(left_out)}; name a suite to compare it anyway",
            err=True,
        )
    if cases.narrows and not comparison.suites:
        click.echo(f"no case matches {cases.describe()}", err=True)
        return int(ExitCode.NOTHING_SELECTED)
    if comparison.mismatches and not allow_mismatch:
        raise InputError(
            "the sides are not comparable: " + "; ".join(comparison.mismatches),
            hint="a changed model, dataset or scorer measures drift, not your change; --allow-mismatch overrides",
        )
    markdown = report.markdown(comparison)
    if fmt == "json":
        emit_json(report.as_dict(comparison))
    elif fmt == "markdown":
        click.echo(markdown, nl=False)
    else:
        table(report.headers(comparison), report.rows(comparison), title=f"{comparison.base} → {comparison.head}")
        _print_flips(comparison)
        for s in comparison.suites:
            for side, count, reason in zip(("base", "head"), s.errors, s.reasons, strict=True):
                if count:
                    click.echo(f"{s.suite} × {s.prompt}: {count} errored on {side}; commonest: {reason}", err=True)
        click.echo(f"verdict: {comparison.verdict}", err=True)
    writers = {".json": report.to_json, ".md": report.markdown, ".xml": report.junit}
    from ..redact import write

    for path in outputs:
        write(path, writers[path.suffix](comparison))
    _github(comparison, markdown, project)
    return int(ExitCode.FAILED if comparison.fails else ExitCode.OK)


def _run_missing(state: State, found: object, db: Path) -> None:
    from ..compare.sides import SideResults
    from ..evals.plan import Plan
    from ..evals.runner import run_eval
    from .progress import EvalProgress

    assert isinstance(found, SideResults)
    tasks = list({id(i.task): i.task for i in found.missing}.values())
    click.echo(f"evaluating {len(found.missing)} missing case(s) at {found.side.label}", err=True)
    with EvalProgress() as progress:
        run_eval(state.project, Plan(tasks, found.missing), progress=progress, db=db)


def _print_flips(comparison: object) -> None:
    from ..compare.engine import Comparison
    from ..compare.report import _clip, detects_sentence, first_difference, step_changes

    assert isinstance(comparison, Comparison)
    for s in comparison.suites:
        for note in (detects_sentence(comparison, s), s.judge_note):
            if note:
                click.echo(f"  {s.suite} × {s.prompt}: {note}")
        for case in s.flaky[:20]:
            b, h = case.base, case.head
            click.echo(f"  {s.suite} flaky {case.name}: passes {b[0]}/{b[1]} on base, {h[0]}/{h[1]} on head")
        if s.steps:
            click.echo(f"  {s.suite} × {s.prompt}: changed per step: {step_changes(s)}")
        for f in s.flips[:20]:
            first = f" ({first_difference(s, f.first_step)})" if f.first_step else ""
            changed = f"\n    changed: {_clip(f.change, 100)}" if f.change else ""
            click.echo(
                f"  {s.suite} {f.direction} {f.name}{first}\n    base: {_clip(f.base.output, 100)}\n"
                f"    head: {_clip(f.head.output, 100)}{changed}"
            )


def _github(comparison: object, markdown: str, project: object) -> None:
    """On GitHub Actions: the step summary, and annotations on the prompt files."""
    from ..compare.engine import Comparison
    from ..compare.report import github_annotations, prompt_lines
    from ..github import ActionsEnv
    from ..project import Project
    from ..redact import append_summary

    assert isinstance(comparison, Comparison) and isinstance(project, Project)
    env = ActionsEnv.read()
    if env.step_summary:
        append_summary(env.step_summary, markdown + "\n")
    if env.in_actions:
        for line in github_annotations(comparison, prompt_lines(project, comparison)):
            click.echo(line)


def _as_named(project: Any, given: str) -> str:
    """A suite argument as the sides can find it: a file as its path from the project's root
    (each side reads it in its own tree), else the suite's name."""
    path = Path(given)
    if path.is_file():
        return str(project.rel(path))
    return given

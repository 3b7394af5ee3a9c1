from __future__ import annotations

from pathlib import Path

import click

from ..errors import ExitCode
from .options import State, format_option, pass_state


@click.group()
def judge() -> None:
    """Check a suite's judge against people's grades."""


@judge.command("check")
@click.argument("suite")
@click.option("--grades", "grades_file", type=click.Path(dir_okay=False, path_type=Path),
              help="People's grades (default: evals/SUITE.grades.jsonl beside the suite).")  # fmt: skip
@click.option("--scorer", help="Which judge, where the suite has several: llm-judge, llm-judge#2, embedding.")
@click.option("--repeat", type=click.IntRange(1, 100), help="Judge calls per output (default: the scorer's repeat).")
@format_option()
@pass_state
def check(
    state: State, suite: str, grades_file: Path | None, scorer: str | None, repeat: int | None, fmt: str
) -> int:  # fmt: skip
    """How far the suite's llm-judge or embedding scorer agrees with people.

    The judge grades the outputs people graded. Prints Cohen's κ (quadratic weights for 0–10
    grades), the share graded the same, a confusion table, and with repeats the judge's
    agreement with itself. The check is stored: compare warns when a verdict rests on a judge
    whose κ is below gate.min_kappa. Exits 1 when it is.
    """
    from ..evals.judging import check as run_check
    from ..store import Store
    from .output import emit_json

    project = state.project
    db = project.path(project.config.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    with Store(db) as store:
        found = run_check(project, suite, store, grades_file=grades_file, scorer=scorer, repeat=repeat)
    a, floor = found.agreement, project.config.gate.min_kappa
    below = not a.kappa >= floor  # a κ that is nan (no variation at all) is not agreement
    if fmt == "json":
        names = [_name(label, a.ordinal) for label in a.labels]
        emit_json({
            "suite": found.suite, "scorer": found.scorer, "grades": found.grades, "n": a.n, "kappa": a.kappa,
            "weights": a.weights, "accuracy": a.accuracy, "self_agreement": a.self_agreement, "repeats": a.repeats,
            "labels": names, "confusion": a.table.tolist(), "min_kappa": floor, "below_min_kappa": below,
            "skipped": a.skipped,
        })  # fmt: skip
        return int(ExitCode.FAILED if below else ExitCode.OK)
    click.echo(f"judge {found.scorer} of suite {found.suite}, against {a.n} people's grades ({found.grades})")
    weights = "quadratic weights" if a.ordinal else "unweighted"
    click.echo(f"  Cohen's κ ({weights}):  {a.kappa:.3f}" + (f", below gate.min_kappa {floor:g}" if below else ""))
    same = round(a.accuracy * a.n) if a.n else 0
    click.echo(f"  graded the same:  {a.accuracy:.3f} ({same} of {a.n})")
    if a.self_agreement is not None:
        click.echo(f"  agrees with itself:  {a.self_agreement:.3f} of outputs over {a.repeats} repeats")
    for reason in a.skipped:
        click.echo(f"  no grade: {reason}", err=True)
    used = [i for i in range(len(a.labels)) if a.table[i].sum() or a.table[:, i].sum()]
    click.echo("  confusion (rows: people, columns: judge)")
    click.echo("  " + " " * 7 + "".join(f"{_name(a.labels[j], a.ordinal):>7}" for j in used))
    for i in used:
        click.echo(f"  {_name(a.labels[i], a.ordinal):>7}" + "".join(f"{int(a.table[i, j]):>7}" for j in used))
    if below:
        click.echo(
            f"κ {a.kappa:.3f} is below gate.min_kappa {floor:g}: compare warns on {found.suite}'s verdicts", err=True
        )
    return int(ExitCode.FAILED if below else ExitCode.OK)


def _name(label: int, ordinal: bool) -> str:
    return str(label) if ordinal else ("pass" if label else "fail")

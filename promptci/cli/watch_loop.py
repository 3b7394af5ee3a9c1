"""``eval --watch``'s loop on the terminal: a run on every save, and what changed since the last."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from ..errors import ExitCode, PromptciError
from .options import State


def watch_evals(state: State, make_plan: Callable[[], Any], **run_options: Any) -> int:
    from ..evals.runner import EvalReport, run_eval
    from ..evals.watch import changes, snapshot, watch
    from ..providers.pool import session_pool
    from .progress import EvalProgress
    from .summary_table import print_summary

    project = state.project
    pool = session_pool(project.root)  # the model stays loaded from one run to the next

    def once(before: EvalReport | None) -> EvalReport | None:
        started = time.perf_counter()
        report: EvalReport | None = None
        try:
            plan = make_plan()
            with EvalProgress() as progress:
                report = run_eval(project, plan, models=pool, progress=progress, **run_options)
        except PromptciError as exc:  # a half-written file: say so, and wait for the next save
            click.echo(f"error: {exc}", err=True)
        if report is not None:
            print_summary(report)
            for change in changes(before, report):
                click.echo(change.line(), err=True)
        files = len(snapshot(project))
        click.echo(f"ran in {time.perf_counter() - started:.1f} s; watching {files} files (Ctrl-C stops)", err=True)
        return report

    try:
        watch(project, once)
    except KeyboardInterrupt:
        click.echo("stopped watching", err=True)
    return int(ExitCode.OK)

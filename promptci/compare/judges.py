"""Whether a compared suite's verdict rests on a judge people agree with.

A suite scored by an ``llm-judge`` or ``embedding`` scorer is only as good as that judge. After
``promptci judge check SUITE`` the store holds the judge's κ with people's grades; compare names a
suite whose judge was never checked, was checked in another configuration, or falls below
``gate.min_kappa``.
"""

from __future__ import annotations

from ..errors import PromptciError
from ..evals.judging import JUDGES, judge_hash, judges
from ..evals.plan import build_plan, read_suite, suite_files
from ..project import Project
from ..store import Store
from .engine import Comparison


def judge_notes(project: Project, store: Store, comparison: Comparison) -> None:
    """Set ``judge_note`` on each suite row whose scores come from a judge with a doubt on it."""
    checks = store.judge_checks() if comparison.suites else {}
    floor = project.config.gate.min_kappa
    for s in comparison.suites:
        try:
            (path,) = suite_files(project, (s.suite,))
            suite, _ = read_suite(project, path)
            if not any(spec.type in JUDGES for spec in suite.scorers):
                continue
            tasks = build_plan(project, [path]).tasks  # the judge's model, as its check is keyed
        except (PromptciError, ValueError):  # a suite gone from the working tree: nothing to say
            continue
        found = judges(tasks[0]) if tasks else []
        if not found:
            continue
        name, spec = found[0]
        check = checks.get(s.suite)
        command = f"`promptci judge check {s.suite}`"
        if check is None:
            s.judge_note = f"scored by a judge ({name}) never checked against people's grades: {command}"
        elif check[1] != judge_hash(spec, tasks[0]):
            s.judge_note = f"its judge ({name}) changed since it was checked against people: {command} again"
        elif check[4] is None or not check[4] >= floor:
            kappa = "undefined" if check[4] is None else f"{check[4]:.2f}"
            s.judge_note = (
                f"the verdict rests on a judge ({check[0]}) whose κ with people is {kappa}, below"
                f" gate.min_kappa {floor:g} ({check[3]} grades)"
            )

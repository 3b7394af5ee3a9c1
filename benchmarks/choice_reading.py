"""How the choice reader's verdicts changed: the shipped choice suites' answers, read by the
reader of an earlier commit and by today's, counted by class (correct, wrong, no answer /
ambiguous) and by transition.

The answers are the default model's own, generated (and cached) through ``promptci eval`` in a
fresh copy of this project. The earlier reader is the ``extract_choice`` function of commit
``--before`` (default: the commit before the reader was rewritten), taken from git.

Usage: python benchmarks/choice_reading.py [--limit 60] [--before REV]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.evals.choice import read_choice  # noqa: E402
from promptci.evals.plan import build_plan, suite_files  # noqa: E402
from promptci.evals.runner import run_eval  # noqa: E402
from promptci.evals.scoring import make_scorer  # noqa: E402
from promptci.evals.suite import ChoiceScorer  # noqa: E402
from promptci.project import Project  # noqa: E402

SUITES = ["causal_judgment", "date_understanding", "disambiguation_qa", "navigate", "sports_understanding"]
BEFORE = "bae5195~1"  # the reader that took the first choice mentioned and not directly negated


def old_reader(rev: str) -> Any:
    """``extract_choice`` as it was at ``rev``: its function and the negation pattern it reads."""
    source = subprocess.run(
        ["git", "show", f"{rev}:promptci/evals/scorers.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    negation = re.search(r"^_NEGATION = .*?(?=\n\n)", source, re.MULTILINE | re.DOTALL)
    function = re.search(r"^def extract_choice\(.*?(?=\n\n\n)", source, re.MULTILINE | re.DOTALL)
    assert negation and function, f"no extract_choice at {rev}"
    namespace: dict[str, Any] = {"re": re}
    exec(negation.group(0) + "\n\n" + function.group(0), namespace)  # this repository's own code, from git
    return namespace["extract_choice"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=60, help="cases per suite")
    parser.add_argument("--before", default=BEFORE, help="the commit whose reader to compare with")
    args = parser.parse_args()
    before = old_reader(args.before)
    totals: Counter[tuple[str, str]] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "project"
        shutil.copytree(ROOT / "evals", repo / "evals")
        shutil.copytree(ROOT / "prompts", repo / "prompts")
        shutil.copy(ROOT / "promptci.yaml", repo / "promptci.yaml")
        for suite in SUITES:
            path = repo / f"evals/{suite}.yaml"
            path.write_text(re.sub(r"limit: \d+", f"limit: {args.limit}", path.read_text()))
        project = Project.discover(repo)
        plan = build_plan(project, suite_files(project, [str(repo / f"evals/{s}.yaml") for s in SUITES]))
        report = run_eval(project, plan)
        by_case = {(r.suite, r.case_id): r for r in report.rows}
        print(f"{'suite':22} {'n':>3}  old: correct/wrong/none  new: correct/wrong/ambiguous/none  changed")
        for task in plan.tasks:
            spec = next(s for s in task.suite.scorers if isinstance(s, ChoiceScorer))
            scorer = make_scorer(task, project)
            moves: Counter[tuple[str, str]] = Counter()
            for case in task.cases:
                row = by_case[(task.suite_name, case.id)]
                output = row.output or ""
                choices = [str(c) for c in (spec.choices or case.data.get(spec.choices_from or "") or [])]
                picked = before(output, choices)
                gold = str(case.expected).casefold()
                old = "none" if picked is None else ("correct" if picked.casefold() == gold else "wrong")
                reading = read_choice(output, choices, pick=spec.pick)
                if reading.choice is None:
                    new = "ambiguous" if reading.note else "none"
                else:
                    new = "correct" if scorer.score(output, case)[1] >= 1 else "wrong"
                moves[(old, new)] += 1
            totals += moves
            print(_line(task.suite_name, moves))
        print(_line("all", totals))
        print("\ntransitions (old -> new), all suites:")
        for (old, new), n in sorted(totals.items(), key=lambda x: -x[1]):
            if old != new:
                print(f"  {old:8} -> {new:9} {n}")


def _line(name: str, moves: Counter[tuple[str, str]]) -> str:
    n = sum(moves.values())
    old: Counter[str] = Counter()
    new: Counter[str] = Counter()
    for (o, w), v in moves.items():
        old[o] += v
        new[w] += v
    changed = sum(v for (o, w), v in moves.items() if o != w)
    return (
        f"{name:22} {n:>3}  {old['correct']:>3}/{old['wrong']:>3}/{old['none']:>3}"
        f"          {new['correct']:>3}/{new['wrong']:>3}/{new['ambiguous']:>3}/{new['none']:>3}"
        f"                {changed}"
    )


if __name__ == "__main__":
    main()

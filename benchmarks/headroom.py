"""Which tasks leave the default model room to improve: a screen of BIG-bench-style tasks.

An optimizer can only be seen to work, or to fail, on a task where the prompt makes a
difference. For each task this scores, on the same first ``--cases`` cases (60):

- the plain prompt (the shipped one where this project ships the task, else a plain
  "answer alone" prompt with the options listed);
- the same prompt with 3 demonstrations (``--demos``) drawn at random (seeded) from the
  task's other cases, each the question as the prompt renders it and its gold answer;

and the best constant answer on those cases (the majority label, or always the same option).
A task **passes** when the plain prompt or the demonstrations beat the constant answer by
``--margin`` (0.10) or more, or when the two differ significantly (exact McNemar, p < 0.05).

Sources: ``--data DIR`` holds ``{input, target, choices?}`` JSONL, a task a file (default:
the six shipped tasks); ``--bigbench DIR`` reads every ``task.json`` under DIR (the
``bigbench/benchmark_tasks`` folder of a BIG-bench source tree): ``target_scores`` examples
become choice tasks, ``target`` examples exact-match ones; programmatic tasks (no
``task.json``) are skipped. ``--ship DIR`` writes the JSONL of every passing ``task.json``
task to DIR, for ``evals/data``.

Usage: python benchmarks/headroom.py [--data DIR | --bigbench DIR] [--tasks a,b] [--cases 60]
       [--demos 3] [--margin 0.10] [--seed 0] [--json out.json] [--ship DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from optimize import make_repo  # noqa: E402  (benchmarks/optimize.py: a task's repository)

from promptci.evals.baseline import best_constant  # noqa: E402
from promptci.evals.plan import build_plan, suite_files  # noqa: E402
from promptci.evals.runner import run_eval  # noqa: E402
from promptci.evals.scoring import make_scorer  # noqa: E402
from promptci.optimize.context import question  # noqa: E402
from promptci.optimize.instruction import insert_messages, literal  # noqa: E402
from promptci.optimize.output import paired_cases  # noqa: E402
from promptci.project import Project  # noqa: E402

MAX_TASK_BYTES = 64 * 1024 * 1024  # the largest task.json read; BIG-bench's largest is about 20 MB


def from_task_json(path: Path) -> list[dict[str, Any]]:
    """A BIG-bench ``task.json`` as ``{input, target, choices?}`` rows (empty if it has no examples)."""
    if path.stat().st_size > MAX_TASK_BYTES:
        raise SystemExit(f"{path}: over {MAX_TASK_BYTES >> 20} MB, not read")
    task = json.loads(path.read_text(encoding="utf-8"))
    prefix = str(task.get("task_prefix") or "")
    rows = []
    for example in task.get("examples") or []:
        text = prefix + str(example.get("input", ""))
        scores = example.get("target_scores")
        if isinstance(scores, dict) and scores:
            top = max(scores.values())
            target = next(choice for choice, score in scores.items() if score == top)
            rows.append({"input": text, "target": target, "choices": list(scores)})
        elif example.get("target") not in (None, "", []):
            target = example["target"]
            rows.append({"input": text, "target": target[0] if isinstance(target, list) else str(target)})
    return rows


def bigbench_tasks(root: Path, data: Path) -> list[str]:
    """Every ``task.json`` under ``root`` written to ``data`` as JSONL; the names of those with examples."""
    names = []
    for path in sorted(root.glob("**/task.json")):
        name = re.sub(r"\W+", "_", str(path.parent.relative_to(root))).strip("_").lower()
        rows = from_task_json(path)
        if rows:
            (data / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            names.append(name)
    return names


def with_demos(repo: Path, task: str, cases: int, demos: int, seed: int) -> None:
    """A second prompt, ``TASK_demos``: the task's prompt with ``demos`` gold demonstrations drawn
    from cases after the first ``cases``, and the suite scoring both prompts."""
    project = Project.discover(repo)
    suite_path = repo / f"evals/{task}.yaml"
    suite = suite_path.read_text()
    suite_path.write_text(re.sub(r"limit: \d+", "limit: 1000000", suite))
    (every,) = build_plan(project, suite_files(project, (str(suite_path),))).tasks
    pool = every.cases[cases:]
    if len(pool) < demos:
        raise SystemExit(f"{task}: {len(every.cases)} cases leave fewer than {demos} for demonstrations")
    drawn = random.Random(f"{seed}:{task}").sample(pool, demos)
    pairs = []
    for case in drawn:
        gold = case.expected[0] if isinstance(case.expected, list) else case.expected
        pairs += [("user", literal(question(every, case))), ("assistant", literal(str(gold)))]
    source = every.prompt.source
    spec = every.prompt.spec
    last_user = max(i for i, m in enumerate(spec.messages or []) if m.role == "user")
    source = re.sub(rf"^name: {re.escape(task)}$", f"name: {task}_demos", source, count=1, flags=re.MULTILINE)
    (repo / f"prompts/{task}_demos.yaml").write_text(insert_messages(source, every.prompt.path, last_user, pairs))
    suite = re.sub(r"^prompts: \[[^\]]*\]", f"prompts: [{task}, {task}_demos]", suite, count=1, flags=re.MULTILINE)
    suite_path.write_text(re.sub(r"limit: \d+", f"limit: {cases}", suite))


def screen(repo: Path, task: str, margin: float) -> dict[str, Any]:
    """The plain and demonstration prompts scored on the same cases, beside the best constant answer."""
    project = Project.discover(repo)
    plan = build_plan(project, suite_files(project, (str(repo / f"evals/{task}.yaml"),)))
    report = run_eval(project, plan)
    per: dict[str, dict[str, float]] = {task: {}, f"{task}_demos": {}}
    errors = 0
    for row in report.rows:
        per[row.prompt][row.case_id] = row.score or 0.0
        errors += row.error is not None
    first = plan.tasks[0]
    constant = best_constant(first.suite, make_scorer(first, project), first.cases)
    stats = paired_cases(per[task], per[f"{task}_demos"], first.suite.case_threshold).result
    best = max(stats.base_mean, stats.head_mean)
    passed = (constant is not None and best - constant.score >= margin - 1e-9) or stats.p_value < 0.05
    return {
        "task": task,
        "n": stats.n,
        "plain": stats.base_mean,
        "demos": stats.head_mean,
        "p_value": stats.p_value,
        "constant": constant.score if constant else None,
        "constant_label": constant.label if constant else None,
        "errors": errors,
        "passed": bool(passed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, default=ROOT / "evals/data/bigbench", help="a folder of task JSONL")
    source.add_argument("--bigbench", type=Path, help="a BIG-bench benchmark_tasks folder of task.json files")
    parser.add_argument("--tasks", help="comma-separated (default: every task found)")
    parser.add_argument("--cases", type=int, default=60, help="cases scored per task")
    parser.add_argument("--demos", type=int, default=3, help="demonstrations in the second prompt")
    parser.add_argument("--margin", type=float, default=0.10, help="the lead over the constant answer that passes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--ship", type=Path, help="write the JSONL of passing task.json tasks here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        data = args.data
        if args.bigbench:
            data = tmp / "data"
            data.mkdir()
            found = bigbench_tasks(args.bigbench, data)
        else:
            found = sorted(p.stem for p in data.glob("*.jsonl"))
        tasks = args.tasks.split(",") if args.tasks else found
        results = []
        for task in tasks:
            rows = (data / f"{task}.jsonl").read_text().splitlines()
            if len(rows) < args.cases + args.demos:
                print(f"{task}: {len(rows)} cases, fewer than {args.cases} + {args.demos}; skipped", flush=True)
                continue
            repo = make_repo(tmp / "repos", task, data, args.cases, None)
            with_demos(repo, task, args.cases, args.demos, args.seed)
            result = screen(repo, task, args.margin)
            results.append(result)
            print(
                f"{task}: plain {result['plain']:.3f}, {args.demos} demos {result['demos']:.3f} "
                f"(p={result['p_value']:.2g}), constant {result['constant'] or 0:.3f} ({result['constant_label']}), "
                f"{'passes' if result['passed'] else 'fails'}",
                flush=True,
            )
            if args.ship and args.bigbench and result["passed"]:
                args.ship.mkdir(parents=True, exist_ok=True)
                (args.ship / f"{task}.jsonl").write_text((data / f"{task}.jsonl").read_text())

    print(f"\n| task | n | best constant answer | plain | {args.demos} demos | p | passes |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        constant = "n/a" if r["constant"] is None else f"{r['constant']:.3f} ({r['constant_label']})"
        print(
            f"| {r['task']} | {r['n']} | {constant} | {r['plain']:.3f} | {r['demos']:.3f} "
            f"| {r['p_value']:.2g} | {'yes' if r['passed'] else 'no'} |"
        )
    print(f"\n{sum(r['passed'] for r in results)} of {len(results)} tasks pass.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

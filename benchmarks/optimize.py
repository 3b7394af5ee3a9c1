"""Held-out accuracy of the initial instruction, OPRO, GPO and GReaTer, at equal budgets, on
the BIG-bench tasks this project ships, with the default model as task and optimizer model.

``--seconds S`` gives every optimization the same wall-clock search time instead of the
same number of model calls (GReaTer's work is gradients, not calls), with a 0.4/0.2/0.4
split so that GReaTer has train cases to spare.

Each (task, method) runs in its own fresh repository and results database, so no method
is helped by another's cached answers, and all share the seeded split: the same test
cases score every instruction. The budget counts new model calls, optimizer and task
alike; the final test scoring of the two instructions is outside it.

Usage: python benchmarks/optimize.py [--tasks a,b] [--methods opro,gpo,greater] [--budget 150 | --seconds 300]
       [--candidates 4] [--limit 40] [--seed 0] [--batch-size 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.optimize import methods  # noqa: E402
from promptci.optimize.session import optimize  # noqa: E402
from promptci.optimize.settings import Settings  # noqa: E402
from promptci.project import Project  # noqa: E402

TASKS = [
    "causal_judgment",
    "date_understanding",
    "disambiguation_qa",
    "navigate",
    "object_counting",
    "sports_understanding",
]


def make_repo(tmp: Path, task: str, limit: int, batch_size: int | None) -> Path:
    repo = tmp / task
    (repo / "prompts").mkdir(parents=True)
    (repo / "evals").mkdir()
    config = (ROOT / "promptci.yaml").read_text()
    if batch_size:
        config = config.replace("  max_tokens: 16\n", f"  max_tokens: 16\n  params: {{batch_size: {batch_size}}}\n")
    (repo / "promptci.yaml").write_text(config)
    shutil.copy(ROOT / f"prompts/{task}.yaml", repo / "prompts")
    shutil.copy(ROOT / f"evals/data/bigbench/{task}.jsonl", repo / f"evals/{task}.jsonl")
    suite = (ROOT / f"evals/{task}.yaml").read_text()
    suite = suite.replace(f"data/bigbench/{task}.jsonl", f"{task}.jsonl").replace("limit: 40", f"limit: {limit}")
    (repo / f"evals/{task}.yaml").write_text(suite)
    (repo / ".gitignore").write_text(".promptci/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "task"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default="opro,gpo")
    parser.add_argument("--budget", type=int, default=150, help="new model calls per optimization")
    parser.add_argument("--seconds", type=float, help="a wall-clock budget per optimization instead of calls")
    parser.add_argument("--examples", type=int, default=8, help="GReaTer: train cases per step")
    parser.add_argument("--reasoning-tokens", type=int, default=64, help="GReaTer: reasoning length")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--limit", type=int, default=40, help="cases per task (split 0.2/0.2/0.6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, help="the local model's batch size (default 16)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            for method in args.methods.split(","):
                repo = make_repo(Path(tmp) / method, task, args.limit, args.batch_size)
                budget = {"seconds": args.seconds} if args.seconds else {"calls": float(args.budget)}
                sizes = {"examples": args.examples, "reasoning_tokens": args.reasoning_tokens}
                known = methods.get(method).Config.model_fields  # the GReaTer sizes, for methods that have them
                settings = Settings(
                    method=method, steps=1000, candidates=args.candidates, seed=args.seed, budget=budget,
                    config={k: v for k, v in sizes.items() if k in known},
                    split=(0.4, 0.2, 0.4) if args.seconds else (0.2, 0.2, 0.6),
                )  # fmt: skip
                started = time.perf_counter()
                result = optimize(Project.discover(repo), task, suite=task, settings=settings, dry_run=True)
                wall = time.perf_counter() - started
                out, r = result.outcome, result.stats.result
                row = {
                    "task": task,
                    "method": method,
                    "n_test": r.n,
                    "initial": r.base_mean,
                    "optimized": r.head_mean,
                    "delta": r.delta,
                    "p_value": r.p_value,
                    "steps": max(x.step for x in out.rows),
                    "calls": out.usage.calls,
                    "unparsable": out.unparsable,
                    "candidates_scored": sum(x.status == "scored" for x in out.rows),
                    "wall_s": wall,
                    "best": out.best.text,
                }
                rows.append(row)
                change = f"{r.base_mean:.3f} -> {r.head_mean:.3f} ({r.delta:+.3f}, p={r.p_value:.2g})"
                print(
                    f"{task:22} {method:5} test {change}  steps {row['steps']}  calls {out.usage.calls}  {wall:.0f} s",
                    flush=True,
                )
    print()
    split = "0.4/0.2/0.4" if args.seconds else "0.2/0.2/0.6"
    print(f"Held-out test accuracy, {args.limit} cases per task split {split} (seed {args.seed}),")
    spend = f"{args.seconds:g} s of search" if args.seconds else f"{args.budget} new model calls"
    print(f"{spend} per optimization, {args.candidates} candidates per step,")
    print("one model (the default SmolLM2-135M unless promptci.yaml says otherwise) as task and optimizer.")
    print()
    chosen = args.methods.split(",")
    names = [m.upper() if m != "greater" else "GReaTer" for m in chosen]
    print(
        "| task | n test | initial | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{n} calls / wall" for n in names)
        + " |"
    )
    print("|---" * (3 + 2 * len(chosen)) + "|")
    for task in args.tasks.split(","):
        by = {r["method"]: r for r in rows if r["task"] == task}
        first = next(iter(by.values()))
        cells = [task, str(first["n_test"]), f"{first['initial']:.3f}"]
        for m in chosen:
            r = by.get(m)
            cells.append(f"{r['optimized']:.3f} (p={r['p_value']:.2g})" if r else "–")
        for m in chosen:
            r = by.get(m)
            cells.append(f"{r['calls']} / {r['wall_s']:.0f} s" if r else "–")
        print("| " + " | ".join(cells) + " |")
    mean = {m: [r for r in rows if r["method"] == m] for m in chosen}
    initial = [r["initial"] for r in rows if r["method"] == rows[0]["method"]]
    parts = [f"initial {sum(initial) / len(initial):.3f}"]
    parts += [f"{m} {sum(r['optimized'] for r in v) / len(v):.3f}" for m, v in mean.items() if v]
    print("\nmean over tasks: " + ", ".join(parts))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

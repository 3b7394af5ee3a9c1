"""Optimizing the shipped pipelines as one system, side by side at an equal budget: the initial
pipeline; GPO taking the steps in turn (no blame); GPO on the step the optimizer model blames;
TextGrad (feedback from the backward pass, on the blamed step); GEPA changing the steps in turn
and GEPA changing the step blamed on its minibatch. Held-out accuracy with the exact McNemar p
against the initial pipeline, beside the best constant answer.

It also measures what a candidate costs: the new model calls of scoring one candidate on dev,
with the steps before the changed one answered from the response cache, against the calls
that rerunning every step would take (dev cases x steps from the changed one to the first).

Each (pipeline, arm) runs in its own fresh repository and results database, so no arm is
helped by another's cached answers, and all share the seeded split. One model (the default
SmolLM2-135M) is task and optimizer.

Usage: python benchmarks/pipeline.py [--pipelines date_cot,count_items] [--budget 300 | --seconds 120]
       [--candidates 3] [--limit 60] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.optimize.outcome import Outcome  # noqa: E402
from promptci.optimize.output import paired_cases  # noqa: E402
from promptci.optimize.session import optimize  # noqa: E402
from promptci.optimize.settings import Settings  # noqa: E402
from promptci.pipelines.load import Pipelines  # noqa: E402
from promptci.project import Project  # noqa: E402
from promptci.store import Store  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimize import Progress  # noqa: E402  # the optimizer benchmark's progress lines

ARMS = {  # name: (method, credit)
    "gpo-turns": ("gpo", "round-robin"),
    "gpo-blame": ("gpo", "blame"),
    "textgrad": ("textgrad", "blame"),
    "gepa-turns": ("gepa", "round-robin"),
    "gepa-blame": ("gepa", "blame"),
}


def make_repo(tmp: Path, pipeline: str, limit: int) -> Path:
    """A fresh repository with the pipeline, its step prompts, its suite and the suite's data."""
    repo = tmp / pipeline
    for directory in ("prompts", "pipelines", "evals/data/bigbench"):
        (repo / directory).mkdir(parents=True)
    (repo / "promptci.yaml").write_text((ROOT / "promptci.yaml").read_text().split("\noptimize:")[0])
    shutil.copy(ROOT / f"pipelines/{pipeline}.yaml", repo / f"pipelines/{pipeline}.yaml")
    suite = (ROOT / f"evals/{pipeline}.yaml").read_text()
    (repo / f"evals/{pipeline}.yaml").write_text(re.sub(r"limit: \d+", f"limit: {limit}", suite))
    data = re.search(r"path: (\S+)", suite)
    assert data is not None
    shutil.copy(ROOT / "evals" / data.group(1), repo / "evals" / data.group(1))
    steps = Pipelines(Project.discover(ROOT)).get(pipeline).prompts
    for prompt in steps:
        shutil.copy(ROOT / prompt.path, repo / prompt.path)
    (repo / ".gitignore").write_text(".promptci/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "pipeline"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def candidate_calls(repo: Path, outcome: Outcome, steps: list[str]) -> dict[str, tuple[float, float]]:
    """Per changed step: mean new task calls to score a candidate on dev, and the calls without reuse."""
    db = repo / ".promptci/results.duckdb"
    found: dict[str, list[tuple[int, int]]] = {}
    with Store(db, read_only=True) as store:
        for row in outcome.rows:
            if row.status != "scored" or not row.dev_run or not row.target:
                continue
            answered = store.steps(row.dev_run)
            new = sum(1 for s in answered if not s.cached)
            cases = len({s.case_id for s in answered})
            rerun = cases * len(steps)  # every step of every dev case asked again
            found.setdefault(row.target, []).append((new, rerun))
    return {k: (mean(n for n, _ in v), mean(r for _, r in v)) for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", default="date_cot,count_items")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"any of {', '.join(ARMS)}")
    parser.add_argument("--budget", type=int, default=300, help="new model calls per optimization")
    parser.add_argument("--seconds", type=float, help="a wall-clock budget per optimization instead of calls")
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--limit", type=int, default=60, help="cases per pipeline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pipeline in args.pipelines.split(","):
            for arm in args.arms.split(","):
                method, credit = ARMS[arm]
                print(f"{pipeline} · {arm}", flush=True)
                repo = make_repo(Path(tmp) / arm, pipeline, args.limit)
                budget = {"seconds": args.seconds} if args.seconds else {"calls": float(args.budget)}
                settings = Settings(
                    method=method, steps=1000, candidates=args.candidates, seed=args.seed, budget=budget,
                    split=(0.4, 0.2, 0.4), credit=credit,
                )  # fmt: skip
                started = time.perf_counter()
                result = optimize(
                    Project.discover(repo), pipeline, suite=pipeline, settings=settings, dry_run=True,
                    reporter=Progress(arm),
                )  # fmt: skip
                o = result.outcome
                r = paired_cases(o.test_before.per_case, o.test_after.per_case, 1.0).result
                steps = [s.id for s in Pipelines(Project.discover(repo)).get(pipeline).spec.steps]
                costs = candidate_calls(repo, o, steps)
                row = {
                    "pipeline": pipeline,
                    "arm": arm,
                    "n_test": r.n,
                    "initial": r.base_mean,
                    "optimized": r.head_mean,
                    "p_value": r.p_value,
                    "constant": o.constant_test.score if o.constant_test else None,
                    "constant_label": o.constant_test.label if o.constant_test else None,
                    "calls": o.usage.calls,
                    "search_steps": len(o.rounds),
                    "steps_changed": [t for _, t, _, _ in o.rounds],
                    "blamed": sum(1 for _, _, why, _ in o.rounds if why == "blame"),
                    "candidate_calls": costs,
                    "winner": o.describe(o.best.text) if o.changed else "(unchanged)",
                    "refused": o.rejected(),
                    "held_back": o.held_back,
                    "wall_s": time.perf_counter() - started,
                }
                rows.append(row)
                print(
                    f"  test {r.base_mean:.3f} -> {r.head_mean:.3f} (p={r.p_value:.2g}, n={r.n});"
                    f" constant answer {o.constant_test}; steps changed: {' '.join(row['steps_changed'])}",
                    flush=True,
                )
                print(f"  winner: {row['winner']}", flush=True)
    report(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    arms = args.arms.split(",")
    spend = f"{args.seconds:g} s of search" if args.seconds else f"{args.budget} new model calls"
    print(f"\nHeld-out test accuracy, {args.limit} cases per pipeline split 0.4/0.2/0.4 (seed {args.seed}),")
    print(f"{spend} per optimization, {args.candidates} candidates per step; p: exact McNemar against initial.\n")
    print("| pipeline | n test | best constant answer | initial | " + " | ".join(arms) + " |")
    print("|---" * (4 + len(arms)) + "|")
    for pipeline in args.pipelines.split(","):
        by = {r["arm"]: r for r in rows if r["pipeline"] == pipeline}
        first = next(iter(by.values()))
        constant = f"{first['constant']:.3f} ({first['constant_label']})" if first["constant"] is not None else "–"
        cells = [pipeline, str(first["n_test"]), constant, f"{first['initial']:.3f}"]
        for arm in arms:
            r = by.get(arm)
            cells.append(f"{r['optimized']:.3f} (p={r['p_value']:.2g}, {r['search_steps']} steps)" if r else "–")
        print("| " + " | ".join(cells) + " |")
    print("\nNew model calls to score one candidate on dev, by the step it changes (mean over candidates):\n")
    print("| pipeline | arm | step changed | with upstream reuse | rerunning every step |")
    print("|---|---|---|---|---|")
    for r in rows:
        for step, (new, rerun) in r["candidate_calls"].items():
            print(f"| {r['pipeline']} | {r['arm']} | {step} | {new:.1f} | {rerun:.1f} |")


if __name__ == "__main__":
    main()

"""promptci's gepa against DSPy's GEPA (dspy 3.4.1) on the same tasks, the same model and split.

Both sides call the same SmolLM2-135M-Instruct (the converted copy promptci caches), served by
llm-katan on this machine, at temperature 0. Per task (default: the two shipped tasks that pass
the headroom screen), with the seeded 0.2/0.2/0.6 split promptci's optimizer uses:

- promptci: ``--method gepa`` on the task's shipped prompt, ``--budget calls=N`` (task and
  reflection calls together), the held-out test scored before and after;
- DSPy: ``dspy.Predict`` whose instruction starts as that prompt's system message and whose
  input is the user turn promptci renders for each case, optimized by ``dspy.GEPA`` with
  ``max_metric_calls=N`` (reflection calls come on top), in its own environment
  (``--dspy-python``). Its held-out answers, before and after, are scored by the suite's own
  scorer, so both sides are judged alike.

Each side's held-out accuracy, the exact McNemar p of its after against its before, and the best
constant answer on the same test cases are printed, with the calls each side made.

Usage: python benchmarks/vs_dspy_gepa.py --dspy-python /path/to/venv/bin/python
       [--tasks causal_judgment,date_understanding] [--budget 150] [--limit 100] [--seed 0] [--json out.json]
(set up DSPy's side with: python3 -m venv V && V/bin/pip install dspy==3.4.1)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.evals.plan import build_plan  # noqa: E402
from promptci.evals.scoring import make_scorer  # noqa: E402
from promptci.optimize.output import paired_cases  # noqa: E402
from promptci.optimize.session import optimize  # noqa: E402
from promptci.optimize.settings import Settings  # noqa: E402
from promptci.optimize.split import split_cases  # noqa: E402
from promptci.project import Project  # noqa: E402
from promptci.providers import models  # noqa: E402
from tests.conftest import start_katan, stop_katan  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimize import Progress, make_repo  # noqa: E402

SPLIT = (0.2, 0.2, 0.6)
MODEL = "smollm2"


def serve_from(repo: Path, url: str) -> None:
    """Point the task's project at the llm-katan server, for its task and optimizer model alike."""
    config = (repo / "promptci.yaml").read_text()
    model = f"model:\n  provider: openai\n  model: {MODEL}\n  params: {{base_url: '{url}', concurrency: 4}}\n"
    (repo / "promptci.yaml").write_text(config.replace("model:\n", model, 1))
    subprocess.run(["git", "commit", "-qam", "served by llm-katan"], cwd=repo, check=True)


def dspy_task(repo: Path, task: str, url: str, args: argparse.Namespace) -> tuple[dict[str, Any], Any, Any, Any]:
    """What DSPy's side is given: the split promptci uses, each case as promptci renders it."""
    project = Project.discover(repo)
    plan = build_plan(project, [repo / f"evals/{task}.yaml"])
    (t,) = plan.tasks
    split = split_cases(t.cases, SPLIT, args.seed)
    chats = {i.case.id: i.request.chat for i in plan.items if i.request is not None}
    scorer = t.suite.scorers[0]

    def row(case: Any) -> dict[str, Any]:
        chat = chats[case.id]
        choices = scorer.choices if scorer.choices is not None else case.data[scorer.choices_from]
        expected = case.expected[0] if isinstance(case.expected, list) else case.expected
        return {"question": chat[-1]["content"], "expected": str(expected), "choices": [str(c) for c in choices]}

    system = next(m["content"] for m in chats[t.cases[0].id] if m["role"] == "system")
    body = {
        "base_url": url, "model": MODEL, "instruction": system, "budget": args.budget, "seed": args.seed,
        "max_tokens": args.dspy_max_tokens, "reflection_max_tokens": 160, "threads": 4,
        "train": [row(c) for c in split.train], "dev": [row(c) for c in split.dev],
        "test": [row(c) for c in split.test],
    }  # fmt: skip
    return body, split, make_scorer(t, project), project


def scored(scorer: Any, cases: list[Any], answers: list[str | None]) -> dict[str, float]:
    """Each case's score by the suite's scorer; a reply DSPy could not parse is a wrong answer."""
    return {c.id: (scorer.score(a, c)[1] if a is not None else 0.0) for c, a in zip(cases, answers, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dspy-python", type=Path, required=True, help="a Python with dspy==3.4.1 installed")
    parser.add_argument("--tasks", default="causal_judgment,date_understanding")
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dspy-max-tokens", type=int, default=64, help="DSPy's reply format needs more than 16")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = ROOT / "evals/data/bigbench"
    model_dir = models.converted_dir(Path(models.resolve(None, ROOT).location))
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        flags = ("-b", "transformers", "--no-quantize", "-d", "cpu", "--max-concurrent", "4")
        server = start_katan(tmp, str(model_dir), *flags)
        try:
            for task in args.tasks.split(","):
                repo = make_repo(tmp / "promptci", task, data, args.limit, None)
                serve_from(repo, server.base_url)
                print(f"{task} · promptci gepa", flush=True)
                started = time.perf_counter()
                settings = Settings(
                    method="gepa", steps=1000, candidates=4, seed=args.seed, budget={"calls": float(args.budget)},
                    split=SPLIT,
                )  # fmt: skip
                outcome = optimize(
                    Project.discover(repo), task, suite=task, settings=settings, dry_run=True, reporter=Progress("gepa")
                ).outcome
                ours = paired_cases(outcome.test_before.per_case, outcome.test_after.per_case, 1.0).result
                ours_wall = time.perf_counter() - started
                print(f"{task} · DSPy GEPA", flush=True)
                body, split, scorer, _ = dspy_task(repo, task, server.base_url, args)
                out = tmp / f"dspy-{task}.json"
                command = [str(args.dspy_python), str(ROOT / "benchmarks/dspy_gepa_side.py")]
                subprocess.run(command, input=json.dumps({**body, "out": str(out)}), text=True, check=True)
                theirs_out = json.loads(out.read_text())

                before, after = (
                    scored(scorer, split.test, theirs_out[k]) for k in ("initial_answers", "optimized_answers")
                )
                theirs = paired_cases(before, after, 1.0).result
                constant = outcome.constant_test
                row = {
                    "task": task,
                    "n_test": ours.n,
                    "constant": constant.score if constant else None,
                    "constant_label": constant.label if constant else None,
                    "promptci_before": ours.base_mean,
                    "promptci_after": ours.head_mean,
                    "promptci_p": ours.p_value,
                    "promptci_calls": outcome.usage.calls,
                    "promptci_winner": outcome.describe(outcome.best.text) if outcome.changed else "(unchanged)",
                    "promptci_wall_s": ours_wall,
                    "dspy_before": theirs.base_mean,
                    "dspy_after": theirs.head_mean,
                    "dspy_p": theirs.p_value,
                    "dspy_task_calls": theirs_out["task_calls"],
                    "dspy_reflection_calls": theirs_out["reflection_calls"],
                    "dspy_instruction": theirs_out["instruction"],
                    "dspy_wall_s": theirs_out["wall_s"],
                    "dspy_unparsed": theirs_out["unparsed"],
                }
                rows.append(row)
                print(json.dumps(row, indent=2), flush=True)
                if args.json:  # after each task, so that a later failure loses nothing finished
                    args.json.write_text(json.dumps(rows, indent=2))
        finally:
            stop_katan(server)
    print(f"\nHeld-out accuracy, {args.limit} cases per task split {SPLIT} (seed {args.seed}), budget {args.budget}:\n")
    print("| task | n test | best constant answer | promptci initial | promptci gepa | DSPy initial | DSPy GEPA |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        constant = f"{r['constant']:.3f} ({r['constant_label']})" if r["constant"] is not None else "–"
        print(
            f"| {r['task']} | {r['n_test']} | {constant} | {r['promptci_before']:.3f} |"
            f" {r['promptci_after']:.3f} (p={r['promptci_p']:.2g}, {r['promptci_calls']} calls) |"
            f" {r['dspy_before']:.3f} | {r['dspy_after']:.3f} (p={r['dspy_p']:.2g},"
            f" {r['dspy_task_calls']} + {r['dspy_reflection_calls']} reflection calls) |"
        )


if __name__ == "__main__":
    main()

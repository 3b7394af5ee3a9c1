"""Held-out accuracy of the initial prompt and of each optimizer, at equal budgets, beside the
best constant answer, on BIG-bench-style tasks, with the default model as task and optimizer.

Methods are any registered name (opro, gpo, gepa, textgrad, greater, catalyst, demos), ``auto``,
or a chain such as ``gpo+demos``, run as ``promptci optimize --method`` runs them: a chain's links
share the one budget, each starting from the prompt the link before chose.
``--seconds S`` gives every optimization the same wall-clock search time instead of the same
number of model calls, with a 0.4/0.2/0.4 split. ``--optimizer-model`` sets the model proposing
candidates (``openai:NAME`` with ``OPENAI_BASE_URL`` for a server); the task model stays the
suite's.

Each (task, method) runs in its own fresh repository and results database, so no method is
helped by another's cached answers, and all share the seeded split: the same test cases score
every prompt. The budget counts new model calls, optimizer and task alike; the final test
scoring is outside it. For each run the winner's text, its refused candidates by reason and
its held-out p (exact McNemar against the initial prompt) are printed.

``--data DIR`` takes any folder of BIG-bench-style JSONL (``{input, target, choices?}``); a
task this project does not ship gets a plain prompt and a choice (or exact-match) suite.

``--keep DIR`` keeps every run's repository and results database under DIR (one folder per
method and task), so trajectories and per-case outputs can be read afterwards with
``promptci -C DIR/METHOD/TASK db "select * from trajectory"``.

Usage: python benchmarks/optimize.py [--tasks a,b] [--methods gpo,demos,gepa,gpo+demos] [--budget 150 | --seconds 120]
       [--candidates 4] [--limit 100] [--seed 0] [--batch-size 16] [--data DIR] [--json out.json] [--keep DIR]
       [--optimizer-model openai:NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.optimize import methods  # noqa: E402
from promptci.optimize.auto import Unmoved  # noqa: E402
from promptci.optimize.outcome import Outcome  # noqa: E402
from promptci.optimize.output import paired_cases  # noqa: E402
from promptci.optimize.session import optimize  # noqa: E402
from promptci.optimize.settings import Settings  # noqa: E402
from promptci.project import Project  # noqa: E402


def make_repo(tmp: Path, task: str, data: Path, limit: int, batch_size: int | None) -> Path:
    """A fresh repository with the task's prompt, suite and data (the shipped ones where they exist)."""
    repo = tmp / task
    (repo / "prompts").mkdir(parents=True)
    (repo / "evals").mkdir()
    config = (ROOT / "promptci.yaml").read_text().split("\noptimize:")[0]  # its passes name prompts not copied
    if batch_size:
        config = config.replace("  max_tokens: 16\n", f"  max_tokens: 16\n  params: {{batch_size: {batch_size}}}\n")
    (repo / "promptci.yaml").write_text(config)
    (repo / f"evals/{task}.jsonl").write_text((data / f"{task}.jsonl").read_text())
    shipped = ROOT / f"prompts/{task}.yaml"
    if shipped.is_file():
        prompt = shipped.read_text()
        suite = (ROOT / f"evals/{task}.yaml").read_text().replace(f"data/bigbench/{task}.jsonl", f"{task}.jsonl")
        suite = suite.replace("limit: 40", f"limit: {limit}")
    else:
        prompt, suite = plain_task(task, data / f"{task}.jsonl", limit)
    (repo / f"prompts/{task}.yaml").write_text(prompt)
    (repo / f"evals/{task}.yaml").write_text(suite)
    (repo / ".gitignore").write_text(".promptci/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "task"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def plain_task(task: str, path: Path, limit: int) -> tuple[str, str]:
    """A prompt and suite for a BIG-bench-style task this project does not ship."""
    first = json.loads(path.read_text().splitlines()[0])
    options = "choices" in first
    user = "{{ input }}" + ("\nOptions: {{ choices | join(', ') }}" if options else "") + "\nAnswer:"
    prompt = (
        f"name: {task}\nmessages:\n  - role: system\n    content: Answer the question with the answer alone.\n"
        f"  - role: user\n    content: {json.dumps(user)}\nmodel:\n  temperature: 0\n  max_tokens: 16\n"
        "variables:\n  input: {type: string}\n" + ("  choices: {type: array}\n" if options else "")
    )
    scorer = "  - type: choice\n    choices_from: choices\n" if options else "  - type: exact\n"
    columns = "    input: input\n" + ("    choices: choices\n" if options else "")
    suite = (
        f"prompts: [{task}]\ndataset:\n  path: {task}.jsonl\n  vars:\n{columns}  expected: target\n"
        f"  limit: {limit}\nscorers:\n{scorer}"
    )
    return prompt, suite


class Progress:
    """A line per step, so a long benchmark shows where it is."""

    def __init__(self, label: str) -> None:
        self.label = label

    def phase(self, text: str) -> None:
        print(f"  {self.label}: {text}", flush=True)

    def step(self, step: int, total: int, best: float, usage: Any, note: str, split: str = "dev") -> None:
        print(f"  {self.label} step {step}: best on {split} {best:.3f} · {usage.calls} calls · {note}", flush=True)


def run_method(repo: Path, task: str, name: str, args: argparse.Namespace) -> Outcome | Unchanged:
    """One optimization of ``task`` by ``name`` (a method, ``auto`` or a chain such as ``gpo+demos``),
    as ``promptci optimize --dry-run`` runs it: a chain shares the one budget among its links."""
    budget = {"seconds": args.seconds} if args.seconds else {"calls": float(args.budget)}
    sizes = {"examples": args.examples, "reasoning_tokens": args.reasoning_tokens}
    links = name.split("+")
    known = {n: methods.get(n).Config.model_fields for n in links if n != "auto"}  # GReaTer's sizes, where taken
    own = {n: {k: v for k, v in sizes.items() if k in fields} for n, fields in known.items()}
    settings = Settings(
        method=name, steps=1000, candidates=args.candidates, seed=args.seed, budget=budget,
        config=own if len(links) > 1 else own.get(name, {}),
        split=(0.4, 0.2, 0.4) if args.seconds else (0.2, 0.2, 0.6),
    )  # fmt: skip
    try:
        result = optimize(
            Project.discover(repo), task, suite=task, settings=settings, dry_run=True,
            optimizer_model=args.optimizer_model, reporter=Progress(name),
        )  # fmt: skip
    except Unmoved as exc:  # auto found no lever that moves the model: the prompt stays as it is
        print(f"  {exc.message}", flush=True)
        return unchanged(repo, task, settings, exc.probe.calls)
    return result.outcome


@dataclass
class Unchanged:
    """What a chain link that changed nothing reports: the initial prompt's test score, twice."""

    test_before: Any
    test_after: Any
    constant_test: Any
    usage: Any
    changed: bool = False
    held_back: str = ""

    def rejected(self) -> dict[str, int]:
        return {}

    def describe(self, text: str) -> str:
        return text

    @property
    def best(self) -> Any:
        return SimpleNamespace(text="(unchanged)")


def unchanged(repo: Path, task: str, settings: Settings, calls: int) -> Unchanged:
    """The initial prompt scored on the test split, as an optimization that changed nothing reports it."""
    from promptci.evals.answers import Usage
    from promptci.evals.baseline import best_constant
    from promptci.evals.scoring import make_scorer
    from promptci.optimize.evaluate import Evaluator
    from promptci.optimize.session import resolve_task
    from promptci.optimize.split import split_cases

    project = Project.discover(repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    found = resolve_task(project, task, task, head, None)
    test = split_cases(found.cases, settings.split, settings.seed).test
    evaluator = Evaluator(project, found)
    scored = evaluator.score(evaluator.initial, test)
    constant = best_constant(found.suite, make_scorer(found, project), test)
    return Unchanged(scored, scored, constant, Usage(calls=calls))


def held_out(outcome: Outcome | Unchanged) -> tuple[float, float, float, int]:
    """The initial prompt against the chosen one, paired on the test cases: before, after, p, n."""
    r = paired_cases(outcome.test_before.per_case, outcome.test_after.per_case, 1.0).result
    return r.base_mean, r.head_mean, r.p_value, r.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "evals/data/bigbench", help="a folder of task JSONL")
    parser.add_argument("--tasks", help="comma-separated (default: every task in --data)")
    parser.add_argument("--methods", default="gpo,demos,gepa,gepa+demos", help="methods, or chains such as gpo+demos")
    parser.add_argument("--budget", type=int, default=150, help="new model calls per optimization")
    parser.add_argument("--seconds", type=float, help="a wall-clock budget per optimization instead of calls")
    parser.add_argument("--examples", type=int, default=8, help="GReaTer: train cases per step")
    parser.add_argument("--reasoning-tokens", type=int, default=64, help="GReaTer: reasoning length")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--limit", type=int, default=100, help="cases per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, help="the local model's batch size (default 16)")
    parser.add_argument("--optimizer-model", help="the model proposing candidates, as optimize takes it")
    parser.add_argument("--json", type=Path, help="write rows here after each run; rows already there are kept")
    parser.add_argument("--keep", type=Path, help="keep each run's repository and database under this folder")
    args = parser.parse_args()
    tasks = args.tasks.split(",") if args.tasks else sorted(p.stem for p in args.data.glob("*.jsonl"))

    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    done = json.loads(args.json.read_text()) if args.json and args.json.is_file() else []
    others = [
        r for r in done if not (r["task"] in tasks and r["method"] in args.methods.split(","))
    ]  # kept as they are
    rows = [r for r in done if r not in others]
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        for task in tasks:
            for name in args.methods.split(","):
                if any(r["task"] == task and r["method"] == name for r in rows):
                    print(f"{task} · {name}: in {args.json} already", flush=True)
                    continue
                print(f"{task} · {name}", flush=True)
                started = time.perf_counter()
                repo = make_repo(Path(tmp) / name, task, args.data, args.limit, args.batch_size)
                outcome = run_method(repo, task, name, args)
                before, after, p, n = held_out(outcome)
                constant = outcome.constant_test
                row = {
                    "task": task,
                    "method": name,
                    "optimizer_model": args.optimizer_model,
                    "n_test": n,
                    "initial": before,
                    "optimized": after,
                    "p_value": p,
                    "constant": constant.score if constant else None,
                    "constant_label": constant.label if constant else None,
                    "calls": outcome.usage.calls,
                    "wall_s": time.perf_counter() - started,
                    "winner": outcome.describe(outcome.best.text) if outcome.changed else "(unchanged)",
                    "links": [list(link) for link in getattr(outcome, "links", None) or []],
                    "refused": outcome.rejected(),
                    "held_back": outcome.held_back,
                }
                rows.append(row)
                if args.json:  # after every run, so a stopped benchmark goes on from where it was
                    args.json.write_text(json.dumps(others + rows, indent=2))
                print(f"  test {before:.3f} -> {after:.3f} (p={p:.2g}, n={n}); constant answer {constant}", flush=True)
                refused = ", ".join(f"{k} {v}" for k, v in outcome.rejected().items()) or "none"
                print(f"  winner: {row['winner']}\n  refused: {refused}", flush=True)
                for method, dev_before, dev_after, calls, changed in row["links"]:
                    print(f"  link {method}: dev {dev_before} -> {dev_after}, {calls} calls, changed: {changed}")
                if outcome.held_back:
                    print(f"  held back: {outcome.held_back}", flush=True)
    report(rows, tasks, args)
    if args.json:
        args.json.write_text(json.dumps(others + rows, indent=2))


def report(rows: list[dict[str, Any]], tasks: list[str], args: argparse.Namespace) -> None:
    print()
    split = "0.4/0.2/0.4" if args.seconds else "0.2/0.2/0.6"
    spend = f"{args.seconds:g} s of search" if args.seconds else f"{args.budget} new model calls"
    print(f"Held-out test accuracy, {args.limit} cases per task split {split} (seed {args.seed}), {spend} per")
    proposer = f"{args.optimizer_model} proposing" if args.optimizer_model else "the same model proposing"
    print(f"optimization (shared by a chain's links), {args.candidates} candidates per step, the task model (the")
    print(f"default SmolLM2-135M unless promptci.yaml says otherwise) answering and {proposer};")
    print("p: exact McNemar against initial.")
    print()
    chosen = args.methods.split(",")
    print("| task | n test | best constant answer | initial | " + " | ".join(chosen) + " |")
    print("|---" * (4 + len(chosen)) + "|")
    for task in tasks:
        by = {r["method"]: r for r in rows if r["task"] == task}
        first = next(iter(by.values()))
        constant = f"{first['constant']:.3f} ({first['constant_label']})" if first["constant"] is not None else "–"
        cells = [task, str(first["n_test"]), constant, f"{first['initial']:.3f}"]
        for m in chosen:
            r = by.get(m)
            mark = " ✓" if r and r["constant"] is not None and r["optimized"] > r["constant"] else ""
            cells.append(f"{r['optimized']:.3f} (p={r['p_value']:.2g}){mark}" if r else "–")
        print("| " + " | ".join(cells) + " |")
    print("\n✓: above the best constant answer on test.")


if __name__ == "__main__":
    main()

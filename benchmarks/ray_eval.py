"""The Ray executor's cost on one machine: a plain `promptci eval` against `--executor ray`.

In a copy of the `promptci init` example with a suite of N generated reviews (the embedded
model, caches off), side by side in one run: the whole command, plain, and with the cases spread
over two Ray actors on a local cluster the command starts (`ray.init` with as many CPUs as
actors, one torch thread each). Also the model's time in each (the batches' latency summed, from
the `-o` report) and the stored answers compared. On two cores Ray cannot be faster: both
actors share the cores one process would use; what this measures is the overhead per case,
which is what a cluster pays before it adds machines.

Usage: python benchmarks/ray_eval.py [--cases 200] [--actors 2] [--runs 2]
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
INIT = ROOT / "promptci/templates/init"
WORDS = ["great", "awful", "fine", "broken", "lovely", "useless", "perfect", "cheap", "sturdy", "flimsy"]


def new_repo(path: Path, cases: int) -> Path:
    path.mkdir()
    shutil.copy(INIT / "promptci.yaml", path / "promptci.yaml")
    shutil.copytree(INIT / "prompts", path / "prompts")
    (path / "evals").mkdir()
    with (path / "evals/many.jsonl").open("w") as fh:
        for i in range(cases):
            a, b = WORDS[i % 10], WORDS[(i // 10) % 10]
            label = "positive" if WORDS.index(a) % 2 == 0 else "negative"
            fh.write(json.dumps({"review": f"It is {a} and {b}, item {i}.", "sentiment": label}) + "\n")
    (path / "evals/many.yaml").write_text(
        "prompts: [sentiment]\nscorers: [{type: choice, choices: [positive, negative]}]\n"
        "dataset: {path: many.jsonl, vars: {review: review}, expected: sentiment}\n"
    )
    (path / ".gitignore").write_text(".promptci/\n")
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "example"]):
        subprocess.run(["git", *step], cwd=path, check=True, capture_output=True)
    return path


def timed(repo: Path, *extra: str) -> tuple[float, float, list[str]]:
    """Wall seconds, model seconds, and the answers in case order."""
    out = repo / "report.json"
    command = [sys.executable, "-m", "promptci", "-C", str(repo), "eval", "many", "--no-cache", "-q", "-o", str(out)]
    env = {**os.environ, "PROMPTCI_WORKER": "0"}
    started = time.perf_counter()
    done = subprocess.run([*command, *extra], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"eval failed ({done.returncode}): {done.stderr[-2000:]}")
    results = sorted(json.loads(out.read_text())["results"], key=lambda r: r["case_id"])
    return wall, sum(r["latency_ms"] or 0 for r in results) / 1000, [r["output"] for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="best of N for each side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = new_repo(Path(tmp) / "repo", args.cases)
        plain = min(timed(repo) for _ in range(args.runs))
        spread = min(timed(repo, "--executor", "ray", "--actors", str(args.actors)) for _ in range(args.runs))
    same = sum(a == b for a, b in zip(plain[2], spread[2], strict=True))
    print(f"{args.cases} cases, the embedded model, {os.cpu_count()} cores; best of {args.runs}")
    print(f"   plain eval                  {plain[0]:6.1f} s whole command   {plain[1]:6.1f} s model time")
    print(f"   --executor ray ({args.actors} actors)  {spread[0]:6.1f} s whole command   {spread[1]:6.1f} s model time")
    print(f"   ray / plain: {spread[0] / plain[0]:.2f}x the wall time;"
          f" overhead {(spread[0] - plain[0]) / args.cases * 1000:+.0f} ms a case")  # fmt: skip
    print(f"   answers identical: {same} of {args.cases}")


if __name__ == "__main__":
    main()

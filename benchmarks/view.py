"""How fast the viewer answers over a large results database.

Builds a project whose database holds ``--results`` results (default 100,000: 20 runs of
5,000 cases, a tenth of them errored, a third failed), starts ``promptci view`` on it, and
times each page over HTTP, the median of ``--repeat`` loads after one warm-up: the runs list,
a run's first and last page of cases, its failed cases, a text search, a prompt's page and
the prompts index.

Usage: python benchmarks/view.py [--results 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.store import ResultRow, Store  # noqa: E402

RUNS = 20


def build(root: Path, total: int) -> list[str]:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    shutil.copy(ROOT / "promptci/templates/init/promptci.yaml", root / "promptci.yaml")
    shutil.copytree(ROOT / "promptci/templates/init/prompts", root / "prompts")
    shutil.copytree(ROOT / "promptci/templates/init/evals", root / "evals")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}  # fmt: skip
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "init"], check=True, env=env)
    per_run = total // RUNS
    ids = []
    start = datetime(2026, 1, 1)
    with Store(root / ".promptci/results.duckdb") as store:
        for r in range(RUNS):
            run_id = f"20260101-{r:06d}-bench"
            store.start_run(
                run_id, git_commit=f"{r:040x}", branch="main", dirty=False, command="bench", config_hash="c"
            )
            ids.append(run_id)
            rows = []
            for i in range(per_run):
                errored = i % 10 == 0
                passed = not errored and i % 3 != 0
                rows.append(
                    ResultRow(
                        run_id=run_id,
                        suite="sentiment",
                        suite_hash="s",
                        prompt="sentiment",
                        prompt_hash=f"{r:016x}",
                        prompt_commit=f"{r:040x}",
                        case_id=f"c{i:06d}",
                        case_name=f"case {i}",
                        repeat_index=0,
                        model_id="bench",
                        params_hash="p",
                        input=f"Review: item {i} was fine",
                        expected="positive",
                        output=None if errored else ("positive" if passed else "negative"),
                        scores=None,
                        score=None if errored else float(passed),
                        passed=None if errored else passed,
                        error="server said 500" if errored else None,
                        latency_ms=10.0,
                        tokens_in=20,
                        tokens_out=1,
                        cost=0.0,
                        cached=False,
                        created_at=start + timedelta(minutes=r, microseconds=i),
                    )
                )
            store.add_results(rows)
            store.finish_run(run_id, "complete")
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        began = time.perf_counter()
        ids = build(root, args.results)
        print(f"stored {args.results:,} results in {RUNS} runs ({time.perf_counter() - began:.0f} s)", flush=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "promptci", "-C", str(root), "view", "--port", str(port)])
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "/runs", timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.2)
            last = ids[-1]
            per_run = args.results // RUNS
            pages = {
                "prompts index": "/",
                "runs list": "/runs",
                "a run, first page of cases": f"/runs/{last}",
                "a run, last page of cases": f"/runs/{last}?offset={per_run - 50}",
                "a run, failed cases": f"/runs/{last}?status=failed",
                "a run, text search": f"/runs/{last}?q=item%204999",
                "a prompt (history of 20 versions)": "/prompts/sentiment",
            }
            print(f"\n| page over {args.results:,} results | median of {args.repeat} (s) | slowest (s) |")
            print("|---|---|---|")
            for name, path in pages.items():
                urllib.request.urlopen(url + path, timeout=60).read()  # warm-up
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    urllib.request.urlopen(url + path, timeout=60).read()
                    times.append(time.perf_counter() - t)
                print(f"| {name} | {statistics.median(times):.3f} | {max(times):.3f} |", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

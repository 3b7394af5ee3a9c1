"""The daily loop: a cold `promptci eval` against `eval --watch` re-running after a save.

In a copy of the `promptci init` example (24 sentiment reviews, the embedded model), side by side
in one run: the wall time of a cold `promptci eval sentiment` after each edit of the prompt (a new
process: imports, model load, then the cases the edit changed), and the time `eval --watch` takes
from the save to its summary, with the model kept loaded. Each edit changes the instruction, so
every case is asked again both ways.

Usage: python benchmarks/watch.py [--edits 3]
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "promptci/templates/init"


def new_repo(path: Path) -> Path:
    path.mkdir()
    shutil.copy(INIT / "promptci.yaml", path / "promptci.yaml")
    shutil.copytree(INIT / "prompts", path / "prompts")
    shutil.copytree(INIT / "evals", path / "evals")
    (path / ".gitignore").write_text(".promptci/\n")
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "example"]):
        subprocess.run(["git", *step], cwd=path, check=True, capture_output=True)
    return path


def edit(repo: Path, n: int) -> None:
    prompt = repo / "prompts/sentiment.yaml"
    text = re.sub(r"Answer with one word\.( \(\d+\))?", f"Answer with one word. ({n})", prompt.read_text())
    prompt.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold_repo, warm_repo = new_repo(Path(tmp) / "cold"), new_repo(Path(tmp) / "warm")
        cold = []
        for n in range(1, args.edits + 1):
            edit(cold_repo, n)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "promptci", "-C", str(cold_repo), "eval", "sentiment", "-q"],
                                  capture_output=True, text=True)  # fmt: skip
            cold.append(time.perf_counter() - started)
            assert done.returncode in (0, 1), done.stderr
        command = [sys.executable, "-m", "promptci", "-C", str(warm_repo), "eval", "sentiment", "--watch"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in proc.stdout or ():
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

        def until_watching() -> float:
            while True:
                line = lines.get(timeout=300)
                if "watching" in line:
                    return time.perf_counter()

        until_watching()  # the first run: imports and the model load
        warm = []
        for n in range(1, args.edits + 1):
            edit(warm_repo, n)
            saved = time.perf_counter()
            warm.append(until_watching() - saved)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    print("| edit | cold `eval` (s) | `--watch` after the save (s) |")
    print("|---|---|---|")
    for n, (c, w) in enumerate(zip(cold, warm, strict=True), 1):
        print(f"| {n} | {c:.2f} | {w:.2f} |")
    print(
        f"\nMedian: cold {median(cold):.2f} s, watch {median(warm):.2f} s: {median(cold) / median(warm):.1f}× faster."
    )


if __name__ == "__main__":
    main()

"""The runtime's cost, side by side in one run: a fresh process that imports promptci, loads a
prompt from a bundle and renders it once, as a ratio to `python -c pass`; and renders per second
in a loop, of a prompt loaded once and of `promptci.load` on every request (a key picking the
version of a 90/10 split each time).

The bundle is made here, from a temporary repository with the `promptci init` example prompt.
Usage: python benchmarks/runtime.py [--runs 30] [--renders 20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRIPT = (
    "import promptci; "
    "promptci.load('sentiment', label='production', key='user-1', bundle={bundle!r}).render(review='It broke.')"
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_bundle(tmp: Path) -> Path:
    import shutil

    project = tmp / "project"
    shutil.copytree(ROOT / "tests/fixtures/project", project)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "prompts")
    old = git(project, "rev-parse", "HEAD")
    path = project / "prompts/sentiment.yaml"
    path.write_text(path.read_text().replace("Review: {{ review }}", "Customer review: {{ review }}"))
    git(project, "commit", "-qam", "reword")
    cli = [sys.executable, "-m", "promptci", "-C", str(project)]
    subprocess.run([*cli, "label", "split", "sentiment", "production", f"{old}=0.9", "HEAD=0.1"], check=True)
    bundle = tmp / "bundle.json"
    subprocess.run([*cli, "bundle", "-o", str(bundle)], check=True, capture_output=True)
    return bundle


def fresh_processes(bundle: Path, runs: int) -> dict[str, float]:
    commands = {"python -c pass": "pass", "import + load + render": SCRIPT.format(bundle=str(bundle))}
    took: dict[str, list[float]] = {name: [] for name in commands}
    env = {k: v for k, v in os.environ.items() if k != "PROMPTCI_BUNDLE"}
    for _ in range(runs):
        for name, code in commands.items():  # interleaved, so both see the same machine
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            took[name].append(time.perf_counter() - start)
    return {name: median(times) for name, times in took.items()}


def renders(bundle: Path, count: int) -> dict[str, float]:
    import promptci

    prompt = promptci.load("sentiment", label="production", key="user-1", bundle=bundle)
    start = time.perf_counter()
    for i in range(count):
        prompt.render(review=f"review {i}")
    loaded_once = count / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(count):
        promptci.load("sentiment", label="production", key=f"user-{i}", bundle=bundle).render(review=f"review {i}")
    per_request = count / (time.perf_counter() - start)
    return {"render, prompt loaded once": loaded_once, "load (keyed) + render per request": per_request}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--renders", type=int, default=20_000)
    args = parser.parse_args()
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp))
        started = fresh_processes(bundle, args.runs)
        rates = renders(bundle, args.renders)
    bare, full = started["python -c pass"], started["import + load + render"]
    print(f"\nA fresh process, median of {args.runs} (interleaved):\n")
    print("| python -c pass | import promptci + load from a bundle + one render | over the interpreter | ratio |")
    print("|---|---|---|---|")
    print(f"| {bare * 1000:.0f} ms | {full * 1000:.0f} ms | +{(full - bare) * 1000:.0f} ms | {full / bare:.2f}x |")
    print(f"\nRenders per second, {args.renders:,} each:\n")
    print("| loop | renders/s |")
    print("|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()

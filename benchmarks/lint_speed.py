"""How long `promptci lint` takes on the example project, as a ratio to `python -c pass`.

Three cases, each run interleaved with `python -c pass` in one process so that
machine noise hits them alike:
  cold    no lint cache (a fresh CI clone);
  edited  one prompt changed since the last run (a typical pre-commit run);
  warm    nothing changed since the last run.
The project is copied to a temporary directory; this repository is not touched.
Usage: python benchmarks/lint_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = shutil.which("promptci", path=str(Path(sys.executable).parent)) or shutil.which("promptci")
    lint = [script, "lint"] if script else [sys.executable, "-m", "promptci", "lint"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for part in ("prompts", "pipelines", "evals"):
            shutil.copytree(ROOT / part, project / part)
        shutil.copy(ROOT / "promptci.yaml", project / "promptci.yaml")
        cache = project / ".promptci" / "cache" / "lint.json"
        edited = project / "prompts" / "navigate.yaml"
        original = edited.read_text()
        counter = iter(range(10**6))

        def edit() -> None:
            edited.write_text(original + f"# edit {next(counter)}\n")

        setups: dict[str, Callable[[], None]] = {
            "cold": lambda: cache.unlink(missing_ok=True),
            "edited": edit,
            "warm": lambda: None,
        }
        files = sum(len(list(project.glob(f"{part}/*.yaml"))) for part in ("prompts", "pipelines", "evals"))
        baseline: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in setups}
        wall(lint, project)  # compile .pyc files once
        for _ in range(args.runs):
            baseline.append(wall([sys.executable, "-c", "pass"], project))
            for name, setup in setups.items():
                setup()
                times[name].append(wall(lint, project))
    base = statistics.median(baseline)
    print(f"promptci lint on the example project ({files} files), median of {args.runs} interleaved runs")
    print(f"  python -c pass   {base * 1000:6.0f} ms")
    for name, values in times.items():
        t = statistics.median(values)
        print(f"  lint, {name:<9}  {t * 1000:6.0f} ms  = {t / base:5.2f}x python -c pass")


if __name__ == "__main__":
    main()

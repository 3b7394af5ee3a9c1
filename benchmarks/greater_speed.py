"""GReaTer's step time on each device and pass batch size, side by side in one run.

Each configuration (device x --grad-batch, and with --checkpointing also a checkpointed
twin) runs a short real optimization of sports_understanding with the default model from
the same seed; the step time is the median gap between consecutive steps (the first
step, which includes loading, is left out). Batch size 1 is one example per pass.

Usage: python benchmarks/greater_speed.py [--devices cpu,cuda] [--batches 1,8] [--checkpointing]
       [--steps 4] [--examples 8] [--reasoning-tokens 64] [--topk 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from optimize import make_repo  # noqa: E402

from promptci.optimize.session import optimize  # noqa: E402
from promptci.optimize.settings import Settings  # noqa: E402
from promptci.project import Project  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.times: list[float] = []

    def phase(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def step(self, step: int, total: int, best: float, usage: Any, note: str, split: str = "dev") -> None:
        self.times.append(time.perf_counter())
        print(f"  step {step}/{total}: best on {split} {best:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--batches", default="8", help="examples per forward/backward pass, comma-separated")
    parser.add_argument("--checkpointing", action="store_true", help="also time each with gradient checkpointing")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--reasoning-tokens", type=int, default=64)
    parser.add_argument("--topk", type=int, default=40)
    parser.add_argument("--limit", type=int, default=60)
    args = parser.parse_args()
    import os

    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    configs = [
        (device, int(batch), ckpt)
        for device in args.devices.split(",")
        for batch in args.batches.split(",")
        for ckpt in ((False, True) if args.checkpointing else (False,))
    ]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for device, batch, ckpt in configs:
            label = f"{device} batch {batch}" + (" checkpointed" if ckpt else "")
            print(f"{label}:", flush=True)
            repo = make_repo(Path(tmp) / label.replace(" ", "-"), "sports_understanding", args.limit, None)
            settings = Settings(
                method="greater", steps=args.steps, split=(0.4, 0.2, 0.4), device=device, dtype="float32",
                config={"examples": args.examples, "reasoning_tokens": args.reasoning_tokens, "topk": args.topk,
                        "batch": int(batch), "checkpointing": ckpt},
            )  # fmt: skip
            clock = Clock()
            optimize(Project.discover(repo), "sports_understanding", suite="sports_understanding",
                     settings=settings, dry_run=True, reporter=clock)  # fmt: skip
            gaps = [b - a for a, b in zip(clock.times, clock.times[1:], strict=False)]
            results[label] = statistics.median(gaps)
            print(f"  median step {results[label]:.2f} s over {len(gaps)} steps", flush=True)
    print()
    print(f"GReaTer step time, {args.examples} examples, {args.reasoning_tokens} reasoning tokens, top-{args.topk}:")
    slowest = max(results.values())
    for label, seconds in results.items():
        print(f"  {label}: {seconds:.2f} s/step ({slowest / seconds:.2f}x the slowest)")


if __name__ == "__main__":
    main()

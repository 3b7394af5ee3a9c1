"""`provider: vllm` against `provider: transformers` on the same suite, on a GPU.

In a copy of the `promptci init` example with N generated reviews (the embedded SmolLM2 through
its converted copy, greedy, caches off), side by side in one run: the whole `promptci eval`
with each provider, the cases per second of each (from the model time in its `-o` report), their
ratio, and how many greedy answers agree. Without vLLM or a CUDA GPU it says which and exits 2.

Usage: python benchmarks/vllm_speed.py [--cases 1000] [--runs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray_eval  # the same generated reviews, and the same timing
import yaml


def timed(repo: Path, provider: str) -> tuple[float, float, list[str]]:
    """Wall seconds, model seconds, and the answers in case order, on ``provider``."""
    config = repo / "promptci.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["model"] = {**(settings.get("model") or {}), "provider": provider}
    config.write_text(yaml.safe_dump(settings))
    return ray_eval.timed(repo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2, help="best of N for each side")
    args = parser.parse_args()
    if importlib.util.find_spec("vllm") is None:
        print("vllm is not installed: pip install 'promptci-gate[vllm]' on a machine with an NVIDIA GPU")
        raise SystemExit(2)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU here: provider: vllm needs one")
        raise SystemExit(2)
    with tempfile.TemporaryDirectory() as tmp:
        repo = ray_eval.new_repo(Path(tmp) / "repo", args.cases)
        local = min(timed(repo, "transformers") for _ in range(args.runs))
        served = min(timed(repo, "vllm") for _ in range(args.runs))
    same = sum(a == b for a, b in zip(local[2], served[2], strict=True))
    print(f"{args.cases} cases, SmolLM2-135M-Instruct, {torch.cuda.get_device_name(0)}; best of {args.runs}")
    for name, (wall, model, _) in (("transformers", local), ("vllm", served)):
        print(f"   {name:<13} {wall:6.1f} s whole command, {args.cases / model:8.1f} cases/s model time")
    ratio = local[1] / served[1]
    print(f"   vllm / transformers: {ratio:.2f}x the cases per second; answers agree {same}/{args.cases}")


if __name__ == "__main__":
    main()

"""How far `eval --estimate` is from what the run then uses, over a series of real runs.

In a copy of this repository's prompts and suites, on the default model: the first shard of the
suites runs once to give a history; then each later shard is estimated (its calls, its prompt
tokens by the model's own tokenizer, its output tokens at the median and the 10th–90th
percentiles of the answers seen so far) and run, with ``--no-cache``. Printed per run: the
estimate, what was used, and their ratio; the output tokens used against the spread estimated.

Usage: python benchmarks/estimate.py [--suites extract_address,route_request,disambiguation_qa] [--shards 6]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def promptci(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "promptci", "-C", str(repo), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default="extract_address,route_request,disambiguation_qa")
    parser.add_argument("--shards", type=int, default=6)
    args = parser.parse_args()
    suites = args.suites.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        for name in ("prompts", "evals", "pipelines"):
            shutil.copytree(ROOT / name, repo / name)
        shutil.copy(ROOT / "promptci.yaml", repo / "promptci.yaml")
        (repo / ".gitignore").write_text(".promptci/\n")
        for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "suites"]):
            subprocess.run(["git", *step], cwd=repo, check=True, capture_output=True)
        first = promptci(repo, "eval", *suites, "--shard", f"1/{args.shards}", "--no-cache", "-q")
        assert first.returncode in (0, 1), first.stderr
        print(f"History: shard 1/{args.shards} of {', '.join(suites)}.\n")
        print("| run | calls est./used | prompt tokens est. | used | used / est. | output tokens used |"
              " est. median | est. 10th–90th % | within | estimate took |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        ratios, within = [], 0
        for shard in range(2, args.shards + 1):
            part = ["--shard", f"{shard}/{args.shards}"]
            started = time.perf_counter()
            found = promptci(repo, "eval", *suites, *part, "--no-cache", "--estimate", "--format", "json")
            took = time.perf_counter() - started
            assert found.returncode == 0, found.stderr
            estimate = json.loads(found.stdout)
            done = promptci(repo, "eval", *suites, *part, "--no-cache", "-q")
            assert done.returncode in (0, 1), done.stderr
            with duckdb.connect(str(repo / ".promptci/results.duckdb"), read_only=True) as db:
                calls, tokens_in, tokens_out = db.execute(
                    "SELECT count(*), sum(tokens_in), sum(tokens_out) FROM results"
                    " WHERE run_id = (SELECT id FROM runs ORDER BY started_at DESC LIMIT 1) AND NOT cached"
                ).fetchone()
            ratio = tokens_in / estimate["prompt_tokens"]
            ratios.append(ratio)
            low, high = estimate["output_tokens_spread"] or (None, None)
            inside = low is not None and low <= tokens_out <= high
            within += inside
            print(
                f"| {shard} | {estimate['calls']}/{calls} | {estimate['prompt_tokens']:,} | {tokens_in:,} |"
                f" {ratio:.3f} | {tokens_out:,} | {estimate['output_tokens_expected']:,} | {low:,}–{high:,} |"
                f" {'yes' if inside else 'no'} | {took:.2f} s |"
            )
        print(f"\nPrompt tokens used / estimated: {min(ratios):.3f} to {max(ratios):.3f} over {len(ratios)} runs;")
        print(f"output tokens within the estimated spread in {within} of {len(ratios)}.")


if __name__ == "__main__":
    main()

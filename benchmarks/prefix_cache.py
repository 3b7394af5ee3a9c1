"""The shared-prefix cache, measured side by side in one run on this machine.

1. the machine's compute limit: torch's sustained matmul rate on the model's shapes;
2. generation on sports_understanding cases, zero-shot, 3-shot, 8-shot and after a ~1,000-token
   system message, with the cache on and off: cases per second, and model FLOP/s
   (2 x parameters x prompt and new tokens, per second) as a fraction of the limit (above 1 means
   the cache skipped work the plain path does);
3. torch's threads: one, against the cores this process may use (the default);
4. an optimizer step as whole `promptci optimize` processes (demos, and GPO), cache on and off;
5. a long shared prefix (~900 tokens of reference text and 8 demonstrations) against a one-line
   instruction, 32 cases, greedy, 4 new tokens, as whole `promptci eval` processes, cache on and off.

Usage: python benchmarks/prefix_cache.py [--cases 32] [--max-tokens 8] [--skip-processes]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.providers import models  # noqa: E402
from promptci.providers.base import Completion, GenParams, Request  # noqa: E402
from promptci.providers.local import DEFAULT_PREFIX_CACHE_MB, TransformersProvider  # noqa: E402
from promptci.providers.prefix import PrefixStore  # noqa: E402

DATA = ROOT / "evals/data/bigbench/sports_understanding.jsonl"
SYSTEM = "You are a sports expert. Answer with one word, plausible or implausible."
QUESTION = "Is the following sentence plausible?\nSentence: {}\nAnswer:"


def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.open()]


def reference_text(tokens: int, provider: TransformersProvider) -> str:
    """About ``tokens`` tokens of reference notes: sentences of the task, with their labels."""
    lines, text = [], ""
    for r in rows()[::-1]:
        lines.append(f"- {r['input']}: {r['target']}.")
        text = "Reference notes on earlier sentences:\n" + "\n".join(lines)
        if len(provider.encode(text)) >= tokens:
            break
    return text


def workload(name: str, n: int, max_tokens: int, provider: TransformersProvider) -> list[Request]:
    data = rows()
    cases, pool = data[:n], data[n:]
    params = GenParams(max_tokens=max_tokens)
    shots = {"zero-shot": 0, "3-shot": 3, "8-shot": 8}.get(name, 0)
    system = SYSTEM if name != "1,000-token system" else SYSTEM + "\n\n" + reference_text(1000, provider)
    demos: list[tuple[str, str]] = []
    for r in pool[:shots]:
        demos += [("user", QUESTION.format(r["input"])), ("assistant", r["target"])]
    return [Request((("system", system), *demos, ("user", QUESTION.format(r["input"]))), params) for r in cases]


def timed(provider: TransformersProvider, requests: list[Request]) -> tuple[float, list[Completion]]:
    out: list[Completion] = [Completion()] * len(requests)

    def done(i: int, c: Completion) -> None:
        out[i] = c

    start = time.perf_counter()
    provider.generate(requests, done, lambda: False)
    return time.perf_counter() - start, out


def matmul_limit(torch: object, hidden: int, inner: int) -> float:
    """Sustained FLOP/s of torch's matmul at the model's widest shapes, fp32."""
    t = torch  # type: ignore[assignment]
    x, w = t.randn(512, hidden), t.randn(hidden, inner)  # type: ignore[attr-defined]
    for _ in range(3):
        x @ w
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            x @ w
        best = min(best, time.perf_counter() - start)
    return 20 * 2 * 512 * hidden * inner / best


def generation(provider: TransformersProvider, args: argparse.Namespace, limit: float, params: int) -> None:
    print(f"2. generation, {args.cases} cases, {args.max_tokens} new tokens, batch {provider.batch_size}")
    print("   workload              prompt tok  shared   cache off          cache on           speed-up  same")
    for name in ("zero-shot", "3-shot", "8-shot", "1,000-token system"):
        requests = workload(name, args.cases, args.max_tokens, provider)
        encoded = [provider.encode(provider.format(r)) for r in requests]
        from promptci.providers.prefix import shared_prefix

        shared = shared_prefix(encoded)
        results = {}
        for switch in ("off", "on"):
            provider.prefixes = (
                PrefixStore(provider._extend, DEFAULT_PREFIX_CACHE_MB * 2**20) if switch == "on" else None
            )
            wall, out = timed(provider, requests)
            tokens = sum(len(e) for e in encoded) + sum(c.tokens_out for c in out)
            results[switch] = (wall, out, 2 * params * tokens / wall / limit)
        (off, a, f_off), (on, b, f_on) = results["off"], results["on"]
        same = sum(x.text == y.text for x, y in zip(a, b, strict=True))
        mean = sum(len(e) for e in encoded) / len(encoded)
        print(
            f"   {name:<20} {mean:8.0f}  {shared:6d}   {len(requests) / off:5.2f}/s {f_off:5.1%}   "
            f"{len(requests) / on:6.2f}/s {f_on:6.1%}   {off / on:5.2f}x   {same}/{len(requests)}"
        )


def threads(provider: TransformersProvider, args: argparse.Namespace) -> None:
    import torch

    from promptci.providers.local import available_cores

    requests = workload("3-shot", args.cases, args.max_tokens, provider)
    default = torch.get_num_threads()
    cores = available_cores()
    walls = {}
    for n in sorted({1, cores}):
        torch.set_num_threads(n)
        provider.prefixes = PrefixStore(provider._extend, DEFAULT_PREFIX_CACHE_MB * 2**20)
        walls[n], _ = timed(provider, requests)
    torch.set_num_threads(default)
    line = ", ".join(f"{n} thread{'s' * (n > 1)} {len(requests) / w:.2f} cases/s" for n, w in walls.items())
    print(f"3. threads, 3-shot, cache on: {line} (default here: {default}, cores available: {cores})")


def project(tmp: Path, name: str, system: str, demos: list[tuple[str, str]], cache: bool, n: int) -> Path:
    """A one-suite project over the first ``n`` sports cases, its prompt ``system`` and ``demos``."""
    path = tmp / name
    (path / "prompts").mkdir(parents=True)
    (path / "evals").mkdir()
    shutil.copy(DATA, path / "evals/data.jsonl")
    (path / "promptci.yaml").write_text(
        f"model: {{temperature: 0, max_tokens: 4, params: {{prefix_cache: {str(cache).lower()}}}}}\n"
    )
    messages = [{"role": "system", "content": system}]
    for q, a in demos:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": QUESTION.format("{{ sentence }}")})
    prompt = {"name": "p", "messages": messages, "variables": {"sentence": {"type": "string"}}}
    (path / "prompts/p.yaml").write_text(json.dumps(prompt))
    (path / "evals/s.yaml").write_text(
        "prompts: [p]\n"
        f"dataset: {{path: data.jsonl, vars: {{sentence: input}}, expected: target, limit: {n}}}\n"
        "scorers: [{type: choice, choices: [plausible, implausible]}]\n"
    )
    who = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for cmd in (["init", "-q"], ["add", "-A"], [*who, "commit", "-qm", "bench"]):
        subprocess.run(["git", *cmd], cwd=path, check=True)
    return path


def whole(path: Path, *argv: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "promptci", "-C", str(path), *argv], capture_output=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} in {path} failed: {done.stderr.decode()[-2000:]}")
    return wall


def processes(provider: TransformersProvider, n: int) -> None:
    data = rows()
    demos = [(QUESTION.format(r["input"]), r["target"]) for r in data[n : n + 8]]
    long_system = SYSTEM + "\n\n" + reference_text(900, provider)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        print(f"4. one optimizer step, whole `promptci optimize` processes ({n} cases, split 0.5/0.25/0.25)")
        for method in ("demos", "gpo"):
            walls = {}
            for cache in (False, True):
                path = project(base, f"opt-{method}-{cache}", SYSTEM, [], cache, n)
                walls[cache] = whole(
                    path, "optimize", "p", "--suite", "s", "--method", method, "--steps", "1", "--candidates", "4",
                    "--split", "0.5/0.25/0.25", "--dry-run",
                )  # fmt: skip
            print(
                f"   {method:<6} cache off {walls[False]:6.1f} s   cache on {walls[True]:6.1f} s"
                f"   -> {walls[False] / walls[True]:.2f}x"
            )
        print(f"5. `promptci eval`, {n} cases, 4 new tokens: a ~900-token reference and 8 demonstrations vs one line")
        for cache in (False, True):
            short = project(base, f"short-{cache}", SYSTEM, [], cache, n)
            long = project(base, f"long-{cache}", long_system, demos, cache, n)
            whole(short, "eval", "--no-cache")  # warm the OS file cache for both
            a = min(whole(short, "eval", "--no-cache") for _ in range(2))
            b = min(whole(long, "eval", "--no-cache") for _ in range(2))
            print(f"   cache {'on ' if cache else 'off'}: one line {a:5.1f} s, long prefix {b:5.1f} s -> {b / a:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--skip-processes", action="store_true", help="only the in-process measurements (1-3)")
    parser.add_argument("--only-processes", action="store_true", help="only the whole-process measurements (4-5)")
    args = parser.parse_args()
    import torch

    source = models.resolve(None, ROOT)
    provider = TransformersProvider(source, batch_size=16)
    config = provider.model.config
    params = sum(p.numel() for p in provider.model.parameters())
    limit = matmul_limit(torch, config.hidden_size, config.intermediate_size)
    threads_now = torch.get_num_threads()
    print(f"model {source.model_id}, {params / 1e6:.0f}M parameters, on {provider.device}, {threads_now} threads")
    print(
        f"1. compute limit: {limit / 1e9:.1f} GFLOP/s (fp32 matmul 512x{config.hidden_size} @ "
        f"{config.hidden_size}x{config.intermediate_size})"
    )
    timed(provider, workload("zero-shot", 4, 2, provider))  # warm-up
    if not args.only_processes:
        generation(provider, args, limit, params)
        threads(provider, args)
    if not args.skip_processes:
        processes(provider, args.cases)


if __name__ == "__main__":
    main()

"""Eval throughput, measured side by side in one run on this machine.

1. batched in-process generation vs one case at a time (same model, cases and process);
2. in-process vs the same cases through the openai provider against llm-katan serving the same
   converted model over HTTP;
3. a re-run of a 1,000-case suite with every answer cached (filled through llm-katan's echo
   backend, so the cached run does the real planning, rendering, lookups, scoring and writes);
4. cold start of the default model in a fresh process, after its first conversion.

Usage: python benchmarks/eval_speed.py [--cases 32] [--max-tokens 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.project import Project  # noqa: E402
from promptci.providers import models  # noqa: E402
from promptci.providers.base import Completion, GenParams, Request  # noqa: E402
from promptci.providers.local import TransformersProvider  # noqa: E402
from promptci.providers.openai_api import OpenAIProvider  # noqa: E402
from tests.conftest import start_katan, stop_katan  # noqa: E402


def timed_generate(provider: object, requests: list[Request]) -> tuple[float, list[Completion]]:
    out: list[Completion] = [Completion()] * len(requests)

    def done(i: int, c: Completion) -> None:
        out[i] = c

    start = time.perf_counter()
    provider.generate(requests, done, lambda: False)  # type: ignore[attr-defined]
    return time.perf_counter() - start, out


def sports_requests(n: int, max_tokens: int) -> list[Request]:
    from promptci.prompts.registry import Registry

    prompt = Registry(Project.discover(ROOT)).get("sports_understanding")
    rows = [json.loads(line) for line in (ROOT / "evals/data/bigbench/sports_understanding.jsonl").open()][:n]
    params = GenParams(max_tokens=max_tokens)
    return [Request(tuple((m["role"], m["content"]) for m in prompt.render(sentence=r["input"])), params) for r in rows]


def cached_rerun(tmp: Path) -> tuple[float, float]:
    project = tmp / "bench"
    (project / "prompts").mkdir(parents=True)
    (project / "evals").mkdir()
    (project / "promptci.yaml").write_text("")
    (project / "prompts/p.yaml").write_text("name: p\ntemplate: 'Item {{ n }}: is it even?'\nvariables: {n: integer}\n")
    with (project / "evals/data.jsonl").open("w") as fh:
        for i in range(1000):
            fh.write(json.dumps({"n": i, "label": "even" if i % 2 == 0 else "odd"}) + "\n")
    server = start_katan(tmp, "echo-model", "-b", "echo")
    try:
        params = json.dumps({"base_url": server.base_url, "concurrency": 16})
        (project / "evals/big.yaml").write_text(
            "prompts: [p]\n"
            f"model: {{provider: openai, model: echo-model, max_tokens: 8, params: {params}}}\n"
            "dataset: {path: data.jsonl, vars: {n: n}, expected: label}\n"
            "scorers: [{type: contains}]\n"
        )
        cmd = [sys.executable, "-m", "promptci", "-C", str(project), "eval", "-o", str(project / "o.json")]
        subprocess.run(cmd, check=False, capture_output=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True)
        wall = time.perf_counter() - start
        summary = json.loads((project / "o.json").read_text())
        assert summary["usage"]["cached"] == 1000, summary["usage"]
        return wall, summary["wall_s"]
    finally:
        stop_katan(server)


def cold_start() -> tuple[float, float]:
    code = (
        "import time; t0 = time.perf_counter(); import torch, transformers; t1 = time.perf_counter();"
        "from pathlib import Path; from promptci.providers import models;"
        "from promptci.providers.local import TransformersProvider;"
        "TransformersProvider(models.resolve(None, Path('.'))); t2 = time.perf_counter();"
        "print(t1 - t0, t2 - t1)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=os.environ)
    imports, load = (float(x) for x in out.stdout.split())
    return imports, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    source = models.resolve(None, ROOT)
    model_dir = models.converted_dir(Path(source.location))
    requests = sports_requests(args.cases, args.max_tokens)
    provider = TransformersProvider(source, batch_size=16)
    import torch

    device = f"{provider.device} ({torch.cuda.get_device_name(0)})" if provider.device == "cuda" else "cpu"
    print(
        f"model {source.model_id} on {device}, {len(requests)} sports_understanding cases, "
        f"{args.max_tokens} new tokens, torch threads {torch.get_num_threads()}"
    )
    timed_generate(provider, requests[:4])  # warm-up
    batched, outs = timed_generate(provider, requests)
    provider.batch_size = 1
    single, single_outs = timed_generate(provider, requests)
    provider.batch_size = 16
    same = sum(a.text == b.text for a, b in zip(outs, single_outs, strict=True))
    print(f"1. in-process, batch 16   {batched:7.2f} s  {len(requests) / batched:6.2f} cases/s")
    print(
        f"   in-process, batch 1    {single:7.2f} s  {len(requests) / single:6.2f} cases/s"
        f"   -> batching {single / batched:.2f}x faster ({same}/{len(requests)} identical outputs)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        server = start_katan(
            Path(tmp), str(model_dir), "-b", "transformers", "--no-quantize", "-d", "cpu", "--max-concurrent", "4"
        )
        try:
            http = OpenAIProvider(str(model_dir), base_url=server.base_url, concurrency=4, max_retries=0, timeout=600)
            timed_generate(http, requests[:2])  # warm-up
            over_http, _ = timed_generate(http, requests)
        finally:
            stop_katan(server)
        print(
            f"2. openai provider -> llm-katan (same model, 4 in flight)  {over_http:7.2f} s  "
            f"{len(requests) / over_http:6.2f} cases/s   -> in-process batched {over_http / batched:.2f}x faster"
        )
        rerun_wall, rerun_inside = cached_rerun(Path(tmp))
    print(
        f"3. 1,000-case suite, all cached: `promptci eval` {rerun_wall:.2f} s wall, {rerun_inside:.2f} s inside the run"
    )
    imports, load = cold_start()
    print(
        f"4. cold start after conversion: import torch+transformers {imports:.2f} s, load the model {load:.2f} s,"
        f" total {imports + load:.2f} s"
    )


if __name__ == "__main__":
    main()

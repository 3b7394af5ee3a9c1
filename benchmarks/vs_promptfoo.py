"""promptci against promptfoo on the same cases and the same model, end to end, in one run.

promptfoo sends each case to llm-katan, which serves SmolLM2 (the converted copy promptci
uses) over the OpenAI API with ``--concurrency`` requests in flight; promptci runs the model in
its own process: cold (a process of its own, as in CI) and warm (answered by the warm worker
that an earlier command started, as in the daily loop). All are whole commands timed from start
to exit, the answer caches off; the server is started and warmed before either runs. The time
promptci's model spent answering (from its `-o` report) is shown beside: the rest is starting Python,
importing torch and transformers, and loading the model, about 4 s here. Workloads: `promptci
init`'s two-shot sentiment prompt on its 24 reviews, and zero-shot sports_understanding on 40
and on all 300 cases.

promptfoo 0.120.0 is the last release that runs on Node 20. It is installed into ``--promptfoo``
(default ~/.cache/promptci-bench/promptfoo) on first use:
  npm install --ignore-scripts promptfoo@0.120.0 && npm rebuild better-sqlite3
  ln -sf dist/drizzle node_modules/promptfoo/drizzle

Usage: python benchmarks/vs_promptfoo.py [--concurrency 4] [--runs 2] [--promptfoo DIR]
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
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.providers import models  # noqa: E402
from tests.conftest import start_katan, stop_katan  # noqa: E402

INIT = ROOT / "promptci/templates/init"
VERSION = "0.120.0"


def install(where: Path) -> Path:
    binary = where / "node_modules/.bin/promptfoo"
    if binary.exists():
        return binary
    where.mkdir(parents=True, exist_ok=True)
    print(f"installing promptfoo {VERSION} into {where}", file=sys.stderr)
    npm = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", f"promptfoo@{VERSION}"]
    subprocess.run(npm, cwd=where, check=True)
    subprocess.run(["npm", "rebuild", "better-sqlite3"], cwd=where, check=True)
    link = where / "node_modules/promptfoo/drizzle"
    if not link.exists():
        link.symlink_to("dist/drizzle")
    return binary


def workloads() -> list[tuple[str, dict[str, Any], str, list[tuple[str, str]]]]:
    """(name, prompt file, variable, [(value, expected)])."""
    sentiment = yaml.safe_load((INIT / "prompts/sentiment.yaml").read_text())
    reviews = [json.loads(line) for line in (INIT / "evals/reviews.jsonl").open()]
    sports = yaml.safe_load((ROOT / "prompts/sports_understanding.yaml").read_text())
    rows = [json.loads(line) for line in (ROOT / "evals/data/bigbench/sports_understanding.jsonl").open()]
    return [
        ("two-shot sentiment (init)", sentiment, "review", [(r["review"], r["sentiment"]) for r in reviews]),
        ("zero-shot sports_understanding", sports, "sentence", [(r["input"], r["target"]) for r in rows[:40]]),
        ("zero-shot sports_understanding", sports, "sentence", [(r["input"], r["target"]) for r in rows]),
    ]


def promptfoo_config(
    tmp: Path, prompt: dict[str, Any], var: str, cases: list[tuple[str, str]], url: str, model: str, concurrency: int
) -> Path:
    (tmp / "prompt.json").write_text(json.dumps(prompt["messages"]))
    config = {
        "prompts": ["file://prompt.json"],
        "providers": [
            {
                "id": f"openai:chat:{model}",
                "config": {
                    "apiBaseUrl": url,
                    "apiKey": "unused",
                    "temperature": 0,
                    "max_tokens": prompt["model"]["max_tokens"],
                },
            }
        ],
        "tests": [{"vars": {var: value}, "assert": [{"type": "icontains", "value": want}]} for value, want in cases],
        "evaluateOptions": {"maxConcurrency": concurrency},
    }
    path = tmp / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def promptci_project(tmp: Path, prompt: dict[str, Any], var: str, cases: list[tuple[str, str]]) -> Path:
    path = tmp / "promptci"
    (path / "prompts").mkdir(parents=True)
    (path / "evals").mkdir()
    (path / "promptci.yaml").write_text("model: {temperature: 0}\n")
    (path / f"prompts/{prompt['name']}.yaml").write_text(yaml.safe_dump(prompt))
    with (path / "evals/cases.jsonl").open("w") as fh:
        for value, want in cases:
            fh.write(json.dumps({var: value, "expected": want}) + "\n")
    (path / "evals/suite.yaml").write_text(
        f"prompts: [{prompt['name']}]\n"
        f"dataset: {{path: cases.jsonl, vars: {{{var}: {var}}}, expected: expected}}\n"
        "scorers: [{type: contains}]\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    return path


def inside(project: Path) -> float:
    """The model's time in promptci's run, from its JSON report (the batches' time, summed over
    their cases): the command less starting Python, importing torch and transformers, loading
    the model, and storing results."""
    return sum(r["latency_ms"] or 0 for r in json.loads((project / "report.json").read_text())["results"]) / 1000


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1, 100):  # promptfoo exits 100 when an assertion fails
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall


def answered(out: Path) -> int:
    """Cases the model answered (a failed assertion is an answer; a provider error is not)."""
    results = json.loads(out.read_text())["results"]["results"]
    return sum(1 for r in results if (r.get("response") or {}).get("output") is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2, help="best of N for each side")
    parser.add_argument("--promptfoo", type=Path, default=Path.home() / ".cache/promptci-bench/promptfoo")
    args = parser.parse_args()
    if shutil.which("npm") is None:
        raise SystemExit("promptfoo needs Node.js and npm")
    promptfoo = install(args.promptfoo)
    model_dir = models.converted_dir(Path(models.resolve(None, ROOT).location))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_CONFIG_DIR": str(tmp / "pf-home")}
        env["PROMPTFOO_DISABLE_UPDATE"] = "1"
        runtime = Path(tempfile.mkdtemp(prefix="pcb", dir="/tmp"))  # short: a socket's path is bounded
        server = start_katan(
            tmp, str(model_dir), "-b", "transformers", "--no-quantize", "-d", "cpu",
            "--max-concurrent", str(args.concurrency),
        )  # fmt: skip
        try:
            print(f"SmolLM2-135M-Instruct on the CPU; promptfoo {VERSION} -> llm-katan, {args.concurrency} in flight")
            print(
                "   workload                          cases   promptfoo   promptci cold   faster"
                "   promptci warm   faster   promptci's model time"
            )
            for k, (name, prompt, var, cases) in enumerate(workloads()):
                work = tmp / str(k)
                work.mkdir()
                config = promptfoo_config(work, prompt, var, cases, server.base_url, str(model_dir), args.concurrency)
                out = work / "out.json"
                pf_cmd = [str(promptfoo), "eval", "-c", str(config), "--no-cache", "--no-table", "--no-progress-bar"]
                pf_cmd += ["-j", str(args.concurrency), "-o", str(out)]
                timed(pf_cmd, work, env)  # warm: node's and the server's first start
                pf = min(timed(pf_cmd, work, env) for _ in range(args.runs))
                if answered(out) != len(cases):
                    raise SystemExit(f"promptfoo answered {answered(out)} of {len(cases)} cases: see {out}")
                project = promptci_project(work, prompt, var, cases)
                ours_cmd = [sys.executable, "-m", "promptci", "eval", "--no-cache", "-q", "-o", "report.json"]
                cold_env = {**env, "PROMPTCI_WORKER": "0"}
                pc, alone = min((timed(ours_cmd, project, cold_env), inside(project)) for _ in range(args.runs))
                warm_env = {**env, "PROMPTCI_WORKER": "1", "XDG_RUNTIME_DIR": str(runtime)}
                timed(ours_cmd, project, warm_env)  # starts the worker, which loads the model
                warm = min(timed(ours_cmd, project, warm_env) for _ in range(args.runs))
                subprocess.run([*ours_cmd[:3], "worker", "stop"], cwd=project, env=warm_env, check=True,
                               capture_output=True)  # fmt: skip
                print(
                    f"   {name:<33} {len(cases):5d}   {pf:7.1f} s  {pc:9.1f} s    {pf / pc:5.2f}x"
                    f"   {warm:9.1f} s    {pf / warm:5.2f}x   {alone:7.1f} s"
                )
        finally:
            stop_katan(server)
            shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()

"""How often each optimizer would open a PR when no prompt is better than any other.

The task model is a scripted OpenAI-compatible server on 127.0.0.1. Its answer to a case is a
seeded coin flip between the suite's two labels, keyed by the run and the whole request (the
instruction and the case): every instruction is exactly as good as every other in expectation,
so every branch the gate lets through is a false positive. The optimizer model writes clean,
varied instructions drawn from a pool, so candidates pass hygiene and are scored like real ones.

Each run is one optimization in a fresh repository, with its own seed (split, sampling and the
model's coins), at a small budget. It "opens a PR" when the gate would make a branch: a held-out
gain above zero, significant at alpha by the paired test, on a candidate that also beat the best
constant answer on dev. The rate should be at or under alpha.

Usage: python benchmarks/false_pr.py [--runs 200] [--methods gpo,opro,textgrad,gepa,demos]
       [--budget 60] [--cases 60] [--alpha 0.05] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.optimize.session import Result, optimize  # noqa: E402
from promptci.optimize.settings import Settings  # noqa: E402
from promptci.project import Project  # noqa: E402

LABELS = ("yes", "no")
INITIAL = "Answer with one word, yes or no."
OPENINGS = ("Read the statement", "Think about the statement", "Consider each word", "Check the claim", "Look closely")
MANNER = ("carefully", "twice", "step by step", "with care", "slowly", "once more", "in full", "calmly")
ENDINGS = (
    "then answer yes or no.",
    "and reply with one word, yes or no.",
    "then say yes or no.",
    "and answer in one word.",
)


def _coin(*parts: str) -> int:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()[0]


def answer(body: dict[str, Any]) -> str:
    """The scripted reply to one chat request."""
    model, messages = body["model"], body["messages"]
    text = "\n".join(str(m.get("content", "")) for m in messages)
    if model.startswith("task-"):
        return LABELS[_coin(model, text) % 2]
    # The optimizer: a clean instruction, different for each request (the tag, if prefilled, is kept out).
    k = _coin(model, text, str(body.get("seed")))
    return f"{OPENINGS[k % 5]} {MANNER[(k // 5) % 8]}, {ENDINGS[(k // 40) % 4]}"


@contextlib.contextmanager
def scripted_server() -> Iterator[str]:
    """The scripted model behind an OpenAI-compatible chat endpoint; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            reply = {
                "id": "scripted",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer(body)}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None: ...

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def make_repo(path: Path, url: str, run: int, cases: int) -> None:
    """A project whose one prompt is answered by the scripted model ``task-<run>``."""
    (path / "prompts").mkdir(parents=True)
    (path / "evals").mkdir()
    (path / "promptci.yaml").write_text(
        "db: .promptci/results.duckdb\n"
        f"model:\n  provider: openai\n  model: task-{run}\n  temperature: 0\n  max_tokens: 4\n"
        f"  params: {{base_url: '{url}', api_key_env: SCRIPTED_KEY, concurrency: 8}}\n"
    )
    (path / "prompts/claim.yaml").write_text(
        f"name: claim\nmessages:\n  - {{role: system, content: '{INITIAL}'}}\n"
        "  - {role: user, content: 'Statement {{ n }}: is it true?'}\nvariables:\n  n: {type: string}\n"
    )
    rows = [{"n": str(i), "label": LABELS[i % 2]} for i in range(cases)]
    (path / "evals/claims.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "evals/claims.yaml").write_text(
        "prompts: [claim]\nscorers: [{type: choice, choices: ['yes', 'no']}]\n"
        "dataset: {path: claims.jsonl, vars: {n: n}, expected: label}\n"
    )
    (path / ".gitignore").write_text(".promptci/\n")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "claims"]):
        subprocess.run(["git", *cmd], cwd=path, check=True)


def one_run(base: Path, url: str, method: str, run: int, args: argparse.Namespace) -> Result:
    """One optimization; its ``reason`` is "dry run" when the gate would open a branch."""
    path = base / f"{method}-{run}"
    make_repo(path, url, run, args.cases)
    settings = Settings(method=method, steps=1000, candidates=args.candidates, seed=run, budget={"calls": args.budget})
    result = optimize(
        Project.discover(path), "claim", suite="claims", settings=settings, alpha=args.alpha, dry_run=True,
        optimizer_model=f"openai:optimizer-{run}",
    )  # fmt: skip
    return result


def opens_pr(result: Result) -> bool:
    return result.reason == "dry run"  # the gate passed: a real run would branch and open a PR


def false_pr_rate(method: str, runs: int, args: argparse.Namespace, base: Path, url: str) -> tuple[int, int]:
    """Branches opened, and runs made."""
    opened = sum(opens_pr(one_run(base, url, method, run, args)) for run in range(runs))
    return opened, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--methods", default="gpo,opro,textgrad,gepa,demos")
    parser.add_argument("--budget", type=int, default=60, help="new model calls per optimization")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    rows = []
    with scripted_server() as url, tempfile.TemporaryDirectory() as tmp:
        # The optimizer model is named as openai:optimizer-<run>: the same server, found through the environment.
        os.environ.update(SCRIPTED_KEY="scripted", OPENAI_API_KEY="scripted", OPENAI_BASE_URL=url)
        for method in args.methods.split(","):
            started = time.perf_counter()
            opened, runs = false_pr_rate(method, args.runs, args, Path(tmp), url)
            rows.append({"method": method, "runs": runs, "opened": opened, "rate": opened / runs})
            print(
                f"{method}: {opened} of {runs} runs would open a PR ({time.perf_counter() - started:.0f} s)", flush=True
            )
    print()
    print(f"Prompt-independent random answers, {args.cases} cases split 0.2/0.2/0.6, {args.budget} new calls per run,")
    print(f"{args.candidates} candidates per step, alpha {args.alpha:g}:")
    print()
    print("| method | runs | PRs opened | rate | at or under alpha |")
    print("|---|---|---|---|---|")
    for r in rows:
        ok = "yes" if r["rate"] <= args.alpha else "**no**"
        print(f"| {r['method']} | {r['runs']} | {r['opened']} | {r['rate']:.3f} | {ok} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

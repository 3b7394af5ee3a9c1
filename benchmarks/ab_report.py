"""`promptci ab report` at traffic scale, and what the hostile-input checks cost on valid input.

  load     --lines outcome lines (about 250 bytes each, as `prompt.record()` writes them) loaded
           into a new results database: framed in Python, parsed and checked by duckdb, stored once;
           then the same log again (every line already stored). Beside it, the floor: duckdb's
           read_json straight into the table, with no check, no redaction and no line numbers.
  regex    a suite's `regex` scorer and a parse rule on RE2 against Python's re, over --replies
           ordinary replies (interleaved, best of --runs).
  pull     pulling --runs-published published runs with every file's decoded sizes and values
           checked, against the same pull with those checks off.
Everything is built in a temporary directory; this repository is not touched.
Usage: python benchmarks/ab_report.py [--lines N] [--replies N] [--runs N] [--runs-published N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from promptci.outcomes import MAX_OUTCOME
from promptci.patterns import compile_user
from promptci.release.ab import load_logs
from promptci.store import Store


def write_log(path: Path, lines: int) -> None:
    rng = random.Random(0)
    versions = ["3f2a9c1e4b7d", "8e1b0d2c6a95"]
    with path.open("w") as fh:
        for start in range(0, lines, 10_000):
            chunk = []
            for _ in range(min(10_000, lines - start)):
                line = {
                    "v": 1,
                    "id": os.urandom(8).hex(),
                    "ts": "2026-12-01T10:00:00.000+00:00",
                    "prompt": "sentiment",
                    "label": "production",
                    "version": rng.choice(versions),
                    "commit": "c" * 40,
                    "key": os.urandom(8).hex(),
                    "outcome": rng.random() < 0.55,
                    "metadata": {"route": "/checkout", "latency_ms": rng.randint(50, 900)},
                }
                chunk.append(json.dumps(line, separators=(",", ":")))
            fh.write("\n".join(chunk) + "\n")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def load(lines: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "outcomes.jsonl"
        write_log(log, lines)
        size = log.stat().st_size
        with Store(Path(tmp) / "checked.duckdb") as store:
            first, loaded = timed(lambda: load_logs(store, [log]))
            again, seen = timed(lambda: load_logs(store, [log]))
        assert loaded.new == lines and seen.seen == lines, (loaded, seen)  # type: ignore[attr-defined]
        with Store(Path(tmp) / "floor.duckdb") as store:
            floor, _ = timed(
                lambda: store.db.execute(
                    "INSERT OR IGNORE INTO outcomes SELECT id, 'log', 0, ts, prompt, label, version, commit, key,"
                    " CAST(outcome AS DOUBLE), true, CAST(metadata AS VARCHAR), now()::TIMESTAMP"
                    " FROM read_json(?, format = 'newline_delimited')",
                    [str(log)],
                )
            )
    print(f"load    {lines:,} lines ({size / 2**20:.0f} MiB): {first:.2f}s first, {again:.2f}s again (all stored);")
    print(f"        duckdb's read_json with no checks {floor:.2f}s: the checks cost x{first / floor:.2f}")
    print(f"        (outcomes are refused past {MAX_OUTCOME:g} in magnitude, NaN and infinities included)")


REPLIES = [
    "The answer is (B).",
    "Let me think. The items are two apples and three pears, so the total is 5.",
    '```json\n{"label": "positive", "confidence": 0.9}\n```',
    "positive",
    "I believe the sentence is plausible, since the player scored in that sport.",
]


def regex(replies: int, runs: int) -> None:
    texts = [REPLIES[i % len(REPLIES)] + f" ({i})" for i in range(replies)]
    for name, pattern in [("scorer", r"(?i)\b(positive|plausible|\(b\))"), ("parse", r"total is (\d+)")]:
        python, linear = re.compile(pattern), compile_user(pattern)
        a = b = float("inf")
        for _ in range(runs):  # interleaved, so noise hits both alike
            a = min(a, timed(lambda python=python: [python.search(t) for t in texts])[0])
            b = min(b, timed(lambda linear=linear: [linear.search(t) for t in texts])[0])
        print(f"regex   {name} over {replies:,} replies: re {a * 1e3:.1f} ms, RE2 {b * 1e3:.1f} ms, x{b / a:.2f}")


def pull_cost(published: int) -> None:
    import duckdb

    import promptci.store.parquet as parquet
    from promptci.results import Folder, pull
    from promptci.results.sync import push

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "source.duckdb"
        Store(db).close()
        with duckdb.connect(str(db)) as con:
            for r in range(published):
                con.execute(
                    "INSERT INTO runs VALUES (?, now()::TIMESTAMP, now()::TIMESTAMP, 'c', 'main', false, 'eval', 'h',"
                    " 'complete', '0.1.0', 1, 'host')",
                    [f"run{r:04d}"],
                )
                con.execute(
                    "INSERT INTO results SELECT ?, 'suite', 'h', 'prompt', 'h', NULL, md5(i::VARCHAR), NULL, 0,"
                    " 'model', 'p', repeat(md5(i::VARCHAR), 8), 'positive', 'positive', '{}', 1.0, true, NULL,"
                    " 10.0, 50, 2, 0.0, false, now()::TIMESTAMP, NULL, NULL FROM range(500) t(i)",
                    [f"run{r:04d}"],
                )
        folder = Path(tmp) / "shared"
        push(db, Folder(str(folder)))
        checked, _ = timed(lambda: pull(Path(tmp) / "checked.duckdb", Folder(str(folder))))
        original = parquet.ParquetQueries._check_values
        parquet.ParquetQueries._check_values = lambda *args, **kwargs: None  # type: ignore[method-assign]
        try:
            unchecked, _ = timed(lambda: pull(Path(tmp) / "unchecked.duckdb", Folder(str(folder))))
        finally:
            parquet.ParquetQueries._check_values = original  # type: ignore[method-assign]
    print(f"pull    {published} runs of 500 results: values checked {checked:.2f}s, unchecked {unchecked:.2f}s,")
    print(f"        x{checked / unchecked:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--replies", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runs-published", type=int, default=50)
    args = parser.parse_args()
    load(args.lines)
    regex(args.replies, args.runs)
    pull_cost(args.runs_published)


if __name__ == "__main__":
    main()

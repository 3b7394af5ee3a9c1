"""`promptci compare` over 1,000,000 stored result rows (synthetic, generated here).

Two runs of 500,000 rows each: 10 suites x 50,000 cases, one repeat, where the head
run loses about 2% of the base's passes. Reports the wall time of the whole
`promptci compare RUN_A RUN_B` command and of the comparison inside it.
Usage: python benchmarks/compare_speed.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promptci.store import Store  # noqa: E402

SUITES = 10


def build(db: Path, rows: int) -> None:
    cases = rows // 2 // SUITES
    with Store(db) as store:
        for run, drop in (("base-run", 0.0), ("head-run", 0.02)):
            store.db.execute(
                "INSERT INTO runs (id, started_at, ended_at, command, config_hash, status, promptci_version)"
                " VALUES (?, now()::TIMESTAMP, now()::TIMESTAMP, 'bench', 'x', 'complete', 'bench')",
                [run],
            )
            store.db.execute(
                f"""
                INSERT INTO results
                SELECT '{run}', 'suite' || s, 'sh', 'prompt' || s, 'ph-{run}', NULL, 'case' || c, NULL, 0, 'model',
                       'params', '', '', 'answer ' || c, NULL, sc, sc = 1, NULL, 1.0, 10, 2, NULL, false,
                       now()::TIMESTAMP, NULL, NULL
                FROM (
                    SELECT s, c, CASE WHEN hash(c * 7 + s) % 100 < 60 - {int(drop * 100)} THEN 1.0 ELSE 0.0 END AS sc
                    FROM range({SUITES}) t(s), range({cases}) u(c)
                )
                """
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "promptci.yaml").write_text("db: results.duckdb\n")
        start = time.perf_counter()
        build(project / "results.duckdb", args.rows)
        print(f"built {args.rows:,} rows in {time.perf_counter() - start:.1f} s")
        cmd = [sys.executable, "-m", "promptci", "-C", str(project), "compare", "base-run", "head-run"]
        subprocess.run(cmd, capture_output=True)  # warm the OS cache
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([*cmd, "-o", str(project / "r.json")], capture_output=True)
        with_json = time.perf_counter() - start
        flips = sum(len(s["flips"]) for s in json.loads((project / "r.json").read_text())["suites"])
        code = (
            "import time, sys; from pathlib import Path; from promptci.project import Project;"
            "from promptci.store import Store; from promptci.compare.sides import load, resolve_side;"
            "from promptci.compare.engine import compare;"
            f"p = Project.discover({str(project)!r}); t = time.perf_counter();"
            "s = Store(p.path(p.config.db), read_only=True);"
            "r = [load(p, s, resolve_side(p, s, x), f't{i}') for i, x in enumerate(('base-run', 'head-run'))];"
            "c = compare(s, r[0], r[1], p.config.gate); print(time.perf_counter() - t, c.verdict)"
        )
        inside = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print(
        f"promptci compare over {args.rows:,} rows: {wall:.2f} s wall (exit {done.returncode}),"
        f" of which {float(inside[0]):.2f} s loading and comparing; verdict {inside[1]}"
    )
    print(f"with -o report.json listing all {flips:,} flipped cases with both outputs: {with_json:.2f} s wall")


if __name__ == "__main__":
    main()

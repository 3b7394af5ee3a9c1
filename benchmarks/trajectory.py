"""One optimization's whole trajectory, from any checkout of promptci, as JSON: to check that a
refactor leaves a method's search unchanged, row by row.

It builds a fresh repository with one shipped BIG-bench task (40 cases), runs ``promptci
optimize --dry-run`` with the given checkout's code and flags, and writes every trajectory
row (step, candidate, status, text, loss, train and dev scores, accepted) and the held-out
result. Run it for two checkouts and compare the files.

Usage: python benchmarks/trajectory.py ROOT OUT.json METHOD TASK [-- OPTIMIZE FLAGS...]
   e.g. python benchmarks/trajectory.py . after.json greater sports_understanding -- --steps 6
        --set greater.examples=4 --set greater.reasoning_tokens=24
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    args = sys.argv[1:]
    flags = args[args.index("--") + 1 :] if "--" in args else []
    root, out, method, task = Path(args[0]).resolve(), Path(args[1]), args[2], args[3]
    sys.path.insert(0, str(root / "benchmarks"))
    from optimize import make_repo  # the checkout's own

    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "bench")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "bench@example.com")
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), task, 40, None)
        command = [sys.executable, "-m", "promptci", "optimize", task, "--suite", task, "--method", method]
        done = subprocess.run(
            [*command, "--dry-run", "--format", "json", *flags],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(done.stderr)
        result = json.loads(done.stdout)
        import duckdb

        with duckdb.connect(str(repo / ".promptci/results.duckdb"), read_only=True) as con:
            rows = con.execute(
                "SELECT step, candidate, status, text, loss, train_score, dev_score, accepted FROM trajectory"
                " ORDER BY step, candidate"
            ).fetchall()
    kept = {k: result[k] for k in ("best", "test", "calls")}
    out.write_text(json.dumps({"result": kept, "rows": rows}, indent=1, default=str))
    t = result["test"]
    print(
        f"{task} {method}: test {t['before']:.3f} -> {t['after']:.3f} p={t['p_value']:.2g}, {len(rows)} rows,"
        f" {sum(bool(r[7]) for r in rows)} accepted, calls {result['calls']}, best {result['best']!r}"
    )


if __name__ == "__main__":
    main()

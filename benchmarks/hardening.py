"""What the hostile-input limits cost on valid input, each as a ratio measured side by side.

  render   a few-shot prompt with a loop, rendered by Jinja's plain sandbox and by promptci's
           limited one (interleaved, best of --runs rounds of --renders renders);
  yaml     a suite of --cases inline cases, parsed with and without the alias-expansion check;
  store    opening a results database of --rows result rows for writing: the first open reads
           every block to check it, later opens trust the stamp promptci left.
Everything is built in a temporary directory; this repository is not touched.
Usage: python benchmarks/hardening.py [--runs N] [--renders N] [--cases N] [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from promptci.prompts.sandbox import LimitedEnvironment, budgeted
from promptci.store import Store
from promptci.store.dbfile import stamp_path
from promptci.yamlio import parse_yaml

TEMPLATE = """You label product reviews. Answer with one word.
{% for example in examples %}
Review: {{ example.review }}
Sentiment: {{ example.label | lower }}
{% endfor %}
Review: {{ review | trim }}
Sentiment:"""
VARIABLES = {
    "examples": [{"review": f"Review number {i}, quite good.", "label": "POSITIVE"} for i in range(8)],
    "review": "  Broke after two days and support never answered.  ",
}


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def render_ratio(runs: int, renders: int) -> tuple[float, float]:
    options = {"undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True}
    plain = SandboxedEnvironment(**options).from_string(TEMPLATE)  # type: ignore[arg-type]
    limited = LimitedEnvironment(**options).from_string(TEMPLATE)
    assert plain.render(VARIABLES) == limited.render(VARIABLES)

    def plain_batch() -> None:
        for _ in range(renders):
            plain.render(VARIABLES)

    def limited_batch() -> None:
        for _ in range(renders):
            with budgeted():
                limited.render(VARIABLES)

    a = b = float("inf")
    for _ in range(runs):  # interleaved, so noise hits both alike
        a, b = min(a, best(plain_batch, 1)), min(b, best(limited_batch, 1))
    return a, b


def yaml_ratio(runs: int, cases: int) -> tuple[float, float]:
    lines = ["prompts: [sentiment]", "scorers: [{type: exact}]", "cases:"]
    lines += [f"  - vars: {{review: 'review {i}', n: {i}}}\n    expected: positive" for i in range(cases)]
    text = "\n".join(lines) + "\n"
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def unchecked() -> None:
        loader = loader_cls(text)
        try:
            loader.construct_document(loader.get_single_node())
        finally:
            loader.dispose()

    a = b = float("inf")
    for _ in range(runs):
        a, b = min(a, best(unchecked, 1)), min(b, best(lambda: parse_yaml(text, "suite.yaml"), 1))
    return a, b


def store_open(rows: int, runs: int) -> tuple[float, float]:
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.duckdb"
        Store(path).close()
        with duckdb.connect(str(path)) as con:
            con.execute(
                "INSERT INTO results SELECT 'run', 'suite', 'h', 'prompt', 'h', NULL, md5(i::VARCHAR), NULL, 0,"
                " 'model', 'p', repeat(md5(i::VARCHAR), 8), 'positive', 'positive', '{}', 1.0, true, NULL,"
                " 10.0, 50, 2, 0.0, false, now()::TIMESTAMP, NULL, NULL FROM range(?) t(i)",
                [rows],
            )
        checked = trusted = float("inf")
        for _ in range(runs):
            stamp_path(path).unlink(missing_ok=True)  # as after a pull by another tool: check everything
            checked = min(checked, best(lambda: Store(path).close(), 1))
            trusted = min(trusted, best(lambda: Store(path).close(), 1))
        return checked, trusted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    plain, limited = render_ratio(args.runs, args.renders)
    print(f"render  {args.renders} renders: plain sandbox {plain:.3f}s, limited {limited:.3f}s, x{limited / plain:.2f}")
    unchecked, checked = yaml_ratio(args.runs, args.cases)
    print(f"yaml    {args.cases} cases: unchecked {unchecked:.3f}s, checked {checked:.3f}s, x{checked / unchecked:.2f}")
    full, stamped = store_open(args.rows, max(1, args.runs // 2))
    ratio = full / stamped
    print(f"store   {args.rows} rows: open with full check {full:.3f}s, trusted by stamp {stamped:.3f}s, x{ratio:.1f}")


if __name__ == "__main__":
    main()

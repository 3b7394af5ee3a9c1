"""Is the gate as sure as it says? Calibration of the detectable drop, the underpowered verdict,
the multiple-testing correction and flaky cases, by simulation through the gate's own code.

1. **Detectable drop.** For each suite size ``n`` and flip rate ``ψ``, the gate reports the
   smallest drop it detects with 80% power. Simulate that many suite pairs whose true drop is
   exactly that drop, run each through the gate's test and verdict, and count how often it says
   *regressed*. Two columns: with the flip rate known, and with it estimated (as compare does)
   from one pilot comparison of the same suite, the truth then set to the drop that pilot reported.
2. **Underpowered.** Verdict shares for a small suite and a large one, at true drops below, at
   and above what each detects, with ``gate.max_drop`` 0.02.
3. **Many suites at once.** 20 unchanged suites compared together: how often at least one is
   called regressed (or improved), with Holm, Benjamini–Hochberg and no correction.
4. **Flaky cases.** Suites of steady unchanged cases plus cases that pass with probability 0.5 on
   both sides, each repeated k times, through the real compare on a real DuckDB file: how often a
   regression is declared, and how many flaky cases are listed.

Usage: python benchmarks/gate_calibration.py [--sims 1000] [--seed 0] [--flaky-sims 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from promptci.compare.engine import _verdict  # noqa: E402
from promptci.compare.power import CORRECTIONS, Detectable, detectable_drop  # noqa: E402
from promptci.compare.stats import mcnemar_exact, paired  # noqa: E402

ALPHA, POWER = 0.05, 0.8


def draw(rng: np.random.Generator, n: int, psi: float, drop: float, base: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """One suite pair: pass/fail per case on base and head, ``psi`` of the cases discordant and a
    true drop of ``drop`` (pass→fail minus fail→pass)."""
    psi = max(psi, drop)
    down, up = (psi + drop) / 2, (psi - drop) / 2
    kind = rng.choice(4, size=n, p=[down, up, (1 - psi) * base, (1 - psi) * (1 - base)])
    b = np.isin(kind, (0, 2))
    h = np.isin(kind, (1, 2))
    return b, h


@cache
def reported(n: int, discordant: int, max_drop: float = 0.0) -> float | None:
    """The detectable drop compare reports for ``discordant`` changed cases of ``n``."""
    return detectable_drop(n, binary=True, discordance=discordant / n, alpha=ALPHA, power=POWER, max_drop=max_drop).drop


def regressed(b: np.ndarray, h: np.ndarray, max_drop: float = 0.0) -> bool:
    """Whether compare calls one pass/fail row regressed: exact McNemar p < α and a drop beyond
    ``max_drop`` (what the verdict rests on; the interval only sorts the verdicts that are not)."""
    down, up = int(np.sum(b & ~h)), int(np.sum(~b & h))
    return mcnemar_exact(down, up) < ALPHA and (up - down) / len(b) < -max_drop


def gate(b: np.ndarray, h: np.ndarray, max_drop: float) -> str:
    """The verdict compare gives one pass/fail row, interval and detectable drop included."""
    r = paired(b.astype(float), h.astype(float), b, h, binary=True)
    drop = reported(len(b), int(np.sum(b != h)), max_drop)
    return _verdict(r, r.p_value, max_drop, ALPHA, Detectable(drop, POWER, ALPHA, 0.0, True))


def detection(args: argparse.Namespace, rng: np.random.Generator) -> None:
    print("## 1. A drop equal to the reported detectable drop is found at the stated power\n")
    print(f"{args.sims} simulated suite pairs per row; α {ALPHA}, power {POWER:.0%}, max_drop 0.\n")
    print("| cases | flip rate ψ | detectable drop | found, ψ known | found, ψ from a pilot compare |")
    print("|---|---|---|---|---|")
    for n in (24, 50, 100, 200, 400, 1000):
        for psi in (0.1, 0.2, 0.4):
            d = detectable_drop(n, binary=True, discordance=psi, alpha=ALPHA, power=POWER).drop
            if d is None:
                print(f"| {n} | {psi} | none at this size | – | – |")
                continue
            known = np.mean([regressed(*draw(rng, n, psi, d)) for _ in range(args.sims)])
            piloted = []
            for _ in range(args.sims):
                b, h = draw(rng, n, psi, 0.0)  # a pilot compare of an unchanged version: its flips
                drop = reported(n, int(np.sum(b != h)))
                if drop is not None:
                    piloted.append(regressed(*draw(rng, n, psi, drop)))
            print(f"| {n} | {psi} | {d:.3f} | {known:.1%} | {np.mean(piloted):.1%} |")
    print()


def underpowered(args: argparse.Namespace, rng: np.random.Generator) -> None:
    print("## 2. Where underpowered appears\n")
    print(f"{args.sims} simulated suite pairs per row, max_drop 0.02: the share of each verdict.\n")
    print("| cases | ψ | detects | true drop | regressed | underpowered | inconclusive | unchanged | improved |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, psi in ((40, 0.2), (4000, 0.1)):
        d = detectable_drop(n, binary=True, discordance=psi, alpha=ALPHA, power=POWER, max_drop=0.02).drop
        assert d is not None
        for drop in (0.0, d / 2, d, 2 * d):
            verdicts = [gate(*draw(rng, n, psi, min(drop, 1.0)), 0.02) for _ in range(args.sims)]
            shares = [np.mean([v == k for v in verdicts]) for k in
                      ("regressed", "underpowered", "inconclusive", "unchanged", "improved")]  # fmt: skip
            print(f"| {n} | {psi} | {d:.3f} | {drop:.3f} | " + " | ".join(f"{s:.1%}" for s in shares) + " |")
    print()


def many(args: argparse.Namespace, rng: np.random.Generator) -> None:
    print("## 3. 20 unchanged suites in one compare\n")
    print(f"{args.sims} simulated pull requests, each 20 suites of 100 cases, ψ 0.2, true drop 0.\n")
    print("| correction | any suite called regressed | any called regressed or improved |")
    print("|---|---|---|")
    rows = {name: [0, 0] for name in ("none", "holm", "bh")}
    for _ in range(args.sims):
        pairs = [draw(rng, 100, 0.2, 0.0) for _ in range(20)]
        counts = [(int(np.sum(b & ~h)), int(np.sum(~b & h))) for b, h in pairs]
        p = [mcnemar_exact(down, up) for down, up in counts]
        for name, found in rows.items():
            significant = [q < ALPHA for q in CORRECTIONS[name](p)]
            found[0] += any(s and down > up for s, (down, up) in zip(significant, counts, strict=True))
            found[1] += any(significant)
    for name, (down, either) in rows.items():
        label = {"none": "none", "holm": "Holm (default)", "bh": "Benjamini–Hochberg"}[name]
        print(f"| {label} | {down / args.sims:.1%} | {either / args.sims:.1%} |")
    print()


def flaky(args: argparse.Namespace, rng: np.random.Generator) -> None:
    from promptci.compare.engine import compare
    from promptci.compare.sides import Side, load
    from promptci.config import Config, GateConfig
    from promptci.project import Project
    from promptci.store import ResultRow, Store, now

    print("## 4. Flaky cases\n")
    print(f"{args.flaky_sims} simulated suite pairs per row, through compare on a DuckDB file: 40 steady unchanged")
    print("cases (0.7 pass) and 10 cases that pass with probability 0.5 on both sides, each repeated k times.\n")
    print("| repeats k | regressed declared | flaky cases listed (of 10) | expected: 10·(1 − (2·0.5^k)²) |")
    print("|---|---|---|---|")

    def rows(run: str, case: str, passes: list[bool]) -> list[ResultRow]:
        return [
            ResultRow(
                run_id=run,
                suite="s",
                suite_hash="sh",
                prompt="p",
                prompt_hash="h-" + run,
                prompt_commit=None,
                case_id=case,
                case_name=case,
                repeat_index=r,
                model_id="m",
                params_hash="x",
                input="",
                expected="",
                output="a",
                scores=None,
                score=float(ok),
                passed=bool(ok),
                error=None,
                latency_ms=1.0,
                tokens_in=1,
                tokens_out=1,
                cost=None,
                cached=False,
                created_at=now(),
            )
            for r, ok in enumerate(passes)
        ]

    with tempfile.TemporaryDirectory() as tmp:
        project = Project(Path(tmp), Config())
        for k in (2, 3, 5):
            regressed, listed = 0, []
            for i in range(args.flaky_sims):
                with Store(Path(tmp) / f"{k}-{i}.duckdb") as store:
                    for run in ("base", "head"):
                        store.start_run(run, git_commit=None, branch=None, dirty=None, command="", config_hash="")
                    found: list[ResultRow] = []
                    for c in range(40):
                        steady = bool(rng.random() < 0.7)
                        found += rows("base", f"c{c}", [steady] * k) + rows("head", f"c{c}", [steady] * k)
                    for c in range(10):
                        for run in ("base", "head"):
                            found += rows(run, f"f{c}", list(rng.random(k) < 0.5))
                    store.add_results(found)
                    sides = [load(project, store, Side(r, "run", run_id=r), f"t_{r}") for r in ("base", "head")]
                    (s,) = compare(store, sides[0], sides[1], GateConfig()).suites
                regressed += s.verdict == "regressed"
                listed.append(len(s.flaky))
                (Path(tmp) / f"{k}-{i}.duckdb").unlink()
            expected = 10 * (1 - (2 * 0.5**k) ** 2)  # listed unless both sides' k draws all agree
            print(f"| {k} | {regressed / args.flaky_sims:.1%} | {np.mean(listed):.2f} | {expected:.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--flaky-sims", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    for part in (detection, underpowered, many, flaky):
        part(args, np.random.default_rng(args.seed))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

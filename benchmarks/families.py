"""Six seeded task families the embedded model has room on, for the optimizer benchmark.

Each family is a kind of request a team writes a prompt for, where the answer must come in an
exact form: the naive prompt (the one ``benchmarks/optimize.py`` writes, "Answer the question
with the answer alone.") leaves SmolLM2 far below what it can do, and the best constant answer
is low. Every family is generated from a seed, so anyone gets the same cases:

- ``sum_digits``: answer format. "What is 17 plus 25?" → ``42`` (digits alone).
- ``pick_email``: extraction. A sentence holding one email address → the address.
- ``shout``: transformation. Two words → the words in capitals.
- ``mood_word``: label words. A short review → ``pos`` or ``neg`` (words the model would not choose).
- ``iso_date``: transformation. "March 3, 2021" → ``2021-03-03``.
- ``team_route``: label words. A customer message → ``billing``, ``shipping`` or ``tech``.

Usage: python benchmarks/families.py OUT_DIR [--cases 60] [--seed 0]
Then:  python benchmarks/optimize.py --data OUT_DIR --methods demos,gpo,auto,gpo+demos --budget 150
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

NAMES = ["alex", "sam", "jo", "kim", "lee", "max", "ria", "tom", "ana", "ben", "eva", "ida"]
DOMAINS = ["example.com", "mail.org", "shop.net", "corp.io"]
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "forest", "candle", "rocket", "garden"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]  # fmt: skip
GOOD = ["loved it", "works great", "very happy with it", "excellent quality", "would buy again", "fantastic"]
BAD = ["broke in a day", "waste of money", "very disappointed", "arrived damaged", "would not buy again", "awful"]
TEAMS = {
    "billing": ["I was charged twice", "my invoice is wrong", "please refund my payment", "update my card"],
    "shipping": ["my parcel has not arrived", "the package is late", "wrong delivery address", "track my order"],
    "tech": ["the app crashes on start", "I cannot log in", "the page shows an error", "reset my password"],
}


def sum_digits(rng: random.Random) -> dict[str, str]:
    a, b = rng.randint(10, 60), rng.randint(10, 39)
    return {"input": f"What is {a} plus {b}?", "target": str(a + b)}


def pick_email(rng: random.Random) -> dict[str, str]:
    address = f"{rng.choice(NAMES)}.{rng.choice(NAMES)}@{rng.choice(DOMAINS)}"
    before = rng.choice(["Please write to", "You can reach me at", "Send the form to", "My address is"])
    return {"input": f"{before} {address} before Friday.", "target": address}


def shout(rng: random.Random) -> dict[str, str]:
    words = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
    return {"input": f"Write these words in capital letters: {words}", "target": words.upper()}


def mood_word(rng: random.Random) -> dict[str, str]:
    good = rng.random() < 0.5
    text, item = rng.choice(GOOD if good else BAD), rng.choice(WORDS)
    return {
        "input": f"Review of the {item} lamp: {text}. Is this review pos or neg?",
        "target": "pos" if good else "neg",
    }


def iso_date(rng: random.Random) -> dict[str, str]:
    year, month, day = rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)
    return {
        "input": f"Write {MONTHS[month - 1]} {day}, {year} as YYYY-MM-DD.",
        "target": f"{year}-{month:02d}-{day:02d}",
    }


def team_route(rng: random.Random) -> dict[str, str]:
    team = rng.choice(sorted(TEAMS))
    said = f"{rng.choice(TEAMS[team])} (order {rng.randint(100, 999)})"
    return {"input": f"Customer: {said}. Which team: billing, shipping or tech?", "target": team}


FAMILIES: dict[str, Callable[[random.Random], dict[str, str]]] = {
    f.__name__: f for f in (sum_digits, pick_email, shout, mood_word, iso_date, team_route)
}


def generate(out: Path, cases: int = 60, seed: int = 0) -> list[Path]:
    """Each family's cases as ``OUT/<family>.jsonl``, distinct inputs, seeded per family."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (name, make) in enumerate(FAMILIES.items()):
        rng = random.Random(seed * 1_000 + i)
        rows: dict[str, dict[str, str]] = {}
        for _ in range(cases * 50):
            row = make(rng)
            rows.setdefault(row["input"], row)
            if len(rows) == cases:
                break
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in generate(args.out, args.cases, args.seed):
        print(f"{path}: {sum(1 for _ in path.open())} cases")


if __name__ == "__main__":
    main()

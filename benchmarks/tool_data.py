"""The cases of the two shipped tool examples, generated (seeded) so anyone can remake them.

- ``evals/data/addresses.jsonl``: a sentence holding a postal address, and the address as the
  fields ``prompts/extract_address.yaml`` returns (name, street, city, postcode);
- ``evals/data/assistant_requests.jsonl``: a request to a phone assistant, and the tool call
  ``prompts/route_request.yaml`` should make (get_weather, convert_currency or set_timer).

Usage: python benchmarks/tool_data.py [--cases 40] [--seed 7] [--out evals/data]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

FIRST = ["Maria", "James", "Aiko", "Omar", "Lena", "Carlos", "Priya", "Tom", "Fatima", "Erik", "Chloe", "Nia"]
LAST = ["Lopez", "Smith", "Tanaka", "Haddad", "Fischer", "Silva", "Patel", "Brown", "Okafor", "Berg", "Martin"]
STREETS = ["Oak Street", "Maple Avenue", "Hill Road", "River Lane", "Park Drive", "Elm Way", "Station Road"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Milford", "Ashland", "Bridgeport"]
ADDRESS_FORMS = [
    "Please ship the order to {name}, {street}, {city} {postcode}.",
    "Send the invoice to {name} at {street} in {city}, postcode {postcode}.",
    "{name} has moved: the new address is {street}, {postcode} {city}.",
    "Deliver to {name}, {street}, {city}, {postcode}, before Friday.",
    "Hi, this is {name}. My parcel should go to {street}, {city} {postcode}. Thanks!",
]

CITY_WEATHER = ["Paris", "Tokyo", "Lisbon", "Nairobi", "Toronto", "Oslo", "Lima", "Cairo", "Seoul", "Dublin"]
CURRENCIES = {"dollars": "USD", "euros": "EUR", "pounds": "GBP", "yen": "JPY"}
WEATHER_FORMS = [
    "What's the weather like in {city} today?",
    "Will it rain in {city}?",
    "How warm is it in {city} right now?",
    "Should I take a coat in {city} this afternoon?",
]
CURRENCY_FORMS = [
    "How much is {amount} {source} in {target}?",
    "Convert {amount} {source} to {target}.",
    "I have {amount} {source}; what is that in {target}?",
]
TIMER_FORMS = [
    "Set a timer for {minutes} minutes.",
    "Remind me in {minutes} minutes that the pasta is done.",
    "Start a {minutes} minute countdown.",
]


def address(rng: random.Random) -> dict[str, Any]:
    fields = {
        "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "street": f"{rng.randint(1, 250)} {rng.choice(STREETS)}",
        "city": rng.choice(CITIES),
        "postcode": f"{rng.randint(10000, 99999)}",
    }
    return {"text": rng.choice(ADDRESS_FORMS).format(**fields), "expected": fields}


def weather(rng: random.Random) -> dict[str, Any]:
    city = rng.choice(CITY_WEATHER)
    call = {"name": "get_weather", "arguments": {"city": city}}
    return {"request": rng.choice(WEATHER_FORMS).format(city=city), "expected": call}


def currency(rng: random.Random) -> dict[str, Any]:
    source, target = rng.sample(sorted(CURRENCIES), 2)
    amount = rng.choice([5, 12, 20, 30, 45, 100, 250, 1000])
    text = rng.choice(CURRENCY_FORMS).format(amount=amount, source=source, target=target)
    arguments = {"amount": amount, "from": CURRENCIES[source], "to": CURRENCIES[target]}
    return {"request": text, "expected": {"name": "convert_currency", "arguments": arguments}}


def timer(rng: random.Random) -> dict[str, Any]:
    minutes = rng.choice([3, 5, 8, 10, 15, 20, 25, 45])
    call = {"name": "set_timer", "arguments": {"minutes": minutes}}
    return {"request": rng.choice(TIMER_FORMS).format(minutes=minutes), "expected": call}


def rows(make: Callable[[random.Random], dict[str, Any]] | list[Callable[[random.Random], dict[str, Any]]],
         n: int, seed: int) -> list[dict[str, Any]]:  # fmt: skip
    """``n`` distinct rows; with several makers, they take turns."""
    rng = random.Random(seed)
    makers = make if isinstance(make, list) else [make]
    found: dict[str, dict[str, Any]] = {}
    while len(found) < n:
        row = makers[len(found) % len(makers)](rng)
        found.setdefault(json.dumps(row, sort_keys=True), row)
    return list(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "evals" / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, made in (
        ("addresses.jsonl", rows(address, args.cases, args.seed)),
        ("assistant_requests.jsonl", rows([weather, currency, timer], args.cases, args.seed)),
    ):
        path = args.out / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in made))
        print(f"{path}: {len(made)} cases")


if __name__ == "__main__":
    main()

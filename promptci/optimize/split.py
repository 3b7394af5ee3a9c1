"""The deterministic train/dev/test split. The optimizer sees train and dev only."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..evals.dataset import EvalCase
from ..settings import parse_fractions
from ..yamlio import canonical_json

__all__ = ["Split", "parse_fractions", "split_cases"]


@dataclass(frozen=True)
class Split:
    train: list[EvalCase]
    dev: list[EvalCase]
    test: list[EvalCase]


def split_cases(
    cases: Sequence[EvalCase],
    fractions: tuple[float, float, float],
    seed: int,
    minimum: tuple[int, int, int] = (3, 2, 2),
) -> Split:
    """Shuffle by ``seed`` (cases first sorted by id, so file order does not matter) and cut.

    Cases with the same input (the same variables and turns, whatever they expect) stay on one
    side: an input that is a demonstration in train or a choice on dev is never a test case.
    Raises :class:`InputError` naming the minimum when a split would be too small.
    """
    groups: dict[str, list[EvalCase]] = {}
    for case in sorted(cases, key=lambda c: c.id):
        groups.setdefault(input_key(case), []).append(case)
    ordered = list(groups.values())  # in the order of each input's first case id
    random.Random(seed).shuffle(ordered)
    n = len(cases)
    n_train = round(n * fractions[0])
    n_dev = round(n * fractions[1])
    sides: tuple[list[EvalCase], list[EvalCase], list[EvalCase]] = ([], [], [])
    for group in ordered:  # whole inputs: each side fills up to its size, the last takes the rest
        side = 0 if len(sides[0]) < n_train else 1 if len(sides[1]) < n_dev else 2
        sides[side].extend(group)
    sizes = tuple(len(side) for side in sides)
    if any(size < low for size, low in zip(sizes, minimum, strict=True)):
        needed = max(-(-low // f) for low, f in zip(minimum, fractions, strict=True) if f > 0)
        inputs = f" ({len(groups)} distinct inputs)" if len(groups) < n else ""
        raise InputError(
            f"the suite has {n} cases{inputs}: too few to split {fractions[0]:g}/{fractions[1]:g}/{fractions[2]:g}"
            f" into train/dev/test of at least {minimum[0]}/{minimum[1]}/{minimum[2]}",
            hint=f"use a suite with at least {int(needed)} cases, or change --split",
        )
    return Split(*sides)


def input_key(case: EvalCase) -> str:
    """What a case gives the prompt: its variables and turns (not what it expects)."""
    return canonical_json({"vars": case.vars, "turns": [t.user for t in case.turns]})

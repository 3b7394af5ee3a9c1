"""The deterministic train/dev/test split. The optimizer sees train and dev only."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..evals.dataset import EvalCase
from ..settings import parse_fractions

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

    Raises :class:`InputError` naming the minimum when a split would be too small.
    """
    ordered = sorted(cases, key=lambda c: c.id)
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    n_train = round(n * fractions[0])
    n_dev = round(n * fractions[1])
    sizes = (n_train, n_dev, n - n_train - n_dev)
    if any(size < low for size, low in zip(sizes, minimum, strict=True)):
        needed = max(-(-low // f) for low, f in zip(minimum, fractions, strict=True) if f > 0)
        raise InputError(
            f"the suite has {n} cases: too few to split {fractions[0]:g}/{fractions[1]:g}/{fractions[2]:g}"
            f" into train/dev/test of at least {minimum[0]}/{minimum[1]}/{minimum[2]}",
            hint=f"use a suite with at least {int(needed)} cases, or change --split",
        )
    return Split(ordered[:n_train], ordered[n_train : n_train + n_dev], ordered[n_train + n_dev :])

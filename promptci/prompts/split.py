"""A label that splits traffic between versions (an A/B release), and which version a key gets.

``production: {versions: {<commit-a>: 0.9, <commit-b>: 0.1}}`` in ``labels.yaml`` sends 90% of
keys to one version and 10% to the other. The same key always gets the same version: it is
hashed with the prompt's name and the label to a point in [0, 1), which falls in one version's
share. Without a key the version is drawn by the weights. Nothing here imports more than the
standard library, so the runtime can use it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from ..errors import InputError

TOLERANCE = 1e-6  # how far from 1 the weights may sum, for decimals such as 0.1 + 0.2 + 0.7


@dataclass(frozen=True)
class Split:
    """Versions (commits, or content hashes in a bundle) and their shares of the traffic, in the
    order they were given; the shares sum to 1."""

    versions: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, weights: dict[str, float], where: str = "") -> Split:
        """Checked: at least two versions, each share in (0, 1], all summing to 1."""
        shown = f"{where}: " if where else ""
        if len(weights) < 2:
            raise InputError(f"{shown}a split needs at least two versions", hint="use `label set` for one")
        for version, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
                raise InputError(f"{shown}the weight of {version[:10]} must be a number in (0, 1], not {weight!r}")
        total = math.fsum(weights.values())
        if abs(total - 1) > TOLERANCE:
            raise InputError(f"{shown}weights must sum to 1, not {total:g}", hint="e.g. A=0.9 B=0.1")
        return cls(tuple((version, float(weight)) for version, weight in weights.items()))

    def choose(self, name: str, label: str, key: str | None = None) -> str:
        """The version ``key`` gets: always the same for the same key; by the weights without one."""
        if key is None:
            import random

            point = random.random()
        else:
            digest = hashlib.sha256(f"{name}\0{label}\0{key}".encode()).digest()
            point = int.from_bytes(digest[:8], "big") / 2**64
        edge = 0.0
        for version, weight in self.versions:
            edge += weight
            if point < edge:
                return version
        return self.versions[-1][0]  # the sum fell a rounding error short of 1

    def describe(self, short: int = 10) -> str:
        return " / ".join(f"{version[:short]} {weight:.0%}" for version, weight in self.versions)


Target = str | Split  # what a label points at: one commit, or a split between several

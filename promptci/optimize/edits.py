"""Word-level edit distance and GPO's cosine-decayed edit budget."""

from __future__ import annotations

import hashlib
import math
import re


def words(text: str) -> list[str]:
    return text.split()


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between the word sequences of ``a`` and ``b``."""
    x, y = words(a), words(b)
    previous = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        current = [i]
        for j, wy in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (wx != wy)))
        previous = current
    return previous[-1]


def edit_budget(t: int, total: int, initial: int = 50, final: int = 10) -> int:
    """GPO's budget at step ``t`` of ``total``: cosine decay from ``initial`` words to ``final``."""
    if total <= 0:
        return final
    t = min(max(t, 0), total)
    return int(final + (initial - final) * 0.5 * (1 + math.cos(math.pi * t / total)))


def normalised_hash(text: str) -> str:
    """Identity for dedupe: case, whitespace and surrounding punctuation do not count."""
    flat = re.sub(r"\s+", " ", text.strip().lower()).strip(" .!?;:\"'")
    return hashlib.sha256(flat.encode()).hexdigest()[:16]

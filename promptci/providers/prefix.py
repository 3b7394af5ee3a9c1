"""Shared token prefixes: found, batched together, and their key/value states kept for reuse.

Every case of a suite renders the same instruction, demonstrations and system message before
its own input, and every dev case of an optimizer candidate does the same. The transformers
provider runs such a prefix once, expands its key/value states over the rows of a batch, and
keeps it in a :class:`PrefixStore` for the next batch and the next call.

This module holds no torch code of its own: the store keeps whatever tensors the provider hands
it, measures them by their bytes, and slices them along the sequence axis; the provider computes
the states. What is pure (longest common prefixes, how rows are grouped into batches) is plain
Python, so it is tested without a model.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

# Shorter shared prefixes are not worth a separate pass and a copy of their states.
MIN_SHARED = 8
# Rows whose prefix shared with a neighbour runs this many tokens past what the whole group
# shares belong together: the same instruction, demonstrations or candidate.
CLUSTER_MARGIN = 8

Layers = list[tuple[Any, Any]]  # per layer, keys and values: [batch, heads, tokens, head_dim]
Extend = Callable[[Layers | None, Sequence[int], int], Layers]  # (states of ids[:start], ids, start) -> states of ids


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shared_prefix(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every row shares."""
    if not rows:
        return 0
    first = rows[0]
    n = min(len(r) for r in rows)
    for r in rows[1:]:
        n = common_prefix(first[:n], r)
        if n == 0:
            break
    return n


def plan_batches(rows: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """Indices of ``rows`` in batches of at most ``size``: rows sharing a prefix together, then
    rows of similar length together, so each batch's shared prefix is long and its padding short.

    Rows are sorted by their tokens, which puts those sharing a prefix next to each other. A
    run of rows whose neighbours share :data:`CLUSTER_MARGIN` tokens more than the group as a
    whole is a cluster (one instruction, one candidate); within a cluster rows go by length.
    A batch holds one cluster, or the rest of several kept whole; rows in no cluster are
    batched by length.
    """
    if not rows:
        return []
    order = sorted(range(len(rows)), key=lambda i: tuple(rows[i]))
    near = [common_prefix(rows[a], rows[b]) for a, b in itertools.pairwise(order)]
    floor = min(near, default=0)
    clusters: list[list[int]] = [[order[0]]]
    for i, shared in zip(order[1:], near, strict=True):
        if shared >= floor + CLUSTER_MARGIN:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    batches: list[list[int]] = []
    packed: list[int] = []  # the rest of several clusters, each kept whole, filling one batch
    loose: list[int] = []  # rows that share nothing more with a neighbour: batched by length
    for cluster in clusters:
        if len(cluster) == 1:
            loose += cluster
            continue
        cluster.sort(key=lambda i: len(rows[i]))
        full = len(cluster) - len(cluster) % size
        batches += [cluster[k : k + size] for k in range(0, full, size)]
        tail = cluster[full:]
        if len(packed) + len(tail) > size:
            batches.append(packed)
            packed = []
        packed += tail
    if packed:
        batches.append(packed)
    loose.sort(key=lambda i: len(rows[i]))
    batches += [loose[k : k + size] for k in range(0, len(loose), size)]
    return batches


def nbytes(layers: Layers) -> int:
    return sum(t.element_size() * t.nelement() for kv in layers for t in kv)


def cut(layers: Layers, tokens: int) -> Layers:
    """The states of the first ``tokens`` positions (views, nothing copied)."""
    return [(k[:, :, :tokens], v[:, :, :tokens]) for k, v in layers]


class PrefixStore:
    """Key/value states of token prefixes, the most recently used kept, within ``limit`` bytes.

    A lookup finds the stored prefix sharing the most tokens with the one asked for (a stored
    prefix longer than the shared part is cut, which costs nothing), and ``extend`` computes the
    rest. The result replaces any stored prefix it contains.
    """

    def __init__(self, extend: Extend, limit: int) -> None:
        self._extend = extend
        self.limit = limit
        self._entries: OrderedDict[tuple[int, ...], Layers] = OrderedDict()
        self.bytes = 0
        self.hits = 0  # prefix tokens served from the store
        self.computed = 0  # prefix tokens run through the model

    def __len__(self) -> int:
        return len(self._entries)

    def states(self, ids: Sequence[int]) -> Layers:
        """Batch-of-one key/value states of ``ids``."""
        key = tuple(ids)
        best, best_key = 0, None
        for stored in reversed(self._entries):  # most recent first: ties go to the fresher entry
            n = common_prefix(stored, key)
            if n > best:
                best, best_key = n, stored
        if best_key is not None:
            self._entries.move_to_end(best_key)
            self.hits += best
            if best == len(key):  # stored, or inside a longer stored prefix
                found = self._entries[best_key]
                return found if best == len(best_key) else cut(found, best)
        base = cut(self._entries[best_key], best) if best_key is not None else None
        layers = self._extend(base, key, best)
        self.computed += len(key) - best
        self._keep(key, layers)
        return layers

    def _keep(self, key: tuple[int, ...], layers: Layers) -> None:
        size = nbytes(layers)
        if size > self.limit:
            return
        for stored in [s for s in self._entries if len(s) <= len(key) and key[: len(s)] == s]:
            self.bytes -= nbytes(self._entries.pop(stored))  # contained in the new entry
        self._entries[key] = layers
        self.bytes += size
        while self.bytes > self.limit:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= nbytes(dropped)

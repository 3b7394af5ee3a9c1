"""Demonstrations chosen per case: a prompt's example pool, and the k examples nearest a case.

::

    examples:
      from: evals/data/examples.jsonl   # rows holding the prompt's variables and the answer
      answer: target                    # the column with the answer (default: answer)
      k: 3
      select: similar                   # the k nearest by BM25 over the question; or first

Each example becomes a user/assistant pair before the prompt's final user turn: the final user
message rendered with the example's variables, then its answer. ``similar`` ranks the pool by
BM25 (Robertson and Zaragoza's Okapi weighting, k1 = 1.2, b = 0.75) between the case's rendered
question and each example's, and puts the nearest last, next to the question; ``first`` takes
the pool's first k. An example whose question is the case's own is never shown for it.

The pool file is read with the prompt (from the working tree, or the commit a version is read
at), at most :data:`MAX_POOL_BYTES` and :data:`MAX_POOL_ROWS`; the prompt's content hash covers
its bytes, and a bundle carries it, so an application selects the same examples without git,
in plain Python.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_POOL_BYTES = 1024 * 1024
MAX_POOL_ROWS = 2000
_TOKEN = re.compile(r"[a-z0-9]+")
K1, B = 1.2, 0.75


class PoolError(ValueError):
    """An example pool that cannot be used, and why (one line)."""


def read_pool(data: bytes, path: str) -> list[dict[str, Any]]:
    """The rows of a JSONL pool: each a JSON object; refused past the limits, or at a bad line."""
    if len(data) > MAX_POOL_BYTES:
        raise PoolError(f"example pool '{path}' is larger than {MAX_POOL_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PoolError(f"example pool '{path}' is not UTF-8 text") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise PoolError(f"example pool '{path}' line {number}: not JSON") from None
        if not isinstance(row, dict):
            raise PoolError(f"example pool '{path}' line {number}: not a JSON object")
        rows.append(row)
        if len(rows) > MAX_POOL_ROWS:
            raise PoolError(f"example pool '{path}' holds more than {MAX_POOL_ROWS} rows")
    if not rows:
        raise PoolError(f"example pool '{path}' holds no rows")
    return rows


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


@dataclass(frozen=True)
class Index:
    """BM25 over the pool's questions: what ranking needs, computed once per pool."""

    docs: tuple[Counter[str], ...]
    lengths: tuple[int, ...]
    df: Counter[str]

    @classmethod
    def of(cls, questions: Sequence[str]) -> Index:
        docs = tuple(Counter(tokens(q)) for q in questions)
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        return cls(docs, tuple(sum(d.values()) for d in docs), df)

    def scores(self, query: str) -> list[float]:
        n = len(self.docs)
        mean = sum(self.lengths) / n if n else 0.0
        terms = set(tokens(query))
        out = []
        for doc, length in zip(self.docs, self.lengths, strict=True):
            score = 0.0
            for term in terms & doc.keys():
                idf = math.log(1 + (n - self.df[term] + 0.5) / (self.df[term] + 0.5))
                tf = doc[term]
                score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / (mean or 1)))
            out.append(score)
        return out


def choose(questions: Sequence[str], index: Index, query: str, k: int, select: str) -> list[int]:
    """The pool positions to show for ``query``, nearest last; never one whose question is the query."""
    allowed = [i for i, q in enumerate(questions) if q.strip() != query.strip()]
    if select == "first":
        return allowed[:k]
    scores = index.scores(query)
    ranked = sorted(allowed, key=lambda i: (-scores[i], i))[:k]  # ties: the pool's order
    return ranked[::-1]


def demonstrations(
    spec: Any, rows: Sequence[Mapping[str, Any]], render: Callable[[dict[str, Any]], str | None]
) -> tuple[list[str], list[str]]:
    """Each pool row's question (the final user turn rendered with its variables; None where it does
    not render) and answer, keeping the rows that render."""
    questions, answers = [], []
    for row in rows:
        question = render({k: v for k, v in row.items() if k != spec.answer})
        if question is None or spec.answer not in row:
            continue
        questions.append(question)
        answer = row[spec.answer]
        answers.append(answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False))
    return questions, answers

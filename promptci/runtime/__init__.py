"""The runtime: prompts loaded from a deploy bundle, without git and without the CLI's dependencies.

``promptci.load(name, label=…, bundle=PATH)`` (or ``$PROMPTCI_BUNDLE``) reads a bundle that
``promptci bundle`` wrote and returns the same :class:`~promptci.prompts.prompt.Prompt` as the
registry does, rendering in the same sandbox with the same variable checks. Importing it loads
none of click, gitpython, duckdb, openai, torch, rich or pydantic.

- :mod:`.bundle`: the bundle format, its digest, and reading one.
"""

from __future__ import annotations

from .bundle import BUNDLE_ENV, Bundle, canonical, digest

__all__ = ["BUNDLE_ENV", "Bundle", "canonical", "digest"]

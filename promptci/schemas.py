"""JSON Schemas of the file formats, published for editors (``promptci schema``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

SCHEMA_FILES = {"prompt": "prompt.schema.json", "suite": "suite.schema.json", "config": "config.schema.json"}


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for ``prompt``, ``suite`` or ``config`` files."""
    from .config import Config
    from .evals.suite import Suite
    from .prompts.spec import PromptSpec

    models: dict[str, type[BaseModel]] = {"prompt": PromptSpec, "suite": Suite, "config": Config}
    schema = models[kind].model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": f"promptci {kind}"}

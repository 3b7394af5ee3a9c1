"""JSON Schemas of the file formats, published for editors (``promptci schema``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SCHEMA_FILES = {"prompt": "prompt.schema.json", "suite": "suite.schema.json", "config": "config.schema.json"}


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for ``prompt``, ``suite`` or ``config`` files."""
    from ..config import Config
    from ..evals.suite import Suite
    from ..prompts.spec import PromptSpec

    models: dict[str, type[BaseModel]] = {"prompt": PromptSpec, "suite": Suite, "config": Config}
    schema = models[kind].model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": f"promptci {kind}"}


def write_published(directory: Path | None = None) -> list[Path]:
    """Regenerate the schema files shipped in this package (``python -m promptci.schemas``)."""
    directory = directory or Path(__file__).parent
    written = []
    for kind, filename in SCHEMA_FILES.items():
        path = directory / filename
        path.write_text(json.dumps(json_schema(kind), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written

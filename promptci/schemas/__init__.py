"""JSON Schemas of the file formats, published for editors (``promptci schema``).

The ``options:`` of an ``optimize:`` block take their schema from the chosen method's
config, one conditional per method, so an editor checks ``topk`` under ``method: greater``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SCHEMA_FILES = {
    "prompt": "prompt.schema.json",
    "suite": "suite.schema.json",
    "pipeline": "pipeline.schema.json",
    "config": "config.schema.json",
}


def json_schema(kind: str, methods: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON Schema for ``prompt``, ``suite``, ``pipeline`` or ``config`` files; ``methods`` (default: every
    installed one) get their options described."""
    from ..config import Config
    from ..evals.suite import Suite
    from ..optimize import methods as registry
    from ..pipelines.spec import PipelineSpec
    from ..prompts.spec import PromptSpec

    models: dict[str, type[BaseModel]] = {
        "prompt": PromptSpec,
        "suite": Suite,
        "pipeline": PipelineSpec,
        "config": Config,
    }
    schema = models[kind].model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    if "OptimizeSpec" in defs:
        names = registry.loadable()[0] if methods is None else list(methods)
        defs["OptimizeSpec"]["properties"]["method"]["examples"] = names
        defs["OptimizeSpec"]["allOf"] = [_method_options(defs, name, registry) for name in names]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": f"promptci {kind}"}


def _method_options(defs: dict[str, Any], name: str, registry: Any) -> dict[str, Any]:
    """``if method is NAME then options follow NAME's config`` (the default method also when unnamed)."""
    config = registry.get(name).Config.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(config.pop("$defs", {}))
    key = f"{name}-options"
    defs[key] = {**config, "title": f"{name} options"}
    condition: dict[str, Any] = {"properties": {"method": {"const": name}}, "required": ["method"]}
    if name == registry.DEFAULT:
        condition = {"anyOf": [condition, {"not": {"required": ["method"]}}]}
    return {"if": condition, "then": {"properties": {"options": {"$ref": f"#/$defs/{key}"}}}}


def write_published(directory: Path | None = None) -> list[Path]:
    """Regenerate the schema files shipped in this package (``python -m promptci.schemas``): the
    built-in methods only, so they do not depend on what is installed."""
    from ..optimize.methods import builtin_names

    directory = directory or Path(__file__).parent
    written = []
    for kind, filename in SCHEMA_FILES.items():
        path = directory / filename
        path.write_text(json.dumps(json_schema(kind, builtin_names()), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written

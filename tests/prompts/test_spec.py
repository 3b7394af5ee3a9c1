"""The prompt file format."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from promptci.optimize.methods import builtin_names
from promptci.prompts.spec import PromptSpec
from promptci.schemas import json_schema
from promptci.settings import ModelSettings

from ..conftest import REPO_ROOT


def test_shorthand_variable_types() -> None:
    spec = PromptSpec.model_validate({"name": "a", "template": "{{ x }}", "variables": {"x": "integer", "y": None}})
    assert spec.variables["x"].type == "integer" and spec.variables["x"].required
    assert spec.variables["y"].type == "string"


def test_a_default_makes_a_variable_optional() -> None:
    spec = PromptSpec.model_validate({"name": "a", "template": "t", "variables": {"x": {"default": 3}}})
    assert not spec.variables["x"].required
    with pytest.raises(ValidationError, match="required variable cannot have a default"):
        PromptSpec.model_validate({"name": "a", "template": "t", "variables": {"x": {"default": 3, "required": True}}})


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "a"}, "exactly one of 'messages' or 'template'"),
        ({"name": "a", "template": "t", "messages": [{"role": "user", "content": "c"}]}, "exactly one"),
        ({"name": "a b", "template": "t"}, "String should match pattern"),
        ({"name": "a", "template": "t", "variables": {"not-id": "string"}}, "not a valid identifier"),
        ({"name": "a", "template": "t", "model": {"temperature": 3}}, "less than or equal to 2"),
        ({"name": "a", "template": "t", "extra": 1}, "Extra inputs are not permitted"),
        ({"name": "a", "messages": []}, "at least 1 item"),
    ],
)
def test_invalid_specs_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PromptSpec.model_validate(data)


def test_model_settings_merge_keeps_unset_fields() -> None:
    base = ModelSettings(provider="openai", model="gpt", temperature=0.0, params={"a": 1})
    merged = base.merged(ModelSettings(temperature=0.7, params={"b": 2}))
    assert (merged.provider, merged.model, merged.temperature) == ("openai", "gpt", 0.7)
    assert merged.params == {"a": 1, "b": 2}


@pytest.mark.parametrize("kind", ["prompt", "suite", "pipeline", "config"])
def test_published_schemas_are_current(kind: str) -> None:
    published = REPO_ROOT / "promptci" / "schemas" / f"{kind}.schema.json"
    assert json.loads(published.read_text()) == json_schema(kind, builtin_names()), (
        "run `python -m promptci.schemas` (see docs/development.md)"
    )

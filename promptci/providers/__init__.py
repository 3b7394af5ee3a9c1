"""Model providers behind one protocol, registered as lazy factories.

Built-ins register exactly as a plugin would: a name mapped to a function that
imports its heavy library only when called. Third parties add providers through
the ``promptci.providers`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..plugins import entry_points, registrar

if TYPE_CHECKING:
    from ..settings import ModelSettings
    from .base import Provider

Factory = Callable[["ModelSettings", Path], "Provider"]

PROVIDERS: dict[str, Factory] = {}
register = registrar(PROVIDERS)


@register("transformers")
def _transformers(settings: ModelSettings, root: Path) -> Provider:
    from .local import TransformersProvider

    return TransformersProvider.from_settings(settings, root)


@register("vllm")
def _vllm(settings: ModelSettings, root: Path) -> Provider:
    from .vllm_engine import VLLMProvider

    return VLLMProvider.from_settings(settings, root)


@register("openai")
def _openai(settings: ModelSettings, root: Path) -> Provider:
    from .openai_api import OpenAIProvider

    return OpenAIProvider.from_settings(settings, root)


@register("litellm")
def _litellm(settings: ModelSettings, root: Path) -> Provider:
    from .litellm_api import LiteLLMProvider

    return LiteLLMProvider.from_settings(settings, root)


def create(settings: ModelSettings, root: Path) -> Provider:
    """The provider for ``settings``; with no provider named, the local transformers one.

    Relative model paths are resolved against ``root``.
    """
    name = settings.provider or "transformers"
    factory = PROVIDERS.get(name) or _plugin(name)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise InputError(f"unknown provider '{name}'", hint=f"built in: {known}; or install a plugin")
    return factory(settings, root)


def _plugin(name: str) -> Factory | None:
    ep = entry_points("promptci.providers").get(name)
    if ep is None:
        return None
    factory: Factory = ep.load()
    return factory


def parse_model_option(text: str) -> dict[str, str]:
    """``--model`` as ``[PROVIDER:]MODEL``: ``openai:gpt-4o-mini``, ``./models/x.gguf``, ``HuggingFaceTB/…``."""
    provider, sep, model = text.partition(":")
    if sep and provider in PROVIDERS and model:
        return {"provider": provider, "model": model}
    return {"model": text}


def identity(settings: ModelSettings, root: Path) -> str:
    """The ``model_id`` a provider for ``settings`` will report, without loading the model.

    It keys the response cache, so a fully cached run never loads weights.
    """
    name = settings.provider or "transformers"
    if name in ("transformers", "vllm"):
        from .models import resolve

        local = resolve(settings.model, root).model_id
        return local if name == "transformers" else f"vllm:{local}"
    if name == "openai":
        import os

        from .openai_api import model_id as openai_id

        return openai_id(str(settings.model), settings.params.get("base_url") or os.environ.get("OPENAI_BASE_URL"))
    if name == "litellm":
        from .litellm_api import model_id

        base = settings.params.get("base_url")
        return model_id(str(settings.model), str(base) if base else None)
    return create(settings, root).model_id

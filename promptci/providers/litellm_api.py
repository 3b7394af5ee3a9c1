"""Any provider LiteLLM speaks (Anthropic, Gemini, Bedrock, Azure OpenAI, and the rest), as
``provider: litellm`` with ``model: PROVIDER/MODEL``.

The only module that imports litellm. Everything around the call is the OpenAI provider's:
promptci's own retries with backoff (LiteLLM's are switched off, so every retry is counted),
the concurrency, the budget, token and cost accounting, and redaction. LiteLLM's exceptions are
OpenAI's, so a 429 or a 5xx from any provider is retried the same way.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from ..redact import safe_host
from ..settings import LITELLM_MODEL
from .openai_api import OpenAIProvider

INSTALL = "pip install 'promptci-gate[litellm]'"


def model_id(model: str, base_url: str | None) -> str:
    """``litellm:PROVIDER/MODEL``, with the host when the endpoint is not the provider's own."""
    return f"litellm:{model}" + (f"@{safe_host(base_url)}" if base_url else "")


class LiteLLMProvider(OpenAIProvider):
    """Chat completions through ``litellm.completion``, ``concurrency`` requests in flight."""

    name = "litellm"
    example = "anthropic/claude-3-5-haiku-20241022"

    def _connect(self, base_url: str | None, api_key: str | None, timeout: float) -> None:
        model = self.model
        if not LITELLM_MODEL.match(model):
            raise InputError(f"litellm model {model!r} is not PROVIDER/MODEL", hint=f"e.g. {self.example}")
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list at import
        try:
            import litellm
            import openai
        except ImportError:
            raise InputError("provider: litellm needs the litellm library", hint=INSTALL) from None
        litellm.telemetry = False
        litellm.suppress_debug_info = True
        self._litellm = litellm
        self._openai = openai  # litellm's exceptions subclass these
        if not api_key and base_url and model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
            api_key = "unused"  # a local OpenAI-compatible server accepts any key, as with provider: openai
        self.base_url, self.api_key, self.timeout = base_url, api_key, timeout
        self.model_id = model_id(model, base_url)

    def _create(self, body: dict[str, Any]) -> Any:
        extra: dict[str, Any] = {"timeout": self.timeout, "num_retries": 0, "max_retries": 0, "drop_params": True}
        if self.base_url:
            extra["api_base"] = self.base_url
        if self.api_key:
            extra["api_key"] = self.api_key
        response = self._litellm.completion(**{**body, **extra})  # ours win: its retries stay off
        return response.model_dump() if hasattr(response, "model_dump") else response

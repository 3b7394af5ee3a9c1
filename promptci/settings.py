"""Settings shared by prompts, suites and ``promptci.yaml``: the model to run and the
optimizer pass to opt into. They sit below every noun, so that prompts, evals and the
config can all use them without importing each other."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _int_at_least(low: int, high: int = 1_000_000) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _number(v: Any) -> bool:
    """A finite number that is not a bool (YAML's ``.nan`` and ``.inf`` are floats, and ``true`` an int)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_number(v: Any, high: float = 86_400) -> bool:
    return _number(v) and 0 < v <= high


def _seconds(v: Any) -> bool:
    return _number(v) and 0 <= v <= 3_600


def _price(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and bool(v)
        and set(v) <= {"input", "output"}
        and all(_number(x) and 0 <= x <= 1_000_000_000 for x in v.values())
    )


# LiteLLM picks the provider from the model's prefix.
LITELLM_MODEL = re.compile(r"^[a-z0-9][a-z0-9_\-]*/\S+$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_API_PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {  # openai and litellm
    "base_url": (lambda v: isinstance(v, str) and "://" in v, "a URL such as http://host:port/v1"),
    "api_key_env": (lambda v: isinstance(v, str) and bool(v), "the name of an environment variable"),
    "concurrency": (_int_at_least(1, 256), "a whole number from 1 to 256"),
    "max_retries": (_int_at_least(0, 20), "a whole number from 0 to 20"),
    "timeout": (_positive_number, "a positive number of seconds, at most 86400"),
    "backoff": (_seconds, "a number of seconds from 0 to 3600"),
    "max_backoff": (_seconds, "a number of seconds from 0 to 3600"),
    "price": (_price, "{input: USD, output: USD} per million tokens, each a number from 0 to 10^9"),
    "batch_discount": (lambda v: _number(v) and 0 <= v <= 1, "the share of the price a batch pays, from 0 to 1"),
}
_PARAM_CHECKS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "transformers": {
        "batch_size": (_int_at_least(1, 4096), "a whole number from 1 to 4096"),
        "device": (lambda v: isinstance(v, str) and bool(_DEVICE.match(v)), "auto, cpu, mps, cuda or cuda:N"),
        "dtype": (lambda v: v in ("auto", "float32", "float16", "bfloat16"), "auto, float32, float16 or bfloat16"),
        "prefix_cache": (lambda v: isinstance(v, bool), "true or false"),
        "constrain": (lambda v: isinstance(v, bool), "true or false"),
        "prefix_cache_mb": (lambda v: _number(v) and 0 <= v <= 1_048_576, "a number of MiB from 0 to 1048576"),
        "threads": (_int_at_least(1, 1024), "a whole number from 1 to 1024"),
    },
    "openai": _API_PARAMS,
    "litellm": _API_PARAMS,
    "vllm": {
        "tensor_parallel_size": (_int_at_least(1, 64), "a whole number of GPUs from 1 to 64"),
        "gpu_memory_utilization": (lambda v: _number(v) and 0 < v <= 1, "a share of GPU memory above 0, at most 1"),
        "dtype": (lambda v: v in ("auto", "float32", "float16", "bfloat16"), "auto, float32, float16 or bfloat16"),
        "batch_size": (_int_at_least(1, 4096), "a whole number from 1 to 4096"),
        "prefix_cache": (lambda v: isinstance(v, bool), "true or false"),
    },
}


class ModelSettings(_Strict):
    """Default model settings for a prompt, or for the whole project in ``promptci.yaml``."""

    provider: str | None = Field(None, description="transformers, openai, litellm, vllm, or a plugin's name")
    model: str | None = Field(None, description="model id, directory, GGUF file or API model name")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    stop: list[str] | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="extra provider parameters")
    batch: bool | None = Field(
        None, description="send this model's calls through the provider's batch API (openai), at its batch price"
    )

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The built-in providers' parameters must have usable values; plugins' are theirs to check."""
        checks = _PARAM_CHECKS.get(info.data.get("provider") or "transformers", {})
        for name, value in params.items():
            check = checks.get(name)
            if check is not None and not check[0](value):
                raise ValueError(f"{name}: {value!r} is not {check[1]}")
        return params

    @field_validator("model")
    @classmethod
    def _litellm_form(cls, model: str | None, info: ValidationInfo) -> str | None:
        """LiteLLM picks the provider from the model's prefix: ``anthropic/claude-…``, ``gemini/…``."""
        if info.data.get("provider") == "litellm" and model is not None and not LITELLM_MODEL.match(model):
            raise ValueError(f"{model!r} is not PROVIDER/MODEL, as litellm needs (e.g. anthropic/claude-3-5-haiku)")
        return model

    def merged(self, override: ModelSettings | None) -> ModelSettings:
        """These settings with every field that ``override`` sets replacing ours."""
        if override is None:
            return self
        changes = {k: getattr(override, k) for k in override.model_fields_set}
        if "params" in changes:
            changes["params"] = {**self.params, **override.params}
        return self.model_copy(update=changes)


BudgetKey = Literal["calls", "tokens", "cost", "seconds"]


class OptimizeSpec(_Strict):
    """An opt-in optimizer pass in CI: on a change to the prompt, on a PR label, or on a schedule.

    Given under ``optimize:`` in the prompt file, or under ``optimize: {NAME: ...}`` in
    ``promptci.yaml``. ``promptci optimize --changed`` (and the GitHub workflow) runs it.
    """

    suite: str = Field(description="the eval suite to optimize on (a name under evals/)")
    method: str = Field(
        "gpo",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*(\+[A-Za-z_][A-Za-z0-9_.-]*)*$",
        description="the optimizer method: auto (probe, then choose), gpo, opro, gepa, textgrad, greater, catalyst,"
        " demos, a plugin's, or a chain such as gpo+demos (options per link: {demos: {k: 2}})",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the method's own options (`promptci optimize --list-methods` lists them), e.g. {topk: 40}",
    )
    budget: dict[BudgetKey, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="stop the search at this many calls, tokens, cost or seconds"
    )
    steps: Annotated[int, Field(gt=0)] | None = Field(None, description="search steps (default: the method's)")
    candidates: Annotated[int, Field(gt=0)] = 8
    task_model: str | None = Field(None, description="[provider:]model answering the cases (default: the suite's)")
    optimizer_model: str | None = Field(None, description="[provider:]model proposing instructions")
    min_gain: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="open a PR only if the held-out gain is above 0 and at least this"
    )
    alpha: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.05, description="open a PR only if the held-out gain is significant at this level (paired test)"
    )
    schedule: Literal["daily", "weekly", "monthly"] | None = Field(
        None, description="also run on the workflow's schedule: every day, on Mondays, or on the 1st (UTC)"
    )
    split: str = Field("0.2/0.2/0.6", description="train/dev/test fractions")
    seed: int = 0

    @field_validator("split")
    @classmethod
    def _fractions(cls, value: str) -> str:
        try:
            parse_fractions(value)
        except InputError as exc:
            raise ValueError(exc.hint) from None
        return value

    @field_validator("task_model", "optimizer_model")
    @classmethod
    def _model_option(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("name a model, e.g. openai:gpt-4o-mini or a local directory")
        return value


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.2/0.2/0.6"`` (or commas) as three fractions summing to 1."""
    try:
        parts = tuple(float(p) for p in text.replace(",", "/").split("/"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p <= 0 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise InputError(f"bad --split '{text}'", hint="three positive fractions summing to 1, e.g. 0.2/0.2/0.6")
    return parts[0], parts[1], parts[2]


def image_refusal(settings: ModelSettings) -> str | None:
    """Why ``settings``' model cannot be sent images (the local transformers provider loads text
    models, the embedded SmolLM2 among them); None when it can."""
    if (provider := settings.provider or "transformers") in ("transformers", "vllm"):
        return f"model '{settings.model or 'SmolLM2-135M-Instruct'}' ({provider}) takes no images"
    return None


def loglik_refusal(provider: str | None) -> str | None:
    """Why a choice ranked by likelihood cannot run on ``provider`` (None: the local default,
    which gives log-probabilities); None when it can."""
    if (provider or "transformers") in ("transformers", "vllm"):
        return None
    return f"mode: loglik needs log-probabilities, and provider '{provider}' does not give them"

"""``provider: vllm``: vLLM's offline engine in this process, on a GPU.

The model is the same as ``provider: transformers`` would load (a hub id, a directory, or a
GGUF file through its converted copy), and the prompt the same text: the chat template, tools
shown as the local provider shows them. vLLM batches every request of a call at once, with
automatic prefix caching (the shared template, instruction and demonstrations are computed
once) and tensor parallelism across ``params.tensor_parallel_size`` GPUs. Sampling settings map
as the other providers': temperature, top_p, max_tokens, stop, and a seed per repeat.

Choices ranked by likelihood (``mode: loglik``) are scored from ``prompt_logprobs`` on the
prompt followed by each choice: the same sums, normalisation and prior as the local provider's.
Tool calls are read back from the text as the local provider reads them; decoding is not
constrained to their grammar here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import ModelSettings
from . import models, structured
from .base import Completion, OnDone, Request, apply_stop
from .local import TransformersProvider

INSTALL = "pip install 'promptci-gate[vllm]' on a Linux machine with an NVIDIA GPU"


def require() -> Any:
    """vLLM, on a machine with a CUDA GPU; else one line saying which is missing."""
    try:
        import torch
        import vllm
    except ImportError:
        raise InputError("provider: vllm needs vLLM", hint=INSTALL) from None
    if not torch.cuda.is_available():
        raise InputError(
            "provider: vllm needs a CUDA GPU, and this machine has none", hint="use provider: transformers"
        )
    return vllm


class VLLMProvider(TransformersProvider):
    """A causal LM served by vLLM's ``LLM`` engine in this process."""

    def __init__(self, source: models.ModelSource, params: dict[str, Any]) -> None:
        vllm = require()
        models.quiet_transformers()
        path = str(models.converted_dir(Path(source.location))) if source.kind == "gguf" else source.location
        self.model_id = f"vllm:{source.model_id}"
        self.batch_size = int(params.get("batch_size", 256))
        self.prefixes = None
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=path,
            tensor_parallel_size=int(params.get("tensor_parallel_size", 1)),
            dtype=str(params.get("dtype", "auto")),
            gpu_memory_utilization=float(params.get("gpu_memory_utilization", 0.85)),
            enable_prefix_caching=bool(params.get("prefix_cache", True)),
            seed=0,
        )
        self.tokenizer = self.llm.get_tokenizer()

    @classmethod
    def from_settings(cls, settings: ModelSettings, root: Path | None = None) -> VLLMProvider:
        return cls(models.resolve(settings.model, root or Path.cwd()), dict(settings.params))

    def _sampling(self, request: Request) -> Any:
        p = request.params
        seed = (p.seed or 0) * 1_000_003 + request.repeat if (p.seed is not None or p.temperature > 0) else None
        return self._vllm.SamplingParams(
            temperature=p.temperature,
            top_p=p.top_p if p.top_p is not None else 1.0,
            max_tokens=p.max_tokens,
            stop=list(p.stop) or None,
            seed=seed,
        )

    def generate(self, requests: Sequence[Request], on_done: OnDone, should_stop: Callable[[], bool]) -> None:
        ranked = [i for i, r in enumerate(requests) if r.choices]
        if ranked and not should_stop():
            for i, completion in zip(ranked, self._rank([requests[i] for i in ranked]), strict=True):
                on_done(i, completion)
        rest = [i for i, r in enumerate(requests) if not r.choices]
        if not rest or should_stop():
            return
        start = time.perf_counter()
        prompts = [self.format(requests[i]) for i in rest]
        outputs = self.llm.generate(prompts, [self._sampling(requests[i]) for i in rest], use_tqdm=False)
        per_item = (time.perf_counter() - start) * 1000 / len(rest)
        for i, output in zip(rest, outputs, strict=True):
            r, out = requests[i], output.outputs[0]
            text = apply_stop(out.text, r.params.stop).strip()
            shape = structured.Shape.of(r.tools)
            tokens_in = len(output.prompt_token_ids or ())
            on_done(
                i, Completion(structured.read_reply(text, shape), None, per_item, tokens_in, len(out.token_ids), 0.0)
            )

    def loglik(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        """Each continuation's summed log-probability after its context, from ``prompt_logprobs``;
        the pair is tokenized whole, and the continuation is what follows the context's tokens."""
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        rows: list[tuple[list[int], int]] = []
        for context, continuation in pairs:
            head = self.encode(context) if context else [start]
            whole = self.encode(context + continuation) if context else [start, *self.encode(continuation)]
            if whole[: len(head)] != head:
                head = head[:-1]
            rows.append((whole, max(1, len(head))))
        sampling = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        prompts = [{"prompt_token_ids": whole} for whole, _ in rows]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        results = []
        for (whole, cut), output in zip(rows, outputs, strict=True):
            logprobs = output.prompt_logprobs or []
            total = sum(logprobs[k][whole[k]].logprob for k in range(cut, len(whole)) if logprobs[k])
            results.append((float(total), len(whole) - cut))
        return results

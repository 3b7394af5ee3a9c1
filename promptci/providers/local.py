"""In-process generation with transformers: batched, left-padded, chat-templated.

With ``models.converted_dir`` and :mod:`.differentiable` (the same model seen through its
gradients), the only modules that import torch and transformers. Chat templates and
padding are done here, once, for both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import ModelSettings
from . import models
from .base import Completion, GenParams, OnDone, Request, apply_stop


class TransformersProvider:
    """A causal LM loaded in this process, on CUDA when present, else the CPU."""

    def __init__(
        self, source: models.ModelSource, *, device: str = "auto", dtype: str = "auto", batch_size: int = 16
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise InputError(
                "the transformers provider needs torch and transformers", hint=f"run `{models.LOCAL_INSTALL}`"
            ) from None
        models.quiet_transformers()
        path = str(models.converted_dir(Path(source.location))) if source.kind == "gguf" else source.location
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.dtype = _dtype(torch, dtype, self.device)
        self.batch_size = batch_size
        self.model_id = source.model_id
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype).to(self.device).eval()
        self._torch = torch

    @classmethod
    def from_settings(cls, settings: ModelSettings, root: Path | None = None) -> TransformersProvider:
        p = settings.params
        source = models.resolve(settings.model, root or Path.cwd())
        return cls(
            source,
            device=str(p.get("device", "auto")),
            dtype=str(p.get("dtype", "auto")),
            batch_size=int(p.get("batch_size", 16)),
        )

    def format(self, request: Request) -> str:
        """The prompt text the model sees for ``request``."""
        return self.chat_text(request.chat)

    def chat_text(self, messages: Sequence[dict[str, str]]) -> str:
        """``messages`` as the model reads them: the chat template when the tokenizer has one.

        A final assistant message is a prefill: the model continues it.
        """
        if getattr(self.tokenizer, "chat_template", None):
            prefill = messages[-1]["role"] == "assistant"
            text: str = self.tokenizer.apply_chat_template(
                list(messages),
                tokenize=False,
                add_generation_prompt=not prefill,
                continue_final_message=prefill,
            )
            return text
        return "\n\n".join(m["content"] for m in messages) + "\n"

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def pad(self, rows: Sequence[list[int]], *, left: bool) -> tuple[Any, Any]:
        """``rows`` as one tensor of ids padded to the longest (on the left for generation), and
        its attention mask."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids, mask = [], []
        for r in rows:
            fill = width - len(r)
            ids.append([pad] * fill + r if left else r + [pad] * fill)
            mask.append([0] * fill + [1] * len(r) if left else [1] * len(r) + [0] * fill)
        torch = self._torch
        return torch.tensor(ids, device=self.device), torch.tensor(mask, device=self.device)

    def generate_ids(self, rows: Sequence[list[int]], params: GenParams, repeat: int = 0) -> list[list[int]]:
        """The new tokens for each row of prompt ids, in one left-padded batch, cut at the end of text."""
        torch = self._torch
        ids, mask = self.pad(rows, left=True)
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if params.stop:  # stop generating there, not just cut the text afterwards
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature)
            if params.top_p is not None:
                kwargs["top_p"] = params.top_p
            torch.manual_seed((params.seed or 0) * 1_000_003 + repeat)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        new = []
        for row in out[:, ids.shape[1] :].tolist():
            new.append(row[: next((k for k, tok in enumerate(row) if tok in eos), len(row))])
        return new

    def loglik(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        """For each (context, continuation), the continuation's log-likelihood summed over its
        tokens, and how many tokens it has; batched, nothing generated.

        As lm-eval-harness does, the pair is tokenized whole and the continuation is what
        follows the context's own tokens; an empty context starts from the BOS (or EOS) token.
        """
        torch = self._torch
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        rows: list[tuple[list[int], int]] = []
        for context, continuation in pairs:
            head = self.encode(context) if context else [start]
            whole = self.encode(context + continuation) if context else [start, *self.encode(continuation)]
            if whole[: len(head)] != head:  # the boundary merged into one token: split before it
                head = head[:-1]
            rows.append((whole, max(1, len(head))))
        results: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin : begin + self.batch_size]
            ids, mask = self.pad([rows[i][0] for i in batch], left=False)
            with torch.inference_mode():
                logprobs = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for row, i in enumerate(batch):
                whole, cut = rows[i]
                if cut >= len(whole):
                    results[i] = (0.0, 0)
                    continue
                targets = torch.tensor(whole[cut:], device=self.device)
                picked = logprobs[row, cut - 1 : len(whole) - 1].gather(1, targets[:, None])
                results[i] = (float(picked.sum()), len(whole) - cut)
        return results

    def generate(self, requests: Sequence[Request], on_done: OnDone, should_stop: Callable[[], bool]) -> None:
        ranked = [i for i, r in enumerate(requests) if r.choices]
        for start in range(0, len(ranked), self.batch_size):
            if should_stop():
                return
            batch = ranked[start : start + self.batch_size]
            try:
                done = self._rank([requests[i] for i in batch])
            except RuntimeError as exc:
                done = [Completion(error=f"{type(exc).__name__}: {exc}") for _ in batch]
            for i, completion in zip(batch, done, strict=True):
                on_done(i, completion)
        texts = {i: self.format(r) for i, r in enumerate(requests) if not r.choices}
        # Batch requests that share decoding settings, shortest first, so padding stays small.
        order = sorted(texts, key=lambda i: (_params_key(requests[i]), len(texts[i]), requests[i].repeat))
        for _, group in groupby(order, key=lambda i: _params_key(requests[i])):
            indices = list(group)
            for start in range(0, len(indices), self.batch_size):
                if should_stop():
                    return
                batch = indices[start : start + self.batch_size]
                try:
                    done = self._batch([texts[i] for i in batch], requests[batch[0]].params, requests[batch[0]].repeat)
                except RuntimeError as exc:  # out of memory, device errors: recorded, not scored
                    done = [Completion(error=f"{type(exc).__name__}: {exc}") for _ in batch]
                for i, completion in zip(batch, done, strict=True):
                    on_done(i, completion)

    def _rank(self, requests: Sequence[Request]) -> list[Completion]:
        """Each request's choices ranked by log-likelihood after its prompt; nothing generated.

        The pick is the highest summed log-probability (per character of the choice with
        ``normalize``, lm-eval-harness's acc_norm). With a ``prior`` (contextual calibration,
        Zhao et al. 2021), each choice's probability, normalised over the choices, is divided
        by its probability after the content-free prompt.
        """
        start = time.perf_counter()
        contexts = [self.format(r) for r in requests]
        pairs: list[tuple[str, str]] = []
        for r, context in zip(requests, contexts, strict=True):
            pairs += [(context, c) for c in r.choices]
            if r.prior:
                prior = self.chat_text([{"role": role, "content": content} for role, content in r.prior])
                pairs += [(prior, c) for c in r.choices]
        scored = iter(self.loglik(pairs))
        per_item = (time.perf_counter() - start) * 1000 / len(requests)
        done = []
        for r, context in zip(requests, contexts, strict=True):
            raw = [next(scored)[0] for _ in r.choices]
            values = _per_byte(raw, r.choices) if r.normalize else raw
            meta: dict[str, Any] = {"logprobs": dict(zip(r.choices, (round(v, 4) for v in raw), strict=True))}
            if r.prior:
                base = [next(scored)[0] for _ in r.choices]
                base = _per_byte(base, r.choices) if r.normalize else base
                values = [a - b for a, b in zip(_log_softmax(values), _log_softmax(base), strict=True)]
                meta["prior"] = dict(zip(r.choices, (round(v, 4) for v in base), strict=True))
            best = max(range(len(values)), key=values.__getitem__)
            meta["ranked"] = dict(zip(r.choices, (round(v, 4) for v in values), strict=True))
            tokens = len(self.encode(context))
            done.append(Completion(r.choices[best], None, per_item, tokens, 0, 0.0, meta))
        return done

    def _batch(self, texts: list[str], params: GenParams, repeat: int) -> list[Completion]:
        start = time.perf_counter()
        rows = [self.encode(t) for t in texts]
        new = self.generate_ids(rows, params, repeat)
        per_item = (time.perf_counter() - start) * 1000 / len(texts)
        completions = []
        for prompt, out in zip(rows, new, strict=True):
            text = self.tokenizer.decode(out, skip_special_tokens=True)
            completions.append(
                Completion(apply_stop(text, params.stop).strip(), None, per_item, len(prompt), len(out), 0.0)
            )
        return completions


def _params_key(request: Request) -> tuple[Any, ...]:
    p = request.params
    # Sampled requests share a batch too; the batch is seeded by its first repeat index, so
    # the same requests sample the same texts (a different mix of requests may not).
    return (p.max_tokens, p.temperature, p.top_p, p.seed, p.stop)


def _per_byte(values: list[float], choices: Sequence[str]) -> list[float]:
    """Log-likelihoods per byte of their choice (lm-eval-harness's acc_norm)."""
    return [v / max(1, len(c.encode())) for v, c in zip(values, choices, strict=True)]


def _log_softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    total = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - total for v in values]


def _dtype(torch: Any, name: str, device: str) -> Any:
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return getattr(torch, name)
    except AttributeError:
        raise InputError(f"unknown dtype '{name}'", hint="use auto, float32, bfloat16 or float16") from None

"""In-process generation with transformers: batched, chat-templated, shared prefixes run once.

With ``models.converted_dir`` and :mod:`.differentiable` (the same model seen through its
gradients), the only modules that import torch and transformers. Chat templates and
padding are done here, once, for both.

The rows of a batch usually begin alike: the chat template, a system message, the
instruction, the demonstrations. That shared prefix is run once, kept in a
:class:`~.prefix.PrefixStore` across batches and calls, and its key/value states are expanded
over the batch; each row then runs only its own suffix, placed after the prefix with the
padding between the two (masked, and skipped by the position ids). ``prefix_cache: false``
in ``model.params`` runs every row whole, left-padded, as a check and for debugging.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import ModelSettings
from . import models, structured
from .base import Completion, GenParams, OnDone, Request, apply_stop
from .prefix import MIN_SHARED, Layers, PrefixStore, plan_batches, shared_prefix

DEFAULT_PREFIX_CACHE_MB = 256


class TransformersProvider:
    """A causal LM loaded in this process, on CUDA when present, else the CPU."""

    def __init__(
        self,
        source: models.ModelSource,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        prefix_cache_mb: float | None = DEFAULT_PREFIX_CACHE_MB,
        threads: int | None = None,
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
        if self.device == "cpu" and not torch.cuda.is_available():
            # Masked attention over grouped key/value heads: transformers copies each key/value head
            # once per query head it serves (three copies of the cache per layer for SmolLM2);
            # torch's CPU attention reads the groups as they are, at half the time for a long prefix.
            # The switch is process-wide, so it is left alone where a GPU may run a model too.
            os.environ.setdefault("TRANSFORMERS_SDPA_FORCE_GQA", "1")
        if threads or "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(threads or available_cores())
        limit = int((prefix_cache_mb or 0) * 2**20)
        self.prefixes = PrefixStore(self._extend, limit) if prefix_cache_mb is not None else None

    @classmethod
    def from_settings(cls, settings: ModelSettings, root: Path | None = None) -> TransformersProvider:
        p = settings.params
        source = models.resolve(settings.model, root or Path.cwd())
        return cls(
            source,
            device=str(p.get("device", "auto")),
            dtype=str(p.get("dtype", "auto")),
            batch_size=int(p.get("batch_size", 16)),
            prefix_cache_mb=float(p.get("prefix_cache_mb", DEFAULT_PREFIX_CACHE_MB))
            if p.get("prefix_cache", True)
            else None,
            threads=int(p["threads"]) if "threads" in p else None,
        )

    def format(self, request: Request) -> str:
        """The prompt text the model sees for ``request``, its tools shown as its chat template
        shows them, or in :func:`.structured.preamble`."""
        if not request.tools and not request.turns:
            return self.chat_text(request.chat)
        template = getattr(self.tokenizer, "chat_template", None) or ""
        return self.chat_text(*structured.for_template(request.chat, structured.Shape.of(request.tools), template))

    def chat_text(self, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        """``messages`` as the model reads them: the chat template when the tokenizer has one.

        A final assistant message is a prefill: the model continues it.
        """
        if getattr(self.tokenizer, "chat_template", None):
            prefill = messages[-1]["role"] == "assistant"
            text: str = self.tokenizer.apply_chat_template(
                list(messages),
                tools=tools,
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

    def generate_ids(
        self, rows: Sequence[list[int]], params: GenParams, repeat: int = 0, grammar: Any = None
    ) -> list[list[int]]:
        """The new tokens for each row of prompt ids, in one batch, cut at the end of text.

        With the prefix cache, the rows' shared prefix comes from the store and only the
        suffixes are run; else the rows are left-padded and run whole. ``grammar`` (a
        :class:`.constrained.GrammarMask`) keeps each row within its grammar.
        """
        torch = self._torch
        shared = min(shared_prefix(rows), min(len(r) for r in rows) - 1) if self.prefixes is not None else 0
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if shared >= MIN_SHARED:
            ids, mask, kwargs["cache"] = self._after_prefix(rows, shared, params.max_tokens)
        else:
            ids, mask = self.pad(rows, left=True)
        if grammar is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([grammar])
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

    def _after_prefix(self, rows: Sequence[list[int]], shared: int, max_new: int) -> tuple[Any, Any, Any]:
        """Ids, attention mask and cache for ``rows`` whose first ``shared`` tokens are cached:
        each row is the prefix, then padding, then its own suffix; the positions that
        ``generate`` derives from the mask skip the padding. The cache is copied once into
        room for the whole generation, so each new token is written in place rather than the
        whole cache copied again."""
        states = self._prefix_states(rows[0][:shared])
        n = len(rows)
        tails = [r[shared:] for r in rows]
        width = max(len(t) for t in tails)
        cache = self._cache()
        room = width + max_new + 1
        layer = _roomy_layer()
        cache.layers = [layer(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1), room) for k, v in states]
        pad = self.tokenizer.pad_token_id
        ids = [rows[0][:shared] + [pad] * (width - len(t)) + t for t in tails]
        mask = [[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails]
        torch = self._torch
        return torch.tensor(ids, device=self.device), torch.tensor(mask, device=self.device), cache

    def _prefix_states(self, ids: Sequence[int]) -> Layers:
        assert self.prefixes is not None
        return self.prefixes.states(ids)

    def _cache(self, layers: Layers | None = None) -> Any:
        from transformers import DynamicCache

        return DynamicCache(layers) if layers else DynamicCache()

    def _extend(self, base: Layers | None, ids: Sequence[int], start: int) -> Layers:
        """The key/value states of ``ids``, given those of its first ``start`` tokens."""
        torch = self._torch
        cache = self._cache(base)
        x = torch.tensor([list(ids[start:])], device=self.device)
        positions = torch.arange(start, len(ids), device=self.device)[None]
        with torch.inference_mode():
            self.model(input_ids=x, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
        return [(layer.keys, layer.values) for layer in cache.layers]

    def loglik(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        """For each (context, continuation), the continuation's log-likelihood summed over its
        tokens, and how many tokens it has; batched, nothing generated.

        As lm-eval-harness does, the pair is tokenized whole and the continuation is what
        follows the context's own tokens; an empty context starts from the BOS (or EOS) token.
        With the prefix cache, each context is run once for all its continuations, after the
        prefix its batch shares.
        """
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        rows: list[tuple[list[int], int]] = []
        for context, continuation in pairs:
            head = self.encode(context) if context else [start]
            whole = self.encode(context + continuation) if context else [start, *self.encode(continuation)]
            if whole[: len(head)] != head:  # the boundary merged into one token: split before it
                head = head[:-1]
            rows.append((whole, max(1, len(head))))
        if self.prefixes is None:
            return self._loglik_whole(rows)
        cases: dict[str, list[int]] = {}
        for i, (context, _) in enumerate(pairs):
            cases.setdefault(context, []).append(i)
        groups = [g for g in cases.values()]
        # Each case's context: what all its rows share, up to the token before its first continuation.
        contexts = []
        for g in groups:
            n = min(shared_prefix([rows[i][0] for i in g]), min(rows[i][1] for i in g) - 1)
            contexts.append(rows[g[0]][0][:n])
        results: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
        for batch in plan_batches(contexts, self.batch_size):
            self._loglik_cases([groups[c] for c in batch], [contexts[c] for c in batch], rows, results)
        return results

    def _loglik_cases(
        self,
        groups: list[list[int]],
        contexts: list[list[int]],
        rows: list[tuple[list[int], int]],
        results: list[tuple[float, int]],
    ) -> None:
        """Score the rows of ``groups`` (cases, each a list of row indices sharing its context).

        Step one runs each context after the prefix the cases share (right-padded); step two
        copies each case's states to its rows and runs their continuations.
        """
        torch = self._torch
        shared = shared_prefix(contexts)
        if shared < MIN_SHARED:
            shared = 0
            if any(not c for c in contexts):  # a row with nothing before it: run every row whole
                contexts = [[] for _ in contexts]
        base = self._prefix_states(contexts[0][:shared]) if shared else None
        n = len(contexts)
        cache = self._cache([(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in base] if base else None)
        tails = [c[shared:] for c in contexts]
        width = max(len(t) for t in tails)
        seen = [[1] * (shared + len(t)) + [0] * (width - len(t)) for t in tails]
        if width:
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([t + [pad] * (width - len(t)) for t in tails], device=self.device)
            positions = torch.arange(shared, shared + width, device=self.device).expand(n, -1)
            with torch.inference_mode():
                self.model(
                    input_ids=ids,
                    attention_mask=torch.tensor(seen, device=self.device),
                    position_ids=positions,
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
        states = [(layer.keys, layer.values) for layer in cache.layers]
        todo = [(c, i) for c, g in enumerate(groups) for i in g if rows[i][1] < len(rows[i][0])]
        step = 4 * self.batch_size
        for begin in range(0, len(todo), step):
            self._continuations(todo[begin : begin + step], contexts, seen, states, rows, results)

    def _continuations(
        self,
        todo: list[tuple[int, int]],
        contexts: list[list[int]],
        seen: list[list[int]],
        states: Layers,
        rows: list[tuple[list[int], int]],
        results: list[tuple[float, int]],
    ) -> None:
        torch = self._torch
        pick = torch.tensor([c for c, _ in todo], device=self.device)
        cache = self._cache([(k.index_select(0, pick), v.index_select(0, pick)) for k, v in states])
        inputs = [rows[i][0][len(contexts[c]) : -1] for c, i in todo]
        width = max(len(x) for x in inputs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([x + [pad] * (width - len(x)) for x in inputs], device=self.device)
        mask = [seen[c] + [1] * len(x) + [0] * (width - len(x)) for (c, _), x in zip(todo, inputs, strict=True)]
        positions = torch.tensor([[len(contexts[c]) + k for k in range(width)] for c, _ in todo], device=self.device)
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids,
                attention_mask=torch.tensor(mask, device=self.device),
                position_ids=positions,
                cache=cache,
            ).logits
            for row, (c, i) in enumerate(todo):
                whole, cut = rows[i]
                offset = len(contexts[c])
                targets = torch.tensor(whole[cut:], device=self.device)
                logprobs = torch.log_softmax(logits[row, cut - 1 - offset : len(whole) - 1 - offset].float(), dim=-1)
                results[i] = (float(logprobs.gather(1, targets[:, None]).sum()), len(whole) - cut)

    def _loglik_whole(self, rows: list[tuple[list[int], int]]) -> list[tuple[float, int]]:
        """Each row run whole, right-padded, shortest first: the path without the prefix cache."""
        torch = self._torch
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
        rows = {i: self.encode(self.format(r)) for i, r in enumerate(requests) if not r.choices}
        # Batch requests that share decoding settings; within them, rows sharing a prefix, then by length.
        order = sorted(rows, key=lambda i: (_params_key(requests[i]), requests[i].repeat))
        for _, group in groupby(order, key=lambda i: _params_key(requests[i])):
            indices = list(group)
            for planned in plan_batches([rows[i] for i in indices], self.batch_size):
                if should_stop():
                    return
                batch = [indices[k] for k in planned]
                first = requests[batch[0]]
                try:
                    done = self._batch([rows[i] for i in batch], [requests[i] for i in batch], first.repeat)
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

    def _batch(self, rows: list[list[int]], requests: Sequence[Request], repeat: int) -> list[Completion]:
        """One batch of requests that share decoding settings; each with tools or a response
        format is decoded under its grammar (unless ``constrain: false``), and its tool calls
        read back from the text."""
        start = time.perf_counter()
        params = requests[0].params
        shapes = [structured.Shape.of(r.tools) for r in requests]
        grammars = structured.grammars(shapes, dict(params.extra))
        mask = None
        if any(grammars):
            from .constrained import GrammarMask

            mask = GrammarMask(self.tokenizer, grammars)
        new = self.generate_ids(rows, params, repeat, mask)
        per_item = (time.perf_counter() - start) * 1000 / len(rows)
        completions = []
        for k, (prompt, out) in enumerate(zip(rows, new, strict=True)):
            if mask is not None and mask.errors[k]:
                completions.append(Completion(error=f"grammar: {mask.errors[k]}"))
                continue
            text = apply_stop(self.tokenizer.decode(out, skip_special_tokens=True), params.stop).strip()
            meta: dict[str, Any] = {}
            if mask is not None and (whole := mask.finished(k)) is not None:
                meta["grammar"] = "complete" if whole else "cut off at max_tokens"
            completions.append(
                Completion(structured.read_reply(text, shapes[k]), None, per_item, len(prompt), len(out), 0.0, meta)
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


@functools.cache
def _roomy_layer() -> Any:
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):  # type: ignore[misc]
        """A dynamic cache layer with room reserved after its states: new states are written in
        place (the plain layer concatenates, copying every state at every generated token)."""

        def __init__(self, keys: Any, values: Any, room: int) -> None:
            super().__init__()
            b, h, n, d = keys.shape
            self._k, self._v = keys.new_empty((b, h, n + room, d)), values.new_empty((b, h, n + room, d))
            self._k[:, :, :n], self._v[:, :, :n] = keys, values
            self.device, self.is_initialized, self.length = keys.device, True, n
            self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]
            self._view = self.keys

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            end = self.length + key_states.shape[-2]
            if end > self._k.shape[-2] or self.keys is not self._view:  # no room, or cropped: as the plain layer
                keys, values = super().update(key_states, value_states, *args, **kwargs)
                self._k, self._v, self.length, self._view = keys, values, keys.shape[-2], keys
                return keys, values
            self._k[:, :, self.length : end], self._v[:, :, self.length : end] = key_states, value_states
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            self._view = self.keys
            return self.keys, self.values

    return RoomyLayer


def available_cores() -> int:
    """The cores this process may run on (its affinity, as containers and CI runners set it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _dtype(torch: Any, name: str, device: str) -> Any:
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return getattr(torch, name)
    except AttributeError:
        raise InputError(f"unknown dtype '{name}'", hint="use auto, float32, bfloat16 or float16") from None

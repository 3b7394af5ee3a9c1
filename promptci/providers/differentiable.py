"""A local transformers model seen through its gradients: what token search by gradient needs.

:class:`DifferentiableLM` wraps a loaded :class:`~.local.TransformersProvider` (the very
model the eval engine generates with) and offers, in plain Python values:

- the chat-templated layout of a prompt around a marked span, and greedy generation,
  both through the provider, so chat templates and padding exist once;
- each row's top-k next tokens, restricted to printable ASCII;
- per sequence, an objective over an *answer span* (cross-entropy at a temperature) plus a
  weight times the mean NLL of an *instruction span*, whether the answer's greedy tokens
  are wrong, and that NLL;
- the gradient of the summed objective with respect to a one-hot over candidate tokens at
  one position of the instruction span.

The weights never receive gradients; only the one-hot does. Every pass runs the
sequences in right-padded batches of ``batch`` (the attention mask hides the padding, and
causal attention keeps it from touching real tokens). The one-hot is one leaf shared by
all sequences, so the gradient of the summed loss is the sum of their gradients,
accumulated over batches. ``checkpointing`` recomputes activations in the backward pass
instead of keeping them: less memory for a longer pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .base import GenParams
from .local import TransformersProvider


@dataclass(frozen=True)
class Scoring:
    """One sequence to score: its ids, the instruction span and where the answer starts."""

    ids: list[int]
    start: int  # where the instruction starts
    length: int  # how many tokens it has
    answer_at: int  # the answer runs from here to the end


class DifferentiableLM:
    def __init__(
        self,
        provider: object,
        *,
        temperature: float = 0.2,
        nll_weight: float = 0.2,
        batch: int = 8,
        checkpointing: bool = False,
    ) -> None:
        if not isinstance(provider, TransformersProvider):
            raise InputError(
                "this method needs a local transformers task model (it reads the model's gradients)",
                hint="use --task-model with a local model directory, GGUF file or the default SmolLM2",
            )
        torch = provider._torch
        self.torch = torch
        self.provider = provider
        self.model = provider.model
        self.tokenizer = provider.tokenizer
        self.device = provider.device
        self.model.requires_grad_(False)
        self.embeddings = self.model.get_input_embeddings().weight
        self.temperature = temperature
        self.nll_weight = nll_weight
        self.batch = max(1, batch)
        self.checkpointing = checkpointing
        if checkpointing:
            enable = getattr(self.model, "activation_checkpointing_enable", None)
            if enable is not None:  # transformers >= 5.18
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        vocab = len(self.tokenizer)
        self.allowed = torch.zeros(self.embeddings.shape[0], dtype=torch.bool, device=self.device)
        special = set(self.tokenizer.all_special_ids)
        for token_id in range(min(vocab, self.embeddings.shape[0])):
            text = self.tokenizer.decode([token_id])
            if token_id not in special and text and text.isascii() and text.isprintable():
                self.allowed[token_id] = True

    def encode(self, text: str) -> list[int]:
        return self.provider.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    def layout(self, messages: list[dict[str, str]], mark: str) -> tuple[list[int], list[int]]:
        """Token ids before and after ``mark`` in the chat-templated prompt, ready for the reply."""
        text = self.provider.chat_text(messages)
        if mark not in text:
            raise InputError("the instruction does not appear in the rendered prompt")
        head, tail = text.split(mark, 1)
        return self.encode(head), self.encode(tail)

    def _chunks(self, items: Sequence[Any]) -> list[Sequence[Any]]:
        return [items[k : k + self.batch] for k in range(0, len(items), self.batch)]

    def greedy(self, prompts: Sequence[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy continuations of ``prompts``, cut at the end of text, in batches."""
        params = GenParams(max_new_tokens, 0.0)
        return [out for chunk in self._chunks(prompts) for out in self.provider.generate_ids(chunk, params)]

    def top_next(self, prefixes: Sequence[list[int]], k: int, banned: Sequence[int | None]) -> list[set[int]]:
        """Each prefix's top-k next tokens among the allowed ones, ``banned[j]`` excluded."""
        torch = self.torch
        found = []
        for start in range(0, len(prefixes), self.batch):
            rows = prefixes[start : start + self.batch]
            ids, mask = self.provider.pad(rows, left=False)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            last = logits[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])].float()
            last = last.masked_fill(~self.allowed[: last.shape[1]], float("-inf"))
            for j, token in enumerate(banned[start : start + self.batch]):
                if token is not None:
                    last[j, token] = float("-inf")
            found += [set(row) for row in torch.topk(last, k).indices.tolist()]
        return found

    def gradient(self, sequences: Sequence[Scoring], i: int, candidates: list[int], current: int) -> list[float]:
        """d (summed objective) / d one-hot over ``candidates`` at instruction position ``i``,
        where ``current`` is the token the one-hot starts on."""
        torch = self.torch
        one_hot = torch.zeros(len(candidates), dtype=self.embeddings.dtype, device=self.device)
        one_hot[candidates.index(current)] = 1.0
        one_hot.requires_grad_(True)
        if self.checkpointing:
            self.model.train()  # transformers checkpoints only in training mode; no dropout in these models
        try:
            for chunk in self._chunks(sequences):
                self.soft_objective(chunk, i, candidates, one_hot).backward()
        finally:
            self.model.eval()
        assert one_hot.grad is not None
        grad: list[float] = one_hot.grad.float().tolist()
        return grad

    def soft_objective(self, sequences: Sequence[Scoring], i: int, candidates: list[int], weights: Any) -> Any:
        """The summed objective with position ``i`` embedded as ``weights`` @ E[candidates]."""
        torch = self.torch
        tokens, mask = self.provider.pad([s.ids for s in sequences], left=False)
        embeds = self.embeddings[tokens].detach()
        soft = weights.to(self.embeddings.dtype) @ self.embeddings[torch.tensor(candidates, device=self.device)]
        at = torch.zeros(tokens.shape, dtype=torch.bool, device=self.device)
        for b, s in enumerate(sequences):
            at[b, s.start + i] = True
        embeds = torch.where(at[..., None], soft, embeds)
        logits = self.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits.float()
        total = torch.zeros((), device=self.device)
        for b, s in enumerate(sequences):
            n = len(s.ids)
            total = total + self._objective(logits[b, :n], tokens[b, :n], s, (weights, candidates, i))
        return total

    def objectives(self, sequences: Sequence[Scoring]) -> list[tuple[float, bool, float]]:
        """Per sequence: (the objective, a mistake on any answer token, the instruction's mean NLL)."""
        torch = self.torch
        out = []
        for chunk in self._chunks(sequences):
            tokens, mask = self.provider.pad([s.ids for s in chunk], left=False)
            with torch.inference_mode():
                logits = self.model(input_ids=tokens, attention_mask=mask).logits.float()
                for b, s in enumerate(chunk):
                    row, n = logits[b], len(s.ids)
                    total = self._objective(row[:n], tokens[b, :n], s, None)
                    predicted = row[s.answer_at - 1 : n - 1].argmax(-1)
                    mistake = bool((predicted != tokens[b, s.answer_at : n]).any())
                    nll = self._instruction_nll(row[:n], tokens[b, :n], s, None)
                    out.append((float(total), mistake, float(nll)))
        return out

    def _objective(self, logits: Any, tokens: Any, s: Scoring, soft: tuple[Any, list[int], int] | None) -> Any:
        functional = self.torch.nn.functional
        answer_logits = logits[s.answer_at - 1 : len(tokens) - 1] / self.temperature
        answer_loss = functional.cross_entropy(answer_logits, tokens[s.answer_at :])
        return answer_loss + self.nll_weight * self._instruction_nll(logits, tokens, s, soft)

    def _instruction_nll(self, logits: Any, tokens: Any, s: Scoring, soft: tuple[Any, list[int], int] | None) -> Any:
        """Mean NLL of the instruction's tokens; at the one-hot position, the expected NLL under it."""
        torch = self.torch
        if s.length == 0:
            return torch.zeros((), device=self.device)
        log_probs = torch.log_softmax(logits[s.start - 1 : s.start + s.length - 1], dim=-1)
        picked = log_probs.gather(1, tokens[s.start : s.start + s.length, None])[:, 0]
        if soft is not None:
            weights, candidates, i = soft
            expected = (weights.float() * log_probs[i, torch.tensor(candidates, device=self.device)]).sum()
            picked = torch.cat([picked[:i], expected[None], picked[i + 1 :]])
        return -picked.mean()

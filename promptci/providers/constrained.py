"""Decoding under a grammar: at each step, the tokens a row's grammar does not allow are masked out.

llguidance computes the masks. It was chosen over xgrammar, outlines and lm-format-enforcer for
what matters to a model run in CI on a CPU:

- no dependencies of its own, one wheel of a few MB (xgrammar pulls triton; outlines, a Rust core
  plus its own stack);
- no per-schema compile step before the first token: its lexer and parser are built lazily, so a
  suite whose every case has its own schema pays nothing up front;
- JSON Schema and Lark grammars in one language, with a JSON schema embedded in a grammar
  (``%json``), which a tool call needs: free text, or a call whose arguments meet that tool's
  schema;
- a mask in about 50 µs of one core (its published figure for a 128k vocabulary).

Only the transformers provider imports this module, and only for a request with a grammar.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..errors import InputError

INSTALL = "pip install 'llguidance>=1.0'"


def _llguidance() -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError:
        raise InputError(
            "tools and response formats on a local model need llguidance", hint=f"run `{INSTALL}`"
        ) from None
    return llguidance


@functools.lru_cache(maxsize=4)
def _tokenizer(tokenizer: Any) -> Any:
    """llguidance's view of ``tokenizer`` (about half a second to build, so built once)."""
    return _llguidance().hf.from_tokenizer(tokenizer)


def check(grammar: str, tokenizer: Any) -> str:
    """Why ``grammar`` cannot be decoded under, in one line; "" when it can."""
    llg = _llguidance()
    return one_line(llg.LLMatcher.validate_grammar(grammar, _tokenizer(tokenizer)))


def one_line(message: str) -> str:
    """llguidance's error, which may quote the grammar over several lines, as its one telling line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")[:300]


class GrammarMask:
    """A transformers logits processor that keeps each row of a batch within its grammar.

    ``grammars`` has one entry per row, None for a row decoded freely. The first call sees the
    prompts; each later one sees the token just chosen for every row, which its matcher consumes.
    A row whose grammar is complete may only end; a row that has ended is left alone.
    """

    def __init__(self, tokenizer: Any, grammars: Sequence[str | None]) -> None:
        import torch

        llg = _llguidance()
        lltok = _tokenizer(tokenizer)
        self._torch = torch
        self.matchers = [llg.LLMatcher(lltok, g, log_level=0) if g else None for g in grammars]
        self.vocab = lltok.vocab_size
        self.eos = tokenizer.eos_token_id
        words = (self.vocab + 31) // 32
        self._bits = torch.full((len(grammars), words), -1, dtype=torch.int32)
        self._shifts = torch.arange(32, dtype=torch.int32)
        self._start: int | None = None
        self.errors = [one_line(m.get_error()) if m is not None and m.is_error() else "" for m in self.matchers]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self._torch
        live = [(row, m) for row, m in enumerate(self.matchers) if m is not None and not m.is_error()]
        if self._start is None:
            self._start = input_ids.shape[1]
        else:
            chosen = input_ids[:, -1].tolist()
            for row, matcher in live:
                if not matcher.is_stopped():
                    matcher.consume_token(chosen[row])
        rows = []
        for row, matcher in live:
            if matcher.is_stopped():  # the grammar is complete: the row may only end
                scores[row, :] = float("-inf")
                scores[row, self.eos] = 0.0
            elif not matcher.is_error():
                view = self._bits[row]
                matcher.unsafe_compute_mask_ptr(view.data_ptr(), view.numel() * view.element_size())
                rows.append(row)
        if not rows:
            return scores
        words = self._bits[torch.tensor(rows)]  # the masks are made on the CPU, and go to the scores' device once
        allowed = ((words.unsqueeze(-1) >> self._shifts) & 1).reshape(len(rows), -1)[:, : self.vocab]
        index = torch.tensor(rows, device=scores.device)
        picked = scores[index]
        picked[:, self.vocab :] = float("-inf")  # a model's padded vocabulary: no token of the tokenizer
        picked[:, : self.vocab].masked_fill_(allowed.to(picked.device) == 0, float("-inf"))
        scores[index] = picked
        return scores

    def finished(self, row: int) -> bool | None:
        """Whether row ``row`` ended within its grammar; None for a free row."""
        matcher = self.matchers[row]
        if matcher is None:
            return None
        return bool(matcher.is_accepting() and not matcher.is_error())

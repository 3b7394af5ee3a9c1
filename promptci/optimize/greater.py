"""GReaTer (Das et al., 2024): prompt optimization by gradients over reasoning, on a local model.

One small open model is both the task model and the optimizer. Each step edits one
token of the instruction:

1. the model reasons greedily about each train case with the current instruction; the
   reasoning is then held fixed for the step;
2. candidate tokens for position ``i`` come from the model's own next-token
   distribution there (top-k per case, ASCII only, intersected over random groups of
   cases, the groups' intersections united);
3. a one-hot over the candidates replaces the embedding at ``i``; the loss is the gold
   answer's cross-entropy after the reasoning and an extractor phrase (logits / 0.2),
   plus 0.2 × the instruction's mean NLL; its gradient, summed over the cases, ranks
   the candidates;
4. the three most promising are substituted, the reasoning regenerated, and each is
   scored by mistake rate + 0.02 × NLL; the best is taken;
5. ``i`` moves on; at the end of the instruction it wraps to 0 if the instruction closes
   a sentence, else a placeholder token is appended, so the instruction grows until it
   ends one.

The best instructions (a top-10 by that score) are re-ranked on dev through the eval
engine, and the best dev score is the result. The model's weights never receive
gradients; only the one-hot does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InputError
from ..evals.dataset import EvalCase
from ..evals.runner import loaded_provider
from ..store import TrajectoryRow
from .edits import word_edit_distance
from .engine import Context, Method, answer, best_by, score_on
from .trajectory import new_row

MARK = "\u2063PROMPT\u2063"  # stands in for the instruction while the chat template is applied
CLOSERS = (".", "!", "?")


@dataclass(frozen=True)
class Extractor:
    """The phrase that makes the model state its answer, and how the gold answer is written."""

    phrase: str
    answer_format: str = " {answer}"

    def gold(self, case: EvalCase) -> str:
        return self.answer_format.format(answer=answer(case))


def default_extractor(scorer_types: Sequence[str], choices: Sequence[str] = ()) -> Extractor:
    """Sensible defaults: multiple choice names the options, numeric asks for a number."""
    if "choice" in scorer_types and choices:
        options = " or ".join(f"'{c}'" for c in choices)
        return Extractor(f"Therefore, the final answer (use exactly {options}) is")
    if "numeric" in scorer_types:
        return Extractor("Therefore, the final answer (a number) is")
    return Extractor("Therefore, the final answer is")


def candidate_set(topk: Sequence[set[int]], rng: random.Random, *, rounds: int = 6, group: int = 5) -> set[int]:
    """The union over ``rounds`` random groups of cases of the intersection of their top-k sets."""
    found: set[int] = set()
    for _ in range(rounds):
        chosen = rng.sample(range(len(topk)), min(group, len(topk)))
        found |= set.intersection(*(topk[c] for c in chosen))
    return found


def next_position(i: int, prompt: list[int], closes_sentence: bool, placeholder: int) -> tuple[int, list[int]]:
    """The position schedule: move on; at the end, wrap if a sentence is closed, else grow."""
    i += 1
    if i < len(prompt):
        return i, prompt
    if closes_sentence:
        return 0, prompt
    return i, [*prompt, placeholder]


@dataclass
class Example:
    """One train case laid out for the model: chat prefix and suffix around the instruction."""

    case: EvalCase
    before: list[int]
    after: list[int]
    extractor: list[int]
    gold: list[int]
    reasoning: list[int]


class GreaterModel:
    """The frozen task model with what GReaTer needs of it: generation, losses, one-hot gradients.

    Every pass runs the examples in right-padded batches of ``batch`` (the attention mask
    hides the padding, and causal attention keeps it from touching real tokens). The one-hot
    is one leaf shared by all examples, so the gradient of the summed loss is the sum of
    their gradients, accumulated over batches. ``checkpointing`` recomputes activations in
    the backward pass instead of keeping them: less memory for a longer step.
    """

    def __init__(
        self,
        provider: Any,
        *,
        temperature: float = 0.2,
        ppl_weight: float = 0.2,
        batch: int = 8,
        checkpointing: bool = False,
    ) -> None:
        import torch

        self.torch = torch
        self.model = provider.model
        self.tokenizer = provider.tokenizer
        self.device = provider.device
        self.model.requires_grad_(False)
        self.embeddings = self.model.get_input_embeddings().weight
        self.temperature = temperature
        self.ppl_weight = ppl_weight
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
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    def layout(self, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
        """Token ids before and after the instruction's place in the chat-templated prompt."""
        text: str = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if MARK not in text:
            raise InputError("the instruction does not appear in the rendered prompt")
        head, tail = text.split(MARK, 1)
        return self.encode(head), self.encode(tail)

    def chunks(self, examples: Sequence[Example]) -> list[Sequence[Example]]:
        return [examples[k : k + self.batch] for k in range(0, len(examples), self.batch)]

    def padded(self, rows: Sequence[list[int]], *, left: bool = False) -> tuple[Any, Any]:
        """``rows`` as one tensor of ids padded to the longest, and its attention mask."""
        torch = self.torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids, mask = [], []
        for r in rows:
            fill = width - len(r)
            ids.append([pad] * fill + r if left else r + [pad] * fill)
            mask.append([0] * fill + [1] * len(r) if left else [1] * len(r) + [0] * fill)
        return torch.tensor(ids, device=self.device), torch.tensor(mask, device=self.device)

    def reason(self, examples: Sequence[Example], prompt: list[int], max_new_tokens: int) -> list[list[int]]:
        """Greedy reasoning for each example with ``prompt``, in left-padded batches."""
        torch = self.torch
        pad = self.tokenizer.pad_token_id
        stop = {self.tokenizer.eos_token_id, pad}
        reasonings = []
        for chunk in self.chunks(examples):
            ids, mask = self.padded([ex.before + prompt + ex.after for ex in chunk], left=True)
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=pad,
                )
            for row in out[:, ids.shape[1] :].tolist():
                cut = next((k for k, tok in enumerate(row) if tok in stop), len(row))
                reasonings.append(row[:cut])
        return reasonings

    def sequence(self, ex: Example, prompt: list[int]) -> tuple[list[int], int, int]:
        """The full sequence, where the instruction starts, and where the gold answer starts."""
        ids = ex.before + prompt + ex.after + ex.reasoning + ex.extractor + ex.gold
        return ids, len(ex.before), len(ids) - len(ex.gold)

    def topk(self, examples: Sequence[Example], prompt: list[int], i: int, k: int) -> list[set[int]]:
        """Each example's top-k next tokens at instruction position ``i`` (ASCII, not the previous token)."""
        torch = self.torch
        found = []
        for chunk in self.chunks(examples):
            rows = [ex.before + prompt[:i] for ex in chunk]
            ids, mask = self.padded(rows)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            last = logits[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])].float()
            last = last.masked_fill(~self.allowed[: last.shape[1]], float("-inf"))
            if i > 0:
                last[:, prompt[i - 1]] = float("-inf")
            found += [set(row) for row in torch.topk(last, k).indices.tolist()]
        return found

    def gradient(self, examples: Sequence[Example], prompt: list[int], i: int, candidates: list[int]) -> Any:
        """d (summed loss) / d one-hot over ``candidates`` at position ``i``."""
        torch = self.torch
        one_hot = torch.zeros(len(candidates), dtype=self.embeddings.dtype, device=self.device)
        one_hot[candidates.index(prompt[i])] = 1.0
        one_hot.requires_grad_(True)
        if self.checkpointing:
            self.model.train()  # transformers checkpoints only in training mode; no dropout in these models
        try:
            for chunk in self.chunks(examples):
                self.soft_loss(chunk, prompt, i, candidates, one_hot).backward()
        finally:
            self.model.eval()
        assert one_hot.grad is not None
        return one_hot.grad.float()

    def soft_loss(
        self, examples: Sequence[Example], prompt: list[int], i: int, candidates: list[int], weights: Any
    ) -> Any:
        """The summed loss with position ``i`` embedded as ``weights`` @ E[candidates] (a one-hot, or near one)."""
        torch = self.torch
        sequences = [self.sequence(ex, prompt) for ex in examples]
        tokens, mask = self.padded([ids for ids, _, _ in sequences])
        embeds = self.embeddings[tokens].detach()
        soft = weights.to(self.embeddings.dtype) @ self.embeddings[torch.tensor(candidates, device=self.device)]
        at = torch.zeros(tokens.shape, dtype=torch.bool, device=self.device)
        for b, (_, start, _) in enumerate(sequences):
            at[b, start + i] = True
        embeds = torch.where(at[..., None], soft, embeds)
        logits = self.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits.float()
        total = torch.zeros((), device=self.device)
        for b, (ids, start, answer_at) in enumerate(sequences):
            n = len(ids)
            loss = self._loss(logits[b, :n], tokens[b, :n], start, len(prompt), answer_at, weights, candidates, i)
            total = total + loss
        return total

    def losses(self, examples: Sequence[Example], prompt: list[int]) -> list[tuple[float, bool, float]]:
        """For ``prompt`` as it is, per example: (the loss the gradient follows, a mistake on any
        answer token, prompt NLL)."""
        torch = self.torch
        out = []
        for chunk in self.chunks(examples):
            sequences = [self.sequence(ex, prompt) for ex in chunk]
            tokens, mask = self.padded([ids for ids, _, _ in sequences])
            with torch.inference_mode():
                logits = self.model(input_ids=tokens, attention_mask=mask).logits.float()
                for b, (ids, start, answer_at) in enumerate(sequences):
                    row, n = logits[b], len(ids)
                    total = self._loss(row[:n], tokens[b, :n], start, len(prompt), answer_at, None, [], -1)
                    predicted = row[answer_at - 1 : n - 1].argmax(-1)
                    mistake = bool((predicted != tokens[b, answer_at:n]).any())
                    nll = self._prompt_nll(row[:n], tokens[b, :n], start, len(prompt), None, [], -1)
                    out.append((float(total), mistake, float(nll)))
        return out

    def loss(self, ex: Example, prompt: list[int]) -> tuple[float, bool, float]:
        return self.losses([ex], prompt)[0]

    def _loss(
        self,
        logits: Any,
        tokens: Any,
        start: int,
        n_prompt: int,
        answer_at: int,
        one_hot: Any,
        cands: list[int],
        i: int,
    ) -> Any:
        functional = self.torch.nn.functional
        answer_logits = logits[answer_at - 1 : len(tokens) - 1] / self.temperature
        answer_loss = functional.cross_entropy(answer_logits, tokens[answer_at:])
        return answer_loss + self.ppl_weight * self._prompt_nll(logits, tokens, start, n_prompt, one_hot, cands, i)

    def _prompt_nll(
        self, logits: Any, tokens: Any, start: int, n_prompt: int, one_hot: Any, cands: list[int], i: int
    ) -> Any:
        """Mean NLL of the instruction's tokens; at the one-hot position, the expected NLL under it."""
        torch = self.torch
        if n_prompt == 0:
            return torch.zeros((), device=self.device)
        log_probs = torch.log_softmax(logits[start - 1 : start + n_prompt - 1], dim=-1)
        picked = log_probs.gather(1, tokens[start : start + n_prompt, None])[:, 0]
        if one_hot is not None:
            soft = (one_hot.float() * log_probs[i, torch.tensor(cands, device=self.device)]).sum()
            picked = torch.cat([picked[:i], soft[None], picked[i + 1 :]])
        return -picked.mean()


class Greater(Method):
    name = "greater"
    scored_on = "train"
    tags = ("", "")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        s = ctx.settings
        provider = loaded_provider(ctx.project, ctx.evaluator.task.settings)
        if not hasattr(provider, "model") or not hasattr(provider, "tokenizer"):
            raise InputError(
                "--method greater needs a local transformers task model",
                hint="use --task-model with a local model directory, GGUF file or the default SmolLM2",
            )
        self.lm = GreaterModel(provider, batch=s.greater_batch, checkpointing=s.greater_checkpointing)
        self.rng = random.Random(s.seed)
        self.examples = self._layout(ctx.split.train[: s.greater_examples])
        self.placeholder = self.lm.encode(" the")[-1]
        last = next((r for r in reversed(ctx.rows) if r.accepted), None)
        self.prompt = self.lm.encode(last.text if last else ctx.evaluator.initial) or [self.placeholder]
        self.initial_length = len(self.lm.encode(ctx.evaluator.initial))
        # On resume, the position is recovered from the number of moves (growth aside).
        self.position = max(0, sum(1 for r in ctx.rows if r.accepted) - 1) % len(self.prompt)
        self._scored: list[tuple[float, list[int], TrajectoryRow]] = []
        self._current = float("inf")

    def _layout(self, cases: list[EvalCase]) -> list[Example]:
        task = self.ctx.evaluator.task
        extractor = self.extractor()
        phrase = self.lm.encode(" " + extractor.phrase)
        variant = self.ctx.evaluator.variant(MARK)
        examples = []
        for case in cases:
            before, after = self.lm.layout(variant.render(**case.vars))
            examples.append(Example(case, before, after, phrase, self.lm.encode(extractor.gold(case)), []))
        if not examples:
            raise InputError(f"suite '{task.suite_name}' has no train cases for GReaTer")
        return examples

    def extractor(self) -> Extractor:
        s = self.ctx.settings
        suite = self.ctx.evaluator.task.suite
        if s.extractor:
            return Extractor(s.extractor, s.answer_format or " {answer}")
        if suite.extractor:
            return Extractor(suite.extractor.phrase, suite.extractor.answer_format)
        types = [sc.type for sc in suite.scorers]
        choices = next((list(getattr(sc, "choices", []) or []) for sc in suite.scorers if sc.type == "choice"), [])
        return default_extractor(types, choices)

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        mistakes, nll, calls, tokens = self.evaluate(self.prompt)
        return replace(row, train_score=1 - mistakes, loss=mistakes + 0.02 * nll, calls=calls, tokens=tokens)

    def evaluate(self, prompt: list[int]) -> tuple[float, float, int, int]:
        """Mistake rate and mean prompt NLL with freshly generated reasoning; generations and tokens."""
        reasonings = self.lm.reason(self.examples, prompt, self.ctx.settings.greater_reasoning_tokens)
        for ex, reasoning in zip(self.examples, reasonings, strict=True):
            ex.reasoning = reasoning
        scored = self.lm.losses(self.examples, prompt)
        mistakes = sum(mistake for _, mistake, _ in scored)
        nll = sum(prompt_nll for _, _, prompt_nll in scored)
        n = len(self.examples)
        self.ctx.usage.calls += n
        generated = sum(len(r) for r in reasonings)
        self.ctx.usage.tokens += generated
        return mistakes / n, nll / n, n, generated

    def candidates(self, step: int) -> list[TrajectoryRow]:
        s = self.ctx.settings
        prompt, i = self.prompt, self.position
        parent = next(r for r in reversed(self.ctx.rows) if r.accepted)
        # 1. reasoning with the current instruction, held fixed for the step; it also scores the
        #    current instruction, which stays if none of the three candidates beats it
        self.score_current()
        # 2. candidate tokens from the model's own distribution at position i
        k, found = s.greater_topk, set()
        while True:
            found = candidate_set(self.lm.topk(self.examples, prompt, i, k), self.rng)
            if len(found) >= 6 or k >= 4096:
                break
            k *= 2
        cands = sorted(found | {prompt[i]})
        # 3. gradient of the loss over the one-hot, summed over the examples
        import torch

        grad = self.lm.gradient(self.examples, prompt, i, cands)
        grad = grad / (torch.linalg.vector_norm(grad) + 1e-12)
        order = [cands[j] for j in torch.argsort(grad).tolist() if cands[j] != prompt[i]][:3]
        # 4. substitute each, regenerate the reasoning, score by mistake rate + 0.02 x NLL
        self._scored = [
            self.trial(step, index, parent, [*prompt[:i], token, *prompt[i + 1 :]]) for index, token in enumerate(order)
        ]
        return [r for _, _, r in self._scored]

    def winner(self) -> tuple[list[int], TrajectoryRow] | None:
        """The step's best trial, if it beats the current instruction."""
        if not self._scored:
            return None
        loss, ids, row = min(self._scored, key=lambda x: x[0])
        return (ids, row) if loss < self._current else None

    def score_current(self) -> None:
        """Reason with the current instruction (the examples keep that reasoning) and note its loss."""
        mistakes, nll, _, _ = self.evaluate(self.prompt)
        self._current = mistakes + 0.02 * nll

    def trial(
        self, step: int, index: int, parent: TrajectoryRow, ids: list[int]
    ) -> tuple[float, list[int], TrajectoryRow]:
        """``ids`` as an instruction, with fresh reasoning: (its loss, ids, its trajectory row)."""
        mistakes, nll, calls, tokens = self.evaluate(ids)
        text = self.lm.decode(ids).strip()
        loss = mistakes + 0.02 * nll
        row = new_row(
            self.ctx.id, step, index, parent, text, "scored", train_score=1 - mistakes, loss=loss,
            edit_distance=word_edit_distance(parent.text, text), calls=calls, tokens=tokens,
        )  # fmt: skip
        return loss, ids, row

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        """Take the best trial if it beats the current instruction; either way, move the position on."""
        i = self.position
        winner = self.winner()
        if winner:
            trial, pick = winner
            if any(c in self.lm.decode([trial[i]]) for c in CLOSERS) and i + 1 >= self.initial_length / 2:
                trial = trial[: i + 1]  # a period past the middle ends the instruction
            self.prompt = trial
            rows = [replace(r, accepted=True) if r is pick else r for r in rows]
        closes = self.lm.decode(self.prompt).rstrip().endswith(CLOSERS)
        self.position, self.prompt = next_position(i, self.prompt, closes, self.placeholder)
        return rows

    def final(self) -> TrajectoryRow:
        """Re-rank the ten best by train score on dev through the eval engine."""
        scored = [r for r in self.ctx.scored_rows() if r.train_score is not None]
        unique: dict[str, TrajectoryRow] = {}
        for row in sorted(scored, key=lambda r: (-(r.train_score or 0.0), r.step)):
            unique.setdefault(row.text_hash, row)
        ranked = []
        for row in list(unique.values())[:10]:
            with_dev, complete = score_on(self.ctx, row, "dev") if row.dev_score is None else (row, True)
            if complete:
                ranked.append(with_dev)
                self.ctx.record_dev(with_dev)
        return best_by(ranked, lambda r: (r.dev_score or 0.0, r.train_score or 0.0, -r.step))

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
from typing import TypeVar

from pydantic import Field

from ...errors import InputError
from ...evals.baseline import expected_text
from ...evals.dataset import EvalCase
from ...providers.differentiable import DifferentiableLM, Scoring
from ...store import TrajectoryRow
from ..context import Context
from ..edits import word_edit_distance
from ..engine import Method, best_by, score_on
from ..settings import Options
from ..trajectory import new_row
from . import register

MARK = "\u2063PROMPT\u2063"  # stands in for the instruction while the chat template is applied
CLOSERS = (".", "!", "?")


@dataclass(frozen=True)
class Extractor:
    """The phrase that makes the model state its answer, and how the gold answer is written."""

    phrase: str
    answer_format: str = " {answer}"

    def gold(self, case: EvalCase) -> str:
        return self.answer_format.format(answer=expected_text(case))


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

    def scoring(self, prompt: list[int]) -> Scoring:
        """The full sequence with ``prompt`` as the instruction, the reasoning, extractor and gold answer."""
        ids = self.before + prompt + self.after + self.reasoning + self.extractor + self.gold
        return Scoring(ids, len(self.before), len(prompt), len(ids) - len(self.gold))


class GreaterConfig(Options):
    examples: int = Field(8, ge=1, description="train cases per step (the paper uses 50)")
    reasoning_tokens: int = Field(64, ge=1, description="the length of the reasoning generated per case")
    topk: int = Field(40, ge=1, description="top-k next tokens per case from which candidates are drawn")
    batch: int = Field(
        8, ge=1, description="examples per forward/backward pass (raise it on a GPU, lower it to save memory)"
    )
    checkpointing: bool = Field(False, description="recompute activations in the backward pass, to save memory")
    extractor: str | None = Field(None, description="the answer-extractor phrase (default: by the suite's scorer)")
    answer_format: str | None = Field(None, description="how the gold answer follows it (default ' {answer}')")


C = TypeVar("C", bound=GreaterConfig)


class GreaterBase(Method[C]):
    """GReaTer's token search, for any config that extends :class:`GreaterConfig`."""

    scored_on = "train"
    tags = ("", "")
    steps_help = "20 token edits (the paper runs 100-125)"

    @classmethod
    def default_steps(cls, n_train: int) -> int:
        return 20

    def per_step(self) -> str:
        c = self.config
        return (
            f"one token edited per step over {c.examples} train cases ({c.reasoning_tokens} reasoning"
            f" tokens, top-{c.topk} candidates, the best 3 by gradient re-scored)"
        )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        c = self.config
        provider = ctx.models.get(ctx.evaluator.task.settings)
        self.lm = DifferentiableLM(provider, batch=c.batch, checkpointing=c.checkpointing)
        self.rng = random.Random(ctx.settings.seed)
        self.examples = self._layout(ctx.split.train[: c.examples])
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
            before, after = self.lm.layout(variant.render(**case.vars), MARK)
            examples.append(Example(case, before, after, phrase, self.lm.encode(extractor.gold(case)), []))
        if not examples:
            raise InputError(f"suite '{task.suite_name}' has no train cases for GReaTer")
        return examples

    def extractor(self) -> Extractor:
        c = self.config
        suite = self.ctx.evaluator.task.suite
        if c.extractor:
            return Extractor(c.extractor, c.answer_format or " {answer}")
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
        prompts = [ex.before + prompt + ex.after for ex in self.examples]
        reasonings = self.lm.greedy(prompts, self.config.reasoning_tokens)
        for ex, reasoning in zip(self.examples, reasonings, strict=True):
            ex.reasoning = reasoning
        scored = self.lm.objectives([ex.scoring(prompt) for ex in self.examples])
        mistakes = sum(mistake for _, mistake, _ in scored)
        nll = sum(prompt_nll for _, _, prompt_nll in scored)
        n = len(self.examples)
        self.ctx.usage.calls += n
        generated = sum(len(r) for r in reasonings)
        self.ctx.usage.tokens += generated
        return mistakes / n, nll / n, n, generated

    def candidates(self, step: int) -> list[TrajectoryRow]:
        prompt, i = self.prompt, self.position
        parent = next(r for r in reversed(self.ctx.rows) if r.accepted)
        # 1. reasoning with the current instruction, held fixed for the step; it also scores the
        #    current instruction, which stays if none of the three candidates beats it
        self.score_current()
        # 2. candidate tokens from the model's own distribution at position i
        k, found = self.config.topk, set()
        prefixes = [ex.before + prompt[:i] for ex in self.examples]
        banned = [prompt[i - 1] if i > 0 else None] * len(prefixes)  # not the previous token again
        while True:
            found = candidate_set(self.lm.top_next(prefixes, k, banned), self.rng)
            if len(found) >= 6 or k >= 4096:
                break
            k *= 2
        cands = sorted(found | {prompt[i]})
        # 3. gradient of the loss over the one-hot, summed over the examples; lowest first
        grad = self.lm.gradient([ex.scoring(prompt) for ex in self.examples], i, cands, prompt[i])
        ranked = sorted(range(len(cands)), key=lambda j: grad[j])
        order = [cands[j] for j in ranked if cands[j] != prompt[i]][:3]
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
        text = self.lm.decode(ids).strip()
        reason = self.ctx.screen(text, self.config.hygiene, parent=parent.text)
        if reason is not None:  # not worth reasoning with: it stays in the trajectory, unscored
            distance = word_edit_distance(parent.text, text)
            return float("inf"), ids, new_row(self.ctx.id, step, index, parent, text, reason, edit_distance=distance)
        mistakes, nll, calls, tokens = self.evaluate(ids)
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
        """Re-rank the ten best by train score on dev through the eval engine; when the budget
        leaves none confirmed on dev, the initial instruction stays."""
        scored = [r for r in self.ctx.scored_rows() if r.train_score is not None]
        unique: dict[str, TrajectoryRow] = {}
        for row in sorted(scored, key=lambda r: (-(r.train_score or 0.0), r.step)):
            unique.setdefault(row.text_hash, row)
        ranked = []
        for row in list(unique.values())[:10]:
            with_dev, complete = score_on(self.ctx, row, "dev") if row.dev_score is None else (row, True)
            if complete:
                self.ctx.record_dev(with_dev)
                if with_dev.status != "collapsed":
                    ranked.append(with_dev)
        if not ranked:
            return self.ctx.rows[0]
        return best_by(ranked, lambda r: (r.dev_score or 0.0, r.train_score or 0.0, -r.step))


@register
class Greater(GreaterBase[GreaterConfig]):
    name = "greater"
    description = "one token at a time, ranked by the gradient of the answer's loss after the model's own reasoning"
    Config = GreaterConfig

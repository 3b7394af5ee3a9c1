"""GPO (Tang et al., 2024): gradient-inspired prompt optimization.

The trajectory of chosen prompts plays momentum (the current prompt plus the k-1 most
similar earlier ones, by all-MiniLM-L6-v2 sentence embeddings), the cosine-decayed
edit budget plays the learning rate, and the optimizer model's rewrite is the step.
Candidates are scored on dev; the search always moves to the best candidate not
chosen before; the final choice is the best dev score seen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field

from ...providers.embedding import embedder
from ...store import TrajectoryRow
from .. import metaprompt
from ..context import Context
from ..edits import edit_budget, normalised_hash
from ..engine import Method, Proposal, best_by, score_on
from ..settings import Proposing
from . import register


class GpoConfig(Proposing):
    k: int = Field(
        3, ge=1, description="trajectory entries retrieved into the meta-prompt, the current prompt included"
    )
    edit_initial: int = Field(50, ge=1, description="the edit budget at the first step, in words (cosine decay)")
    edit_final: int = Field(10, ge=1, description="the edit budget at the last step, in words")


@register
class Gpo(Method[GpoConfig]):
    name = "gpo"
    description = "gradient-inspired rewriting: retrieved trajectory as momentum, a decaying edit budget as step size"
    Config = GpoConfig
    steps_help = "3 epochs of minibatches of 8 train cases"
    scored_on = "dev"
    tags = ("<START>", "<END>")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._vectors: dict[str, Any] = {}

    @classmethod
    def default_steps(cls, n_train: int) -> int:
        """3 epochs of minibatches of 8 train cases, as released."""
        return 3 * -(-n_train // 8)

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        row, _ = score_on(self.ctx, row, "dev")
        return row

    def history(self) -> list[TrajectoryRow]:
        """H: the prompts the search moved to, in order; the last is the current one."""
        return [r for r in self.ctx.rows if r.accepted and r.dev_score is not None]

    def retrieve(self, history: list[TrajectoryRow]) -> list[TrajectoryRow]:
        """The current prompt, then the k-1 most similar earlier ones, most similar first."""
        current, earlier = history[-1], [r for r in history[:-1] if r.text_hash != history[-1].text_hash]
        if not earlier or self.config.k <= 1:
            return [current]
        similarity = self.similarities(current, earlier)
        ranked = sorted(range(len(earlier)), key=lambda i: -similarity[i])
        return [current] + [earlier[i] for i in ranked[: self.config.k - 1]]

    def similarities(self, current: TrajectoryRow, others: list[TrajectoryRow]) -> list[float]:
        missing = [r.text for r in [current, *others] if r.text_hash not in self._vectors]
        if missing:
            model = embedder(None, str(self.ctx.project.root))
            for text, vector in zip(missing, model.encode(missing), strict=True):
                self._vectors[normalised_hash(text)] = vector
        anchor = self._vectors[current.text_hash]
        return [float(anchor @ self._vectors[r.text_hash]) for r in others]

    def propose(self, step: int) -> Proposal:
        history = self.history()
        current = history[-1]
        s = self.config
        # t counts the steps taken: |H| in the paper, where the search moves at every step.
        budget = edit_budget(step, self.steps(), s.edit_initial, s.edit_final)
        retrieved = [(r.text, r.dev_score or 0.0) for r in self.retrieve(history)]
        text = metaprompt.gpo(
            current.text, retrieved, self.ctx.exemplars(step, s.exemplars), self.ctx.evaluator.slot.position, budget
        )
        return Proposal(text, current, budget)

    def parse(self, reply: str) -> str | None:
        return metaprompt.parse_gpo(reply)

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        chosen = {r.text_hash for r in self.history()}
        pool = [
            r
            for r in rows
            if r.status in ("scored", "duplicate") and r.dev_score is not None and r.text_hash not in chosen
        ]
        if not pool:
            return rows
        pick = best_by(pool, lambda r: (r.dev_score or 0.0, -r.candidate))
        return [replace(r, accepted=True) if r is pick else r for r in rows]

    def final(self) -> TrajectoryRow:
        scored = [r for r in self.ctx.scored_rows() if r.dev_score is not None]
        return best_by(scored, lambda r: (r.dev_score or 0.0, -(r.loss or 0.0), -r.step, -r.candidate))

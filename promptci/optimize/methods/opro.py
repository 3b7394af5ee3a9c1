"""OPRO (Yang et al., 2023): an optimizer model reads the best instructions so far, ascending
with their scores, plus three exemplars, and proposes new ones.

Candidates are scored on train. Each step's best is confirmed on dev, and the final
choice is the best dev score among those confirmed (the initial instruction included),
ties going to the earlier, shorter path.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from ...store import TrajectoryRow
from .. import metaprompt
from ..context import Context
from ..engine import Method, Proposal, best_by, score_on
from ..settings import Proposing
from . import register


class OproConfig(Proposing):
    top: int = Field(20, ge=1, description="the best instructions so far shown in the meta-prompt")


def meta_prompt(ctx: Context, config: OproConfig, step: int) -> str:
    """OPRO's meta-prompt: the instructions scored on train so far, ascending, and exemplars."""
    shown = [(r.text, r.train_score or 0.0) for r in ctx.scored_rows() if r.train_score is not None]
    return metaprompt.opro(shown, ctx.exemplars(step, config.exemplars), ctx.evaluator.slot.position, top=config.top)


@register
class Opro(Method[OproConfig]):
    name = "opro"
    description = "an optimizer model reads the best instructions so far with their scores and proposes new ones"
    Config = OproConfig
    steps_help = "10 (the paper runs 200)"
    scored_on = "train"
    tags = ("<INS>", "</INS>")

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        row, _ = score_on(self.ctx, row, "train")
        row, _ = score_on(self.ctx, row, "dev")
        return row

    def propose(self, step: int) -> Proposal:
        scored = [r for r in self.ctx.scored_rows() if r.train_score is not None]
        shown = [(r.text, r.train_score or 0.0) for r in scored]
        text = metaprompt.opro(
            shown,
            self.ctx.exemplars(step, self.config.exemplars),
            self.ctx.evaluator.slot.position,
            top=self.config.top,
        )
        parent = best_by(scored, lambda r: (r.train_score or 0.0, -r.step)) if scored else None
        return Proposal(text, parent)

    def parse(self, reply: str) -> str | None:
        return metaprompt.parse_opro(reply)

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        scored = [r for r in rows if r.status == "scored" and r.train_score is not None]
        if not scored:
            return rows
        pick = best_by(scored, lambda r: (r.train_score or 0.0, -r.candidate))
        if not self.ctx.affords(len(self.ctx.split.dev)):  # a confirmation cut short would confirm nothing
            return rows
        confirmed, complete = score_on(self.ctx, pick, "dev")
        confirmed = replace(confirmed, accepted=complete and confirmed.status == "scored")
        return [confirmed if r is pick else r for r in rows]

    def final(self) -> TrajectoryRow:
        confirmed = [r for r in self.ctx.scored_rows() if r.dev_score is not None]
        return best_by(confirmed, lambda r: (r.dev_score or 0.0, -(r.loss or 0.0), r.train_score or 0.0, -r.step))

"""LLM-Catalyst for hard prompts: GReaTer's token search, restarted from LLM proposals."""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from ...store import TrajectoryRow
from .. import metaprompt
from ..context import Context
from ..engine import Proposal, classify, sample, scored_by_hash
from . import register
from .greater import GreaterBase, GreaterConfig
from .opro import OproConfig, meta_prompt


class CatalystConfig(GreaterConfig, OproConfig):
    block: int = Field(5, ge=2, description="every Nth step is an optimizer-model proposal, used as a restart")


@register
class Catalyst(GreaterBase[CatalystConfig]):
    """GReaTer token steps in blocks, each block followed by an OPRO-style proposal as a restart.

    The LLM-Catalyst idea for hard prompts: every ``block``-th step, the optimizer
    model reads the instructions recorded so far (ascending by train accuracy, 0-100) with
    three exemplars and proposes new ones; each is scored by GReaTer's own objective with
    fresh reasoning, and the best becomes the new starting point (position 0) if it beats the
    current instruction. Token steps then continue from there.
    """

    name = "catalyst"
    description = "GReaTer's token search in blocks, each restarted from an optimizer model's proposal"
    Config = CatalystConfig
    tags = ("<INS>", "</INS>")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._restart = False

    def parse(self, reply: str) -> str | None:
        return metaprompt.parse_opro(reply)

    def candidates(self, step: int) -> list[TrajectoryRow]:
        if step % self.config.block:
            return super().candidates(step)
        self._restart = True
        self.score_current()
        parent = next(r for r in reversed(self.ctx.rows) if r.accepted)
        meta = meta_prompt(self.ctx, self.config, step)
        proposal = Proposal(meta, parent)
        seen = scored_by_hash(self.ctx)
        self._scored, rows = [], []
        for index, reply in enumerate(sample(self.ctx, self, proposal, step)):
            row = classify(self.ctx, self, step, index, reply, proposal, seen)
            if row.status == "new":
                scored = self.trial(step, index, parent, self.lm.encode(row.text))
                self._scored.append(scored)
                seen[row.text_hash] = row = scored[2]
            rows.append(row)
        return rows

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        if not self._restart:
            return super().choose(step, rows)
        self._restart = False
        winner = self.winner()
        if winner is None:
            return rows
        ids, pick = winner
        self.prompt, self.position = ids, 0  # restart the token search from the proposal
        return [replace(r, accepted=True) if r is pick else r for r in rows]

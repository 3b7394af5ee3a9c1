"""LLM-Catalyst for hard prompts: GReaTer's token search, restarted from LLM proposals."""

from __future__ import annotations

from dataclasses import replace

from ..store import TrajectoryRow
from . import metaprompt
from .engine import Context, Proposal, classify, sample, scored_by_hash
from .greater import Greater


class Catalyst(Greater):
    """GReaTer token steps in blocks, each block followed by an OPRO-style proposal as a restart.

    The LLM-Catalyst idea for hard prompts: every ``catalyst_block``-th step, the optimizer
    model reads the instructions recorded so far (ascending by train accuracy, 0-100) with
    three exemplars and proposes new ones; each is scored by GReaTer's own objective with
    fresh reasoning, and the best becomes the new starting point (position 0) if it beats the
    current instruction. Token steps then continue from there.
    """

    name = "catalyst"
    tags = ("<INS>", "</INS>")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._restart = False

    def parse(self, reply: str) -> str | None:
        return metaprompt.parse_opro(reply)

    def candidates(self, step: int) -> list[TrajectoryRow]:
        if step % self.ctx.settings.catalyst_block:
            return super().candidates(step)
        self._restart = True
        self.score_current()
        parent = next(r for r in reversed(self.ctx.rows) if r.accepted)
        shown = [(r.text, r.train_score or 0.0) for r in self.ctx.scored_rows() if r.train_score is not None]
        meta = metaprompt.opro(
            shown, self.ctx.exemplars(step), self.ctx.evaluator.slot.position, top=self.ctx.settings.top
        )
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

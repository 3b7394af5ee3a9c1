"""TextGrad (Yuksekgonul et al., 2024): textual gradient descent on the instruction.

The "gradient" is the optimizer model's feedback on failing train cases: for a pipeline,
what the backward pass over each trace said about the step being changed
(:mod:`promptci.optimize.credit`); for a single prompt, the same pass over its one call.
The update asks the optimizer model to rewrite the instruction from that feedback. As in
TextGrad's validation check, the search moves to a candidate only when its dev score
beats the current instruction's; the final choice is the best dev score seen.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ...store import TrajectoryRow
from .. import credit, metaprompt
from ..engine import Method, Proposal, best_by, score_on
from ..evaluate import StepEvaluator
from ..settings import Proposing
from . import register

FEEDBACK_CASES = 4  # failing train cases read per step, for a single prompt


@register
class Textgrad(Method[Proposing]):
    name = "textgrad"
    description = "textual gradient descent: the optimizer model rewrites the instruction from its feedback on failures"
    Config = Proposing
    steps_help = "10"
    scored_on = "dev"
    tags = ("<INS>", "</INS>")

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        row, _ = score_on(self.ctx, row, "dev")
        return row

    def current(self) -> TrajectoryRow:
        """The instruction the search stands on: the last one it moved to."""
        return [r for r in self.ctx.rows if r.accepted and r.dev_score is not None][-1]

    def propose(self, step: int) -> Proposal:
        current = self.current()
        # A pipeline's step gets its feedback from the backward pass over the whole trace.
        pipeline_step = isinstance(self.ctx.evaluator, StepEvaluator)
        feedback = self.ctx.feedback if pipeline_step else self._feedback(step, current.text)
        text = metaprompt.textgrad(
            current.text,
            feedback,
            self.ctx.exemplars(step, self.config.exemplars),
            self.ctx.evaluator.slot.position,
        )
        return Proposal(text, current)

    def _feedback(self, step: int, instruction: str) -> list[str]:
        """The backward pass over this prompt's one call, on failing train cases."""
        ctx = self.ctx
        rng = random.Random(ctx.settings.seed * 1_000_003 + step)
        batch = rng.sample(ctx.split.train, min(len(ctx.split.train), 4 * FEEDBACK_CASES))
        task = ctx.evaluator.task_for(instruction, batch)
        scored = ctx.evaluator.score_task(task, batch, budget=ctx.remaining())
        ctx.usage.calls += scored.calls
        ctx.usage.tokens += scored.tokens
        ctx.usage.cost += scored.cost
        threshold = task.suite.case_threshold
        failing = [c for c in batch if c.id in scored.per_case and scored.per_case[c.id] < threshold]
        traces = credit.single_step_traces(ctx.db, scored.run_id, task.prompt.name, failing[:FEEDBACK_CASES])
        name = task.prompt.name
        found = credit.backward(
            ctx.project,
            ctx.optimizer,
            traces,
            {name: instruction},
            ctx.usage,
            seed=ctx.settings.seed * 1_000_003 + step,
            budget=ctx.budget,
            models=ctx.models,
            db=ctx.db,
        )
        return [c.feedback[name] for c in found if name in c.feedback]

    def parse(self, reply: str) -> str | None:
        return metaprompt.parse_opro(reply)

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        current = self.current()
        pool = [r for r in rows if r.status == "scored" and r.dev_score is not None]
        if not pool:
            return rows
        pick = best_by(pool, lambda r: (r.dev_score or 0.0, -r.candidate))
        if (pick.dev_score or 0.0) <= (current.dev_score or 0.0):
            return rows
        return [replace(r, accepted=True) if r is pick else r for r in rows]

    def final(self) -> TrajectoryRow:
        scored = [r for r in self.ctx.scored_rows() if r.dev_score is not None]
        return best_by(scored, lambda r: (r.dev_score or 0.0, -r.step, -r.candidate))

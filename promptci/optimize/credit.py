"""Credit assignment over a pipeline's trace: which step to change, and how.

For each failing case, the optimizer model reads the trace backwards, as TextGrad's
backward pass does: first it says what is wrong with the final answer; then, from the
last step to the first, it is shown the step's instruction, its input, its output and
the feedback on that output, and says how the instruction should change and what was
wrong with the input the step received, which becomes the feedback on the step before.
Last, it names the step most to blame. Every call goes through the response cache and
counts against the optimization's budget.

A weak optimizer model writes noisy feedback, so blame is only a vote: the step named
most often across the failing cases is changed next, and when no case names a step,
the steps take turns.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..evals.answers import Budget, Usage, complete
from ..evals.baseline import expected_text
from ..evals.dataset import EvalCase
from ..project import Project
from ..providers.base import GenParams, Request
from ..providers.pool import ModelPool
from ..redact import clip
from ..settings import ModelSettings
from ..store import StepRow

CLIP = 600  # characters of any one text shown to the optimizer model
MAX_TOKENS = 96


@dataclass(frozen=True)
class Said:
    """One call of a trace, as the backward pass reads it."""

    step_id: str
    index: int
    input: str | None  # the rendered messages, as JSON
    output: str | None
    error: str | None

    @classmethod
    def of(cls, row: StepRow) -> Said:
        return cls(row.step_id, row.step_index, row.input, row.output, row.error)


@dataclass(frozen=True)
class CaseTrace:
    """A failing case as the pipeline answered it: the steps that ran, in order."""

    case: EvalCase
    output: str | None  # the pipeline's answer (None when a step failed)
    error: str | None
    steps: tuple[Said, ...]


@dataclass
class Credit:
    """The backward pass over one case: feedback on each step's instruction, and the step blamed."""

    case_id: str
    feedback: dict[str, str] = field(default_factory=dict)  # step id -> how its instruction should change
    blamed: str | None = None


def backward(
    project: Project,
    optimizer: ModelSettings,
    traces: Sequence[CaseTrace],
    instructions: dict[str, str],
    usage: Usage,
    *,
    seed: int = 0,
    budget: Budget | None = None,
    models: ModelPool | None = None,
    db: Path | None = None,
) -> list[Credit]:
    """Feedback per step and the step blamed, for each failing case; each phase is one batch."""
    params = GenParams(MAX_TOKENS, 0.0, seed=seed)

    def ask(prompts: list[str]) -> list[str]:
        requests = [Request((("user", p),), params) for p in prompts]
        answers = complete(project, optimizer, requests, usage, budget=budget, db=db, models=models)
        return [(a.text or "").strip() for a in answers]

    credits = [Credit(t.case.id) for t in traces]
    on_output = ask([_loss_prompt(t) for t in traces])  # what is wrong with each final answer
    depth = max((len(t.steps) for t in traces), default=0)
    for back in range(depth):  # the last step first
        todo = [(i, t.steps[len(t.steps) - 1 - back]) for i, t in enumerate(traces) if back < len(t.steps)]
        replies = ask([_step_prompt(step, instructions, on_output[i], _before(traces[i], step)) for i, step in todo])
        for (i, step), reply in zip(todo, replies, strict=True):
            own, upstream = _split_reply(reply)
            credits[i].feedback[step.step_id] = own
            on_output[i] = upstream  # the step before is judged by what this one received
    blame = ask([_blame_prompt(t, credits[i]) for i, t in enumerate(traces)])
    for credit, trace, reply in zip(credits, traces, blame, strict=True):
        credit.blamed = named_step(reply, [s.step_id for s in trace.steps])
    return credits


def single_step_traces(db: Path | None, run_id: str, prompt: str, cases: Sequence[EvalCase]) -> list[CaseTrace]:
    """A single prompt's answers in run ``run_id`` as one-step traces, for ``cases``."""
    from ..store import Store

    if not cases or db is None:
        return []
    wanted = {c.id: c for c in cases}
    with Store(db) as store:
        rows = [r for r in store.results_of(run_id) if r.case_id in wanted]
    return [
        CaseTrace(wanted.pop(r.case_id), r.output, r.error, (Said(prompt, 0, r.input, r.output, r.error),))
        for r in rows
        if r.case_id in wanted
    ]


def blamed_step(credits: Sequence[Credit], order: Sequence[str]) -> str | None:
    """The step named most often (ties: the earlier step); None when no case named one."""
    votes = Counter(c.blamed for c in credits if c.blamed)
    if not votes:
        return None
    top = max(votes.values())
    return next(step for step in order if votes.get(step) == top)


def named_step(reply: str, steps: Sequence[str]) -> str | None:
    """The first of ``steps`` named in ``reply`` as a whole word."""
    found = [(m.start(), s) for s in steps if (m := re.search(rf"\b{re.escape(s)}\b", reply, re.IGNORECASE))]
    return min(found)[1] if found else None


def _clip(text: str | None) -> str:
    return clip((text or "").strip(), CLIP)


def _question(trace: CaseTrace) -> str:
    return _clip("\n".join(f"{k}: {v}" for k, v in trace.case.vars.items()))


def _loss_prompt(trace: CaseTrace) -> str:
    answer = trace.output if trace.error is None else f"(none: {trace.error})"
    return (
        f"A system of {len(trace.steps)} steps answered a question wrongly.\n"
        f"Question:\n{_question(trace)}\n"
        f"Correct answer: {_clip(expected_text(trace.case))}\n"
        f"The system's answer: {_clip(answer)}\n"
        "In one or two sentences, say what is wrong with the system's answer."
    )


def user_turn(step: Said | StepRow) -> str:
    """The last user message a step was given, clipped."""
    try:
        messages = json.loads(step.input or "[]")
    except ValueError:
        return _clip(step.input)
    users = [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _clip(users[-1] if users else "")


def _before(trace: CaseTrace, step: Said) -> str | None:
    earlier = [s.step_id for s in trace.steps if s.index < step.index]
    return earlier[-1] if earlier else None


def _step_prompt(step: Said, instructions: dict[str, str], feedback: str, before: str | None) -> str:
    source = f' from step "{before}"' if before else ""
    output = step.output if step.error is None else f"{step.output or ''} (error: {step.error})"
    return (
        f'This is step "{step.step_id}" of a system of steps. It was given an instruction and an input, and'
        " wrote an output.\n"
        f"Instruction: {_clip(instructions.get(step.step_id)) or '(none)'}\n"
        f"Input:\n{user_turn(step)}\n"
        f"Output:\n{_clip(output)}\n"
        f"Feedback on this output: {_clip(feedback)}\n"
        "Reply in two lines.\n"
        "Instruction: how the instruction should change so that the output improves.\n"
        f"Input: what was wrong with the input it was given{source}, or nothing."
    )


def _split_reply(reply: str) -> tuple[str, str]:
    """(feedback on the instruction, feedback on the input) from a two-line reply; a reply
    without the labels is feedback on both."""
    own = re.search(r"^\s*instruction\s*:\s*(.+)$", reply, re.IGNORECASE | re.MULTILINE)
    upstream = re.search(r"^\s*input\s*:\s*(.+)$", reply, re.IGNORECASE | re.MULTILINE)
    text = reply.strip() or "(no feedback)"
    return (own.group(1).strip() if own else text), (upstream.group(1).strip() if upstream else text)


def _blame_prompt(trace: CaseTrace, credit: Credit) -> str:
    lines = [f"A system of steps answered wrongly. Correct answer: {_clip(expected_text(trace.case))}"]
    for step in trace.steps:
        lines.append(
            f'Step "{step.step_id}" wrote: {_clip(step.output)}\n'
            f"Feedback: {_clip(credit.feedback.get(step.step_id, ''))}"
        )
    names = " or ".join(s.step_id for s in trace.steps)
    lines.append(f"Which step is most to blame? Reply with the step's name only: {names}.")
    return "\n".join(lines)

"""Scoring a conversation: each scored turn's reply, then the turns combined as the suite says."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from .dataset import EvalCase
from .scoring import Scorer
from .suite import Turn

Verdict = tuple[dict[str, float], float, bool, str | None]  # per-scorer scores, score, passed, note


def score_turns(
    case: EvalCase,
    replies: Sequence[str],
    scorer_for: Callable[[Turn | None], Scorer],
    how: str,
    threshold: float,
) -> Verdict:
    """The case's verdict from its replies, one per user turn.

    A turn with ``expected`` or its own scorers is scored (its scorers, else the suite's, against
    its expected value, else the case's); a case with no scored turn has its last reply scored
    against the case's ``expected``. ``how`` combines them: ``all`` (the lowest score, and every
    turn must pass), ``mean`` or ``last``. A scored turn the conversation never reached scores 0."""
    scored: list[tuple[int, Turn | None]] = [(i, t) for i, t in enumerate(case.turns) if t.scored]
    if not scored:
        scored = [(max(len(replies), len(case.turns)) - 1, None)]
    scores: dict[str, float] = {}
    per_turn: list[float] = []
    notes: list[str] = []
    for index, turn in scored:
        if not 0 <= index < len(replies):
            per_turn.append(0.0)
            notes.append(f"turn {max(index, 0) + 1}: never reached")
            continue
        expected = turn.expected if turn is not None and turn.expected is not None else case.expected
        parts, score, note = scorer_for(turn).score(replies[index], replace(case, expected=expected))
        scores |= {f"turn {index + 1} {name}": value for name, value in parts.items()}
        per_turn.append(score)
        if note:
            notes.append(f"turn {index + 1}: {note}")
    if how == "all":
        total, passed = min(per_turn), all(s >= threshold for s in per_turn)
    else:
        total = per_turn[-1] if how == "last" else sum(per_turn) / len(per_turn)
        passed = total >= threshold
    failing = [i for (i, _), s in zip(scored, per_turn, strict=True) if s < threshold]
    if failing and len(scored) > 1:
        notes.insert(0, f"first failing turn: {failing[0] + 1}")
    return scores, total, passed, "; ".join(notes) or None

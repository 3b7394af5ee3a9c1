"""Rows of an optimization's trajectory, as every method starts them."""

from __future__ import annotations

from typing import Any

from ..store import TrajectoryRow, now
from .edits import normalised_hash


def new_row(
    opt_id: str, step: int, candidate: int, parent: TrajectoryRow | None, text: str, status: str, **values: Any
) -> TrajectoryRow:
    """A trajectory row with nothing scored or spent yet; ``values`` sets any other field."""
    fields: dict[str, Any] = {
        "optimization_id": opt_id,
        "step": step,
        "candidate": candidate,
        "parent_step": parent.step if parent else None,
        "parent_candidate": parent.candidate if parent else None,
        "text": text,
        "text_hash": normalised_hash(text),
        "status": status,
        "train_score": None,
        "dev_score": None,
        "loss": None,
        "accepted": False,
        "edit_distance": None,
        "edit_budget": None,
        "calls": 0,
        "tokens": 0,
        "cost": 0.0,
        "train_run": None,
        "dev_run": None,
        "created_at": now(),
    }
    return TrajectoryRow(**{**fields, **values})

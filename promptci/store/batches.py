"""The provider batches runs submitted: what ``eval --resume`` collects, and what is never sent twice."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..interrupts import uninterrupted
from .core import Core
from .records import now


class BatchRecord(NamedTuple):
    id: str
    run_id: str
    model_id: str
    file_hash: str
    input_file: str
    requests: int
    status: str


class BatchQueries(Core):
    @uninterrupted
    def add_batch(self, record: BatchRecord) -> None:
        """A batch just submitted (its id, the hash of the request file it was given)."""
        self._write(
            "INSERT INTO batches (id, run_id, model_id, file_hash, input_file, requests, status, submitted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*record, now()],
        )

    @uninterrupted
    def set_batch_status(self, batch_id: str, status: str) -> None:
        collected = now() if status == "collected" else None
        self._write("UPDATE batches SET status = ?, collected_at = ? WHERE id = ?", [status, collected, batch_id])

    def open_batch(self, model_id: str, file_hash: str) -> BatchRecord | None:
        """The newest batch not yet collected for this very request file, to collect, not resend."""
        row = self.db.execute(
            "SELECT id, run_id, model_id, file_hash, input_file, requests, status FROM batches"
            " WHERE model_id = ? AND file_hash = ? AND status = 'submitted'"
            " ORDER BY submitted_at DESC LIMIT 1",
            [model_id, file_hash],
        ).fetchone()
        return BatchRecord(*row) if row else None

    def pending_batches(self) -> list[tuple[BatchRecord, Any]]:
        """Batches not yet collected, newest first, with the command of the run that sent each."""
        rows = self.db.execute(
            "SELECT b.id, b.run_id, b.model_id, b.file_hash, b.input_file, b.requests, b.status, r.command"
            " FROM batches b"
            " JOIN runs r ON r.id = b.run_id WHERE b.status = 'submitted' ORDER BY b.submitted_at DESC"
        ).fetchall()
        return [(BatchRecord(*row[:7]), row[7]) for row in rows]

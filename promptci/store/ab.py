"""The SQL of A/B releases: outcome logs loaded once each, grouped per version, and the looks
taken at each comparison (for alpha spending). :mod:`promptci.release.ab` judges them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..interrupts import uninterrupted
from .core import Core
from .records import now, placeholders

_OUTCOME_COLUMNS = "id, log, line, ts, prompt, label, version, commit_sha, key, outcome, boolean, metadata, loaded_at"


class OutcomeQueries(Core):
    @uninterrupted
    def add_outcomes(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store outcome lines (each a tuple in :data:`_OUTCOME_COLUMNS` order less ``loaded_at``);
        a line already stored (the same bytes, read again from any log) is skipped. The new ones."""
        before = self._outcome_count()
        stamp = now()
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            params = [v for row in chunk for v in (*row, stamp)]
            self._write(
                "INSERT OR IGNORE INTO outcomes (" + _OUTCOME_COLUMNS + ") VALUES " + placeholders(13, len(chunk)),
                params,
            )
        return self._outcome_count() - before

    def _outcome_count(self) -> int:
        row = self.db.execute("SELECT count(*) FROM outcomes").fetchone()
        return int(row[0]) if row else 0

    def outcome_groups(self, prompt: str | None, label: str | None) -> list[tuple[Any, ...]]:
        """Per prompt, label and version: (prompt, label, version, newest commit, n, mean, sample
        variance, every outcome a bool), by prompt, label and version."""
        return list(
            self.db.execute(
                "SELECT prompt, label, version, arg_max(commit_sha, ts), count(*), avg(outcome),"
                " coalesce(var_samp(outcome), 0), bool_and(boolean) FROM outcomes"
                " WHERE (? IS NULL OR prompt = ?) AND (? IS NULL OR label = ?)"
                " GROUP BY ALL ORDER BY prompt, label, version",
                [prompt, prompt, label, label],
            ).fetchall()
        )

    def looks(self, prompt: str, label: str, version: str, control: str) -> list[tuple[int, int, float]]:
        """(look, n, alpha) of the looks already taken at one comparison, in order."""
        rows = self.db.execute(
            "SELECT look, n, alpha FROM ab_looks WHERE prompt = ? AND label = ? AND version = ? AND control = ?"
            " ORDER BY look",
            [prompt, label, version, control],
        ).fetchall()
        return [(int(r[0]), int(r[1]), float(r[2])) for r in rows]

    @uninterrupted
    def add_look(self, prompt: str, label: str, version: str, control: str, look: int, n: int, alpha: float) -> None:
        self._write(
            "INSERT INTO ab_looks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [prompt, label, version, control, look, n, alpha, now()],
        )

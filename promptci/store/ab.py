"""The SQL of A/B releases: outcome logs loaded once each, grouped per version, and the looks
taken at each comparison (for alpha spending). :mod:`promptci.release.ab` judges them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ..interrupts import uninterrupted
from .core import Core
from .records import now, sql

_OUTCOME_COLUMNS = "id, log, line, ts, prompt, label, version, commit_sha, key, outcome, boolean, metadata, loaded_at"
_TEXT = ("ts", "prompt", "label", "version")

# A staged log line (``{"n": LINE, "r": TEXT}``, see :func:`promptci.outcomes.frame`) parsed and
# checked by duckdb: every field, and why the line is refused (NULL: it is an outcome).
_STAGED = """
WITH parsed AS (
    SELECT n, r, CASE WHEN json_valid(r) THEN r::JSON END AS j
    FROM read_json($f, format = 'newline_delimited', columns = {n: 'BIGINT', r: 'VARCHAR'},
                   maximum_object_size = 1048576)
), fields AS (
    SELECT n, r, j, json_type(j) AS t, json_type(j, '$$.v') AS t_v, j->>'$$.v' AS v,
        json_type(j, '$$.ts') AS t_ts, j->>'$$.ts' AS ts,
        json_type(j, '$$.prompt') AS t_prompt, j->>'$$.prompt' AS prompt,
        json_type(j, '$$.label') AS t_label, j->>'$$.label' AS label,
        json_type(j, '$$.version') AS t_version, j->>'$$.version' AS version,
        json_type(j, '$$.commit') AS t_commit, j->>'$$.commit' AS commit_sha,
        json_type(j, '$$.key') AS t_key, j->>'$$.key' AS key,
        json_type(j, '$$.outcome') AS t_outcome, j->>'$$.outcome' AS o,
        json_type(j, '$$.metadata') AS t_metadata, j->'$$.metadata' AS metadata,
        json_type(j, '$$.id') AS t_id, j->>'$$.id' AS id
    FROM parsed
)
SELECT n, ts, prompt, label, version, commit_sha, key, metadata,
    CASE WHEN t_id = 'VARCHAR' AND length(id) BETWEEN 1 AND 64 THEN id ELSE left(sha256(r || chr(10)), 32) END AS id,
    CASE WHEN t_outcome = 'BOOLEAN' THEN CAST(o = 'true' AS DOUBLE) ELSE TRY_CAST(o AS DOUBLE) END AS outcome,
    coalesce(t_outcome = 'BOOLEAN', false) AS boolean,
    CASE
        WHEN j IS NULL THEN 'invalid JSON'
        WHEN t IS DISTINCT FROM 'OBJECT' OR t_v NOT IN ('UBIGINT', 'BIGINT') OR v != '1' THEN 'not format 1'
        WHEN t_ts IS DISTINCT FROM 'VARCHAR' OR length(ts) NOT BETWEEN 1 AND 200 THEN $bad_ts
        WHEN t_prompt IS DISTINCT FROM 'VARCHAR' OR length(prompt) NOT BETWEEN 1 AND 200 THEN $bad_prompt
        WHEN t_label IS DISTINCT FROM 'VARCHAR' OR length(label) NOT BETWEEN 1 AND 200 THEN $bad_label
        WHEN t_version IS DISTINCT FROM 'VARCHAR' OR length(version) NOT BETWEEN 1 AND 200 THEN $bad_version
        WHEN t_outcome IS NULL OR t_outcome NOT IN ('BOOLEAN', 'BIGINT', 'UBIGINT', 'DOUBLE') THEN $bad_outcome
        WHEN t_outcome != 'BOOLEAN' AND NOT coalesce(abs(TRY_CAST(o AS DOUBLE)) <= CAST($max AS DOUBLE), false)
            THEN $bad_size
        WHEN coalesce(t_commit, 'NULL') NOT IN ('NULL', 'VARCHAR') OR length(commit_sha) > 80
            OR coalesce(t_key, 'NULL') NOT IN ('NULL', 'VARCHAR') OR length(key) > 80 THEN $bad_ids
        WHEN coalesce(t_metadata, 'NULL') NOT IN ('NULL', 'OBJECT') THEN $bad_metadata
    END AS problem
FROM fields
"""


class Loaded(NamedTuple):
    new: int  # lines stored now
    seen: int  # good lines already stored
    problems: list[tuple[int, str]]  # (line, why) of the first refused lines
    refused: int  # every refused line


class OutcomeQueries(Core):
    def load_outcomes(self, staged: Path, log: str, max_outcome: float, shown: int = 20) -> Loaded:
        """The staged lines of one log (a file :func:`promptci.outcomes.frame` wrote) into the
        outcomes table, each line stored once however often it is loaded, its strings redacted.
        Parsing can be interrupted; the insert that follows is one statement, all or nothing."""
        literals: dict[str, str | list[str]] = {f"bad_{name}": f"'{name}' must be a non-empty string" for name in _TEXT}
        literals |= {
            "f": str(staged),
            "max": repr(max_outcome),
            "bad_outcome": "'outcome' must be a finite number or a bool",
            "bad_size": f"'outcome' must be a finite number of magnitude at most {max_outcome:g}",
            "bad_ids": "'commit' and 'key' must be short strings or null",
            "bad_metadata": "'metadata' must be an object",
        }
        self.db.execute(sql("CREATE OR REPLACE TEMP TABLE promptci_staged AS " + _STAGED, literals))
        try:
            problems = self.db.execute(
                "SELECT n, problem, count(*) OVER () FROM promptci_staged WHERE problem IS NOT NULL ORDER BY n LIMIT ?",
                [shown],
            ).fetchall()
            good = self.db.execute("SELECT count(*) FROM promptci_staged WHERE problem IS NULL").fetchone()
            new = self._insert_staged(log)
        finally:
            self.db.execute("DROP TABLE IF EXISTS promptci_staged")
        refused = int(problems[0][2]) if problems else 0
        return Loaded(new, int(good[0] if good else 0) - new, [(int(n), str(why)) for n, why, _ in problems], refused)

    @uninterrupted
    def _insert_staged(self, log: str) -> int:
        """The good staged lines the table lacks, in one statement; a string that the redaction
        layer's patterns match goes through the layer itself."""
        from ..redact import rules

        self._register_redaction()
        columns = [*_TEXT, "commit_sha", "key", "metadata"]
        cleaned = [f"CASE WHEN secret THEN promptci_redact({c}) ELSE {c} END" for c in columns]
        flagged = (  # one match of the layer's patterns over a row's strings joined; the layer only where it hits
            "(SELECT * REPLACE (coalesce(metadata::VARCHAR, '{}') AS metadata),"
            " regexp_matches(concat_ws(chr(10), " + ", ".join(columns) + "), $any) AS secret"
            " FROM promptci_staged WHERE problem IS NULL)"
        )
        pattern = "|".join(f"(?:{p})" for p, _ in rules())
        statement = (
            "INSERT OR IGNORE INTO outcomes ("
            + _OUTCOME_COLUMNS
            + ") SELECT id, $log, n, "
            + ", ".join(cleaned[:6])
            + ", outcome, boolean, "
            + cleaned[6]
            + ", ? FROM "
            + flagged
        )  # fmt: skip (a line twice in one log is one outcome: the key keeps one of them)
        inserted = self.db.execute(sql(statement, {"any": pattern, "log": log}), [now()]).fetchone()
        return int(inserted[0]) if inserted and inserted[0] is not None else 0

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

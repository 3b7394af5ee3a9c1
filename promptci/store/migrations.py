"""The results database's schema: numbered migrations, each recorded in ``schema_migrations``."""

from __future__ import annotations

from typing import Any

MIGRATIONS_TABLE = "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "runs, results and the response cache",
        """
        CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,
            ended_at TIMESTAMP,
            git_commit VARCHAR,
            branch VARCHAR,
            dirty BOOLEAN,
            command VARCHAR,
            config_hash VARCHAR,
            status VARCHAR NOT NULL,
            promptci_version VARCHAR
        );
        CREATE TABLE results (
            run_id VARCHAR NOT NULL,
            suite VARCHAR NOT NULL,
            suite_hash VARCHAR NOT NULL,
            prompt VARCHAR NOT NULL,
            prompt_hash VARCHAR NOT NULL,
            prompt_commit VARCHAR,
            case_id VARCHAR NOT NULL,
            case_name VARCHAR,
            repeat_index INTEGER NOT NULL,
            model_id VARCHAR NOT NULL,
            params_hash VARCHAR NOT NULL,
            input VARCHAR,
            expected VARCHAR,
            output VARCHAR,
            scores VARCHAR,
            score DOUBLE,
            passed BOOLEAN,
            error VARCHAR,
            latency_ms DOUBLE,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost DOUBLE,
            cached BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE INDEX results_run ON results (run_id);
        CREATE TABLE cache (
            key VARCHAR PRIMARY KEY,
            model_id VARCHAR NOT NULL,
            output VARCHAR NOT NULL,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost DOUBLE,
            latency_ms DOUBLE,
            created_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        2,
        "optimizations and their trajectories",
        """
        CREATE TABLE optimizations (
            id VARCHAR PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,
            ended_at TIMESTAMP,
            prompt VARCHAR NOT NULL,
            suite VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            base_commit VARCHAR NOT NULL,
            settings VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            initial VARCHAR NOT NULL,
            best VARCHAR,
            test_before DOUBLE,
            test_after DOUBLE,
            p_value DOUBLE,
            calls INTEGER,
            tokens INTEGER,
            cost DOUBLE,
            wall_s DOUBLE,
            branch VARCHAR,
            branch_commit VARCHAR
        );
        CREATE TABLE trajectory (
            optimization_id VARCHAR NOT NULL,
            step INTEGER NOT NULL,
            candidate INTEGER NOT NULL,
            parent_step INTEGER,
            parent_candidate INTEGER,
            text VARCHAR NOT NULL,
            text_hash VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            train_score DOUBLE,
            dev_score DOUBLE,
            loss DOUBLE,
            accepted BOOLEAN NOT NULL,
            edit_distance INTEGER,
            edit_budget INTEGER,
            calls INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            cost DOUBLE NOT NULL,
            train_run VARCHAR,
            dev_run VARCHAR,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (optimization_id, step, candidate)
        );
        """,
    ),
    (
        3,
        "the process that runs a run, so a killed one can be told from a live one",
        """
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE runs ADD COLUMN host VARCHAR;
        """,
    ),
    (
        4,
        "what a scorer noted about an answer, such as an ambiguous choice",
        """
        ALTER TABLE results ADD COLUMN note VARCHAR;
        """,
    ),
    (
        5,
        "the log-probability of each choice, for choices ranked by likelihood",
        """
        ALTER TABLE results ADD COLUMN logprobs VARCHAR;
        ALTER TABLE cache ADD COLUMN logprobs VARCHAR;
        """,
    ),
    (
        6,
        "the steps of a pipeline's answer to a case, each tied to its result row",
        """
        CREATE TABLE steps (
            run_id VARCHAR NOT NULL,
            suite VARCHAR NOT NULL,
            prompt VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat_index INTEGER NOT NULL,
            step_index INTEGER NOT NULL,
            step_id VARCHAR NOT NULL,
            step_prompt VARCHAR NOT NULL,
            step_prompt_hash VARCHAR NOT NULL,
            model_id VARCHAR NOT NULL,
            input VARCHAR,
            output VARCHAR,
            parsed VARCHAR,
            error VARCHAR,
            latency_ms DOUBLE,
            tokens_in INTEGER,
            tokens_out INTEGER,
            cost DOUBLE,
            cached BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE INDEX steps_run ON steps (run_id);
        """,
    ),
    (
        7,
        "a pipeline optimization: the step each candidate changes, and the feedback and blame per step",
        """
        ALTER TABLE trajectory ADD COLUMN target VARCHAR;
        CREATE TABLE credit (
            optimization_id VARCHAR NOT NULL,
            step INTEGER NOT NULL,
            case_id VARCHAR NOT NULL,
            step_id VARCHAR NOT NULL,
            feedback VARCHAR NOT NULL,
            blamed BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        8,
        "where each cached answer was published or pulled from, so each is published once",
        """
        ALTER TABLE cache ADD COLUMN origin VARCHAR;
        """,
    ),
    (
        9,
        "outcomes of released prompt versions, and the looks taken at each A/B comparison",
        """
        CREATE TABLE outcomes (
            id VARCHAR PRIMARY KEY,
            log VARCHAR NOT NULL,
            line INTEGER NOT NULL,
            ts VARCHAR NOT NULL,
            prompt VARCHAR NOT NULL,
            label VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            commit_sha VARCHAR,
            key VARCHAR,
            outcome DOUBLE NOT NULL,
            boolean BOOLEAN NOT NULL,
            metadata VARCHAR,
            loaded_at TIMESTAMP NOT NULL
        );
        CREATE TABLE ab_looks (
            prompt VARCHAR NOT NULL,
            label VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            control VARCHAR NOT NULL,
            look INTEGER NOT NULL,
            n BIGINT NOT NULL,
            alpha DOUBLE NOT NULL,
            looked_at TIMESTAMP NOT NULL,
            PRIMARY KEY (prompt, label, version, control, look)
        );
        """,
    ),
    (
        10,
        "the PR an optimization's branch was opened as",
        """
        ALTER TABLE optimizations ADD COLUMN pr_url VARCHAR;
        """,
    ),
    (
        11,
        "the cache batches each answer was published in, so each destination gets every answer once",
        """
        CREATE TABLE cache_batches (
            batch VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            PRIMARY KEY (batch, key)
        );
        INSERT INTO cache_batches SELECT DISTINCT origin, key FROM cache WHERE origin IS NOT NULL;
        """,
    ),
    (
        12,
        "how far each suite's judge agrees with people, as `promptci judge check` measured it",
        """
        CREATE TABLE judge_checks (
            suite VARCHAR NOT NULL,
            scorer VARCHAR NOT NULL,
            judge_hash VARCHAR NOT NULL,
            grades_hash VARCHAR NOT NULL,
            n BIGINT NOT NULL,
            ordinal BOOLEAN NOT NULL,
            kappa DOUBLE,
            accuracy DOUBLE,
            self_agreement DOUBLE,
            repeats INTEGER NOT NULL,
            checked_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        13,
        "the estimate a run was started with (calls, tokens, price), beside what it spent",
        """
        ALTER TABLE runs ADD COLUMN estimate VARCHAR;
        """,
    ),
    (
        14,
        "the provider batches a run submitted: which, for what requests, and whether collected",
        """
        CREATE TABLE batches (
            id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            model_id VARCHAR NOT NULL,
            file_hash VARCHAR NOT NULL,
            input_file VARCHAR NOT NULL,
            requests BIGINT NOT NULL,
            status VARCHAR NOT NULL,
            submitted_at TIMESTAMP NOT NULL,
            collected_at TIMESTAMP
        );
        """,
    ),
]

# Every table a promptci database holds, read whole by the integrity check: hashing every
# column makes duckdb read, and so verify the checksum of, every block.
INTEGRITY_QUERIES = {
    "schema_migrations": "SELECT count(*), sum(hash(COLUMNS(*))) FROM schema_migrations",
    "runs": "SELECT count(*), sum(hash(COLUMNS(*))) FROM runs",
    "results": "SELECT count(*), sum(hash(COLUMNS(*))) FROM results",
    "cache": "SELECT count(*), sum(hash(COLUMNS(*))) FROM cache",
    "optimizations": "SELECT count(*), sum(hash(COLUMNS(*))) FROM optimizations",
    "trajectory": "SELECT count(*), sum(hash(COLUMNS(*))) FROM trajectory",
    "steps": "SELECT count(*), sum(hash(COLUMNS(*))) FROM steps",
    "credit": "SELECT count(*), sum(hash(COLUMNS(*))) FROM credit",
    "outcomes": "SELECT count(*), sum(hash(COLUMNS(*))) FROM outcomes",
    "ab_looks": "SELECT count(*), sum(hash(COLUMNS(*))) FROM ab_looks",
    "cache_batches": "SELECT count(*), sum(hash(COLUMNS(*))) FROM cache_batches",
    "judge_checks": "SELECT count(*), sum(hash(COLUMNS(*))) FROM judge_checks",
    "batches": "SELECT count(*), sum(hash(COLUMNS(*))) FROM batches",
}


def schema_version(db: Any) -> int:
    """The newest migration applied to an open database; 0 for one that has none."""
    tables = {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "schema_migrations" not in tables:
        return 0
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0

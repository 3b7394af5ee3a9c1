"""Every read is bounded before it happens: only regular files, their size checked first; outcome
logs line by line with a cap and every number checked; published sets measured by what they
decode to and checked value by value; cache batches named by the hash of their bytes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb
import pytest

import promptci
from promptci.errors import PromptciError
from promptci.results import Folder, pull
from tests.conftest import Repo
from tests.hostile.conftest import fail_every_case

SPECIAL = ["fifo", "dev_zero", "dev_urandom", "directory"]


def _special(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        os.symlink("/dev/" + kind.removeprefix("dev_"), path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("outcomes.jsonl", ("ab", "report", "outcomes.jsonl")),
        ("evals/data/cases.jsonl", ("eval", "evals/data.yaml")),
        ("promptci.yaml", ("lint",)),
        ("prompts/other.yaml", ("lint",)),
    ],
)
def test_a_fifo_or_device_is_refused_before_a_byte_is_read(
    repo: Repo, kind: str, target: str, command: tuple[str, ...]
) -> None:
    repo.write("evals/data.yaml", "prompts: [sentiment]\ndataset: {path: data/cases.jsonl}\nscorers: [{type: exact}]\n")
    path = repo.path / target
    if path.exists():
        path.unlink()
    _special(path, kind)
    result = repo.run(*command)  # within the timeout: a FIFO used to hang, /dev/zero to fill memory
    said = result.out + result.err
    assert result.code in (1, 2)
    reasons = ("not a regular file", "is a directory", "is outside the repository", "dataset file not found")
    assert any(reason in said for reason in reasons), said
    if target == "outcomes.jsonl" and kind != "directory":
        assert "outcomes.jsonl: cannot read outcome log: not a regular file" in said


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", SPECIAL)
def test_the_runtime_refuses_a_fifo_or_device_as_its_bundle(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bundle.json"
    _special(path, kind)
    with pytest.raises(PromptciError, match=r"not a regular file|it is a directory"):
        promptci.load("sentiment", bundle=path)


LINE = {"v": 1, "ts": "2026-01-01T00:00:00Z", "prompt": "p", "label": "production", "version": "v1", "outcome": 1}
BAD_LINES = [
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":1e308}', "magnitude at most 1e+12"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":-1e13}', "magnitude at most 1e+12"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":' + b"9" * 400 + b"}", "magnitude"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":NaN}', "finite"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":Infinity}', "finite"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":"1"}', "'outcome' must be a finite number"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":null}', "'outcome' must be a finite number"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v"}', "'outcome' must be a finite number"),
    (b'{"v":2,"ts":"t","prompt":"p","label":"l","version":"v","outcome":1}', "not format 1"),
    (b'[1, 2, 3]', "not format 1"),
    (b'{"v":1,"ts":"t","prompt":"","label":"l","version":"v","outcome":1}', "'prompt' must be a non-empty string"),
    (b'{"v":1,"ts":"t","prompt":"p","label":7,"version":"v","outcome":1}', "'label' must be a non-empty string"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"' + b"v" * 300 + b'","outcome":1}', "'version'"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":1,"commit":5}', "'commit' and 'key'"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":1,"metadata":[1]}', "'metadata'"),
    (b"not json at all", "invalid JSON"),
    (b"\xff\xfe\x00 bytes", "not UTF-8"),
    (b"[" * 100_000, "over the limit of 16384 bytes"),
    (b'{"v":1,"ts":"t","prompt":"p","label":"l","version":"v","outcome":1, "pad": "' + b"x" * 20_000 + b'"}', "over the limit"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "why"), BAD_LINES)
def test_a_bad_outcome_line_is_named_by_file_and_line_and_the_rest_still_load(repo: Repo, bad: bytes, why: str) -> None:
    good = [json.dumps({**LINE, "id": f"id{i}"}).encode() for i in range(3)]
    (repo.path / "log.jsonl").write_bytes(b"\n".join([good[0], good[1], bad, good[2]]) + b"\n")
    result = repo.run("ab", "report", "log.jsonl", "--format", "json")
    assert result.code == 0, result.err
    assert "log.jsonl:3: not an outcome line:" in result.err and why in result.err
    assert "loaded 3 new outcomes (0 already stored, 1 bad lines)" in result.err
    assert repo.sql("SELECT count(*) FROM outcomes") == [(3,)]


def test_a_log_cut_short_and_a_line_with_no_end_are_refused_by_line(repo: Repo) -> None:
    good = json.dumps({**LINE, "id": "a"}).encode()
    (repo.path / "log.jsonl").write_bytes(good + b"\n" + b"x" * (9 << 20) + b"\n" + good.replace(b'"a"', b'"b"'))
    result = repo.run("ab", "report", "log.jsonl")
    assert "log.jsonl:2: not an outcome line: over the limit of 16384 bytes" in result.err
    assert "log.jsonl:3: not an outcome line: cut off" in result.err
    assert repo.sql("SELECT id FROM outcomes") == [("a",)]


def test_a_secret_in_outcome_metadata_is_stored_redacted(repo: Repo) -> None:
    line = {**LINE, "metadata": {"auth": "Bearer abcdefghijklmnop", "note": "fine"}}
    (repo.path / "log.jsonl").write_text(json.dumps(line) + "\n")
    assert repo.run("ab", "report", "log.jsonl").code == 0
    ((metadata,),) = repo.sql("SELECT metadata FROM outcomes")
    assert "abcdefghijklmnop" not in metadata and "fine" in metadata


# Published sets.


@pytest.fixture
def shared(repo: Repo, tmp_path: Path) -> Path:
    """Two published runs, and one cache batch."""
    folder = tmp_path / "shared"
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    assert repo.run("eval").code == 1
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb")) as con:
        con.execute(
            "INSERT INTO cache (key, model_id, output, tokens_in, tokens_out, cost, latency_ms, created_at)"
            " VALUES (?, 'm', 'the true answer', 3, 1, 0, 5, now())",
            [hashlib.sha256(b"request").hexdigest()],
        )
    assert repo.run("results", "push", "--url", str(folder)).code == 0
    return folder


def _rewrite(path: Path, select: str) -> None:
    with duckdb.connect() as con:
        con.execute(f"COPY ({select.format(f=repr(str(path)))}) TO '{path}.new' (FORMAT parquet)")
    os.replace(f"{path}.new", path)


VALUES = [
    ("results", "score", "CAST('NaN' AS DOUBLE)"),
    ("results", "score", "CAST('Infinity' AS DOUBLE)"),
    ("results", "score", "2.5"),
    ("results", "score", "-0.5"),
    ("results", "latency_ms", "-1.0"),
    ("results", "latency_ms", "CAST('-Infinity' AS DOUBLE)"),
    ("results", "tokens_in", "-7"),
    ("results", "cost", "CAST('NaN' AS DOUBLE)"),
]


@pytest.mark.parametrize(("table", "column", "value"), VALUES)
def test_a_set_holding_values_out_of_range_is_refused_on_pull_and_in_place(
    repo: Repo, shared: Path, tmp_path: Path, table: str, column: str, value: str
) -> None:
    first = sorted(shared.glob("runs/*"))[0]
    _rewrite(first / f"{table}.parquet", f"SELECT * REPLACE ({value} AS {column}) FROM read_parquet({{f}})")
    got = pull(tmp_path / "local.duckdb", Folder(str(shared)))
    assert got.runs == 1 and any(first.name in w and "out of range" in w for w in got.warnings)
    compared = repo.run("history", "--results", str(shared))
    assert compared.code in (0, 1) and "nan" not in compared.out.lower()


def test_a_dictionary_bomb_is_measured_decoded_not_by_its_metadata(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import promptci.store.parquet as parquet

    first = sorted(shared.glob("runs/*"))[0] / "results.parquet"
    _rewrite(first, "SELECT r.* REPLACE (repeat('x', 1000000) AS output) FROM read_parquet({f}) r, range(40)")
    with duckdb.connect() as con:
        (claimed,) = con.execute(f"SELECT sum(total_uncompressed_size) FROM parquet_metadata('{first}')").fetchone()
    assert first.stat().st_size < 300_000 and claimed < 20_000_000  # small on disk, and it says it is small
    monkeypatch.setattr(parquet, "MAX_UNCOMPRESSED_BYTES", 20_000_000)
    got = pull(tmp_path / "local.duckdb", Folder(str(shared)))
    assert got.runs == 1 and any("its strings decode to 2400" in w and "over the limits" in w for w in got.warnings)


def test_a_cache_batch_rewritten_under_its_old_name_is_refused(shared: Path, tmp_path: Path) -> None:
    (batch,) = shared.glob("cache/*.parquet")
    _rewrite(batch, "SELECT * REPLACE ('a forged answer' AS output) FROM read_parquet({f})")
    got = pull(tmp_path / "local.duckdb", Folder(str(shared)))
    assert got.cached == 0 and any("its name is not the hash of its content" in w for w in got.warnings)
    with duckdb.connect(str(tmp_path / "local.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM cache").fetchone() == (0,)


def test_a_cache_batch_with_a_malformed_key_is_refused(shared: Path, tmp_path: Path) -> None:
    (batch,) = shared.glob("cache/*.parquet")
    _rewrite(batch, "SELECT * REPLACE ('../../etc' AS key) FROM read_parquet({f})")
    renamed = batch.with_name(hashlib.sha256(batch.read_bytes()).hexdigest()[:32] + ".parquet")
    batch.rename(renamed)  # named by its new bytes, as a forger would
    got = pull(tmp_path / "local.duckdb", Folder(str(shared)))
    assert got.cached == 0 and any("out of range" in w for w in got.warnings)


def test_an_intact_cache_batch_is_still_pulled(shared: Path, tmp_path: Path) -> None:
    got = pull(tmp_path / "local.duckdb", Folder(str(shared)))
    assert (got.runs, got.cached, got.warnings) == (2, 1, [])


def test_the_cli_pulls_the_good_sets_and_names_the_refused_one(repo: Repo, shared: Path) -> None:
    first = sorted(shared.glob("runs/*"))[0]
    _rewrite(first / "results.parquet", "SELECT * REPLACE (CAST('NaN' AS DOUBLE) AS score) FROM read_parquet({f})")
    repo.git("clean", "-fdxq")  # a fresh clone's state: no local database
    result = repo.run("results", "pull", "--url", str(shared))
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and first.name in warnings[0] and "out of range" in warnings[0]
    assert repo.sql("SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.timeout(120)
def test_ctrl_c_stops_a_long_load_at_once_and_stores_nothing(repo: Repo) -> None:
    import signal
    import subprocess
    import sys
    import time

    line = json.dumps({**LINE, "metadata": {"pad": "x" * 150}})
    with (repo.path / "big.jsonl").open("w") as fh:
        for start in range(0, 400_000, 10_000):
            fh.write("".join(line.replace('"v":1', f'"v":1,"id":"{start + i}"') + "\n" for i in range(10_000)))
    process = subprocess.Popen(
        [sys.executable, "-m", "promptci", "ab", "report", "big.jsonl"],
        cwd=repo.path,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # the database is open and the log is being read
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err  # interrupted, not a finished read
    assert repo.sql("SELECT count(*) FROM outcomes") == [(0,)]


def test_a_forged_cache_batch_under_any_other_name_is_refused(shared: Path, tmp_path: Path) -> None:
    (batch,) = shared.glob("cache/*.parquet")
    _rewrite(batch, "SELECT * REPLACE ('a forged answer' AS output) FROM read_parquet({f})")
    batch.rename(batch.with_name("0123456789abcdef" * 2 + ".parquet"))
    got = pull(tmp_path / "local.duckdb", Folder(str(shared)))
    assert got.cached == 0 and any("its name is not the hash of its content" in w for w in got.warnings)

"""The results database: damaged files refused untouched, killed runs abandoned, readers never blocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from promptci.store import Store
from tests.conftest import Repo
from tests.hostile.conftest import fail_every_case, one_line


def _db(repo: Repo) -> Path:
    return repo.path / ".promptci/results.duckdb"


def test_a_damaged_database_is_refused_untouched(repo: Repo) -> None:
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    db = _db(repo)
    with duckdb.connect(str(db)) as con:  # enough rows that the data spans many blocks
        con.execute(
            "INSERT INTO cache SELECT md5(i::VARCHAR), 'm', repeat(md5(i::VARCHAR), 8), 1, 1, 0, 1, now()::TIMESTAMP, NULL, NULL FROM range(50000) t(i)"
        )
    data = bytearray(db.read_bytes())
    middle = len(data) // 2
    for offset in range(middle, middle + 3 * 4096, 97):
        data[offset] ^= 0xFF
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    for args in (["eval"], ["history"], ["cache", "info"], ["report", "--html", "r.html"], ["cache", "clear"]):
        r = repo.run(*args)
        assert r.code == 2, (args, r)
        assert "results database is damaged" in one_line(r.err) and "it was not modified" in r.err
    assert db.read_bytes() == before
    assert not db.with_name(db.name + ".wal").exists()


def test_a_killed_run_becomes_abandoned(repo: Repo) -> None:
    fail_every_case(repo)
    assert repo.run("eval").code == 1  # creates the database
    script = (
        "import sys, time; from pathlib import Path; from promptci.store import Store\n"
        "s = Store(Path(sys.argv[1]))\n"
        "s.start_run('killed-run', git_commit=None, branch=None, dirty=None, command='promptci eval', config_hash='x')\n"
        "print('started', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(_db(repo))], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert repo.run("eval").code == 1  # the next writer notices
    with duckdb.connect(str(_db(repo)), read_only=True) as con:
        status = dict(con.execute("SELECT id, status FROM runs").fetchall())
    assert status["killed-run"] == "abandoned"
    assert sorted(status.values()) == ["abandoned", "complete", "complete"]


def test_readers_do_not_wait_for_a_running_eval(repo: Repo) -> None:
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(_db(repo)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for args in (["history"], ["cache", "info"], ["report", "--html", "r.html"]):
            r = repo.run(*args)
            assert r.code == 0, (args, r)
        with Store(_db(repo), read_only=True) as store:  # a snapshot, holding what was written
            assert store.run_count() == 1
        assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("promptci-snapshot-*"))
    finally:
        holder.kill()
        holder.wait()


def test_a_directory_as_db_exits_2(repo: Repo) -> None:
    config = (repo.path / "promptci.yaml").read_text().replace("db: .promptci/results.duckdb", "db: .")
    repo.write("promptci.yaml", config)
    fail_every_case(repo)
    r = repo.run("eval")
    assert r.code == 2 and "the results database path is a directory" in one_line(r.err)


def _hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    script = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"
    holder = subprocess.Popen([sys.executable, "-c", script, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_waits_for_another_writer_then_says_who_holds_it(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    import promptci.store.core

    fail_every_case(repo)
    assert repo.run("eval").code == 1
    holder = _hold(_db(repo), 1.5)  # lets go while the next eval waits
    try:
        assert repo.run("eval").code == 1
    finally:
        holder.wait()
    monkeypatch.setattr(promptci.store.core, "WRITER_WAIT_S", 0.5)
    holder = _hold(_db(repo), 60)
    try:
        r = repo.run("eval")
        assert r.code == 2
        assert f"results database is in use by another process (held by PID {holder.pid})" in one_line(r.err)
    finally:
        holder.kill()
        holder.wait()
    with duckdb.connect(str(_db(repo)), read_only=True) as con:
        assert [s for (s,) in con.execute("SELECT status FROM runs").fetchall()] == ["complete", "complete"]

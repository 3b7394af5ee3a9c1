"""A results database from elsewhere is data, never code: views, macros and any object beside
promptci's own tables are refused with exit 2 before anything stored in the file runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from promptci.store import Store
from tests.conftest import Repo
from tests.hostile.conftest import fail_every_case, one_line

SECRET = "TOPSECRET-a-local-file-the-reader-never-meant-to-show"


def _forge_view(con: duckdb.DuckDBPyConnection, secret: Path) -> None:
    """``runs`` becomes a view that reads a local file into every run's command."""
    con.execute("ALTER TABLE runs RENAME TO runs_data")
    con.execute(
        f"CREATE VIEW runs AS SELECT r.* REPLACE (t.content AS command) FROM runs_data r, read_text('{secret}') t"
    )


# Each forgery leaves a file whose every table still reads as promptci's, which is what makes
# it dangerous: a reader that checks only table names goes on and runs it.
FORGERIES: dict[str, Callable[[duckdb.DuckDBPyConnection, Path], None]] = {
    "a view over read_text": _forge_view,
    "a macro": lambda con, s: con.execute(f"CREATE MACRO promptci_seen() AS '{s}'"),
    "a column default": lambda con, s: con.execute("ALTER TABLE runs ALTER COLUMN command SET DEFAULT 'forged'"),
    "an extra table": lambda con, s: con.execute("CREATE TABLE extra (x VARCHAR)"),
    "an extra column": lambda con, s: con.execute("ALTER TABLE results ADD COLUMN leak VARCHAR"),
    "a sequence": lambda con, s: con.execute("CREATE SEQUENCE counter"),
    "a schema": lambda con, s: con.execute("CREATE SCHEMA elsewhere"),
    "a type": lambda con, s: con.execute("CREATE TYPE mood AS ENUM ('a', 'b')"),
    "schema_migrations as a view": lambda con, s: (
        con.execute("ALTER TABLE schema_migrations RENAME TO migrations_data"),
        con.execute("CREATE VIEW schema_migrations AS SELECT * FROM migrations_data"),
    ),
}


def _forge(db: Path, how: str, tmp: Path) -> None:
    secret = tmp / "secret.txt"
    secret.write_text(SECRET)
    with duckdb.connect(str(db)) as con:
        FORGERIES[how](con, secret)


def _evaluated(repo: Repo) -> Path:
    fail_every_case(repo)  # every case a recorded render error: a run is stored, no model is loaded
    assert repo.run("eval").code == 1
    db = repo.path / ".promptci/results.duckdb"
    assert db.is_file()
    return db


@pytest.mark.parametrize("how", sorted(FORGERIES))
def test_a_forged_results_database_is_refused_by_every_reader_untouched(repo: Repo, tmp_path: Path, how: str) -> None:
    db = _evaluated(repo)
    _forge(db, how, tmp_path)
    before = db.read_bytes()
    commands = [
        ["history"],
        ["compare", "HEAD", "HEAD"],
        ["report", "--html", str(tmp_path / "r.html")],
        ["cache", "info"],
        ["eval"],
        ["results", "push", "--url", str(tmp_path / "published")],
        ["results", "pull", "--url", str(tmp_path / "published")],
    ]
    for args in commands:
        r = repo.run(*args)
        line = one_line(r.err)
        assert r.code == 2, (how, args, r)
        assert "refusing to read it, and it was not modified" in line or "not a promptci results database" in line
        assert SECRET not in r.out + r.err
    assert db.read_bytes() == before
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("how", ["a view over read_text", "a column default", "a macro"])
def test_db_merge_refuses_a_forged_shard_and_keeps_the_local_database(repo: Repo, tmp_path: Path, how: str) -> None:
    db = _evaluated(repo)
    shard = tmp_path / "shard.duckdb"
    shard.write_bytes(db.read_bytes())
    _forge(shard, how, tmp_path)
    local_before, shard_before = db.read_bytes(), shard.read_bytes()
    r = repo.run("db", "merge", str(shard))
    assert r.code == 2, r
    assert "shard.duckdb" in one_line(r.err) and SECRET not in r.out + r.err
    assert shard.read_bytes() == shard_before
    with Store(db, read_only=True) as store:  # the local file still opens, with its one run
        assert store.db.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert len(local_before) > 0


def test_the_viewer_refuses_a_forged_database_at_start_and_on_every_page(repo: Repo, tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from promptci.project import Project
    from promptci.view.app import create_app

    db = _evaluated(repo)
    run_id = Store(db, read_only=True).db.execute("SELECT id FROM runs").fetchone()[0]
    _forge(db, "a view over read_text", tmp_path)
    r = repo.run("view", "--port", "0")
    assert r.code == 2 and "view `runs`" in one_line(r.err), r
    client = TestClient(create_app(Project.discover(repo.path)), base_url="http://127.0.0.1")
    for url in ("/", "/runs", f"/runs/{run_id}", "/optimizations"):
        page = client.get(url)
        assert page.status_code == 422, (url, page.status_code)
        assert SECRET not in page.text
        assert "view `runs`" in page.text


def test_a_database_read_only_reaches_no_file_even_through_promptcis_own_queries(repo: Repo, tmp_path: Path) -> None:
    """Defence in depth: a read-only open runs with external access off, so even SQL that got
    past the catalog check could not read a file."""
    db = _evaluated(repo)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    with Store(db, read_only=True) as store, pytest.raises(duckdb.PermissionException):
        store.db.execute(f"SELECT content FROM read_text('{secret}')").fetchall()


def test_each_destination_gets_every_cached_answer_once(repo: Repo, tmp_path: Path) -> None:
    """Publishing to a folder first must not count the cache as published to the branch too."""
    from http.server import BaseHTTPRequestHandler

    from promptci.cli import main
    from tests.conftest import chat_reply, git, json_server

    def positive(h: BaseHTTPRequestHandler) -> tuple[int, object]:
        return 200, chat_reply("m", "positive")

    with json_server(positive) as url:
        repo.use_model_server(url + "/v1", model="m")
        repo.commit("scripted model")
        assert repo.run("eval").code in (0, 1)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    folder = repo.run("results", "push", "--url", str(tmp_path / "published"))
    assert folder.code == 0 and "6 cached answers" in folder.out, folder
    branch = repo.run("results", "push")
    assert branch.code == 0 and "6 cached answers" in branch.out, branch
    again = repo.run("results", "push")
    assert "0 cached answers" in again.out  # each destination once: nothing twice
    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    assert main(["-C", str(clone), "results", "pull"]) == 0
    with Store(clone / ".promptci/results.duckdb", read_only=True) as store:
        assert store.db.execute("SELECT count(*) FROM cache").fetchone() == (6,)
    assert repo.run("results", "pull").out.endswith("0 cached answers\n")  # its own batches are not pulled back

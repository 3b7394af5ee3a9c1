"""Parquet sets in a directory or an S3-compatible object store (a real one, on 127.0.0.1), and
compare, history and report reading them in place."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from promptci.cli import main
from promptci.errors import ExitCode

from ..conftest import Katan, Repo, free_port, git
from ..hostile.conftest import fail_every_case


def _configure(repo: Repo, results: str) -> None:
    config = repo.path / "promptci.yaml"
    config.write_text(config.read_text() + results)
    repo.commit("publish results")


def _runs(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT id FROM runs ORDER BY id").fetchall()]


def test_push_and_pull_through_a_directory(repo: Repo, tmp_path: Path) -> None:
    shared = tmp_path / "shared results"  # a space in the path, and a quote in a run's set would be refused
    _configure(repo, f"results:\n  url: '{shared}'\n")
    fail_every_case(repo)
    repo.commit("every case errors, so no model is needed")
    assert repo.run("eval").code == ExitCode.FAILED
    pushed = repo.run("results", "push")
    assert pushed.code == 0 and f"pushed to {shared}: 1 runs" in pushed.out
    (run,) = _runs(repo.path / ".promptci/results.duckdb")
    assert sorted(p.name for p in (shared / "runs" / run).iterdir()) == ["results.parquet", "runs.parquet"]
    assert not list(shared.rglob("*.partial"))

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.path), str(clone))
    assert main(["-C", str(clone), "results", "pull"]) == 0
    assert _runs(clone / ".promptci/results.duckdb") == [run]
    with duckdb.connect(str(clone / ".promptci/results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), count(error) FROM results").fetchone() == (6, 6)


def test_a_set_still_being_written_is_not_read(repo: Repo, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    fail_every_case(repo)
    assert repo.run("eval").code == ExitCode.FAILED
    assert repo.run("results", "push", "--url", str(shared)).code == 0
    (run,) = _runs(repo.path / ".promptci/results.duckdb")
    (shared / "runs" / run / "runs.parquet").unlink()  # as if the pusher were still at work
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.path), str(clone))
    assert main(["-C", str(clone), "results", "pull", "--url", str(shared)]) == 0
    assert _runs(clone / ".promptci/results.duckdb") == []


def test_pulled_strings_pass_the_redaction_layer(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_API_TOKEN", "open sesame #1 (v2.0)")  # RE2 must read its escaped form too
    shared = tmp_path / "shared"
    fail_every_case(repo)
    assert repo.run("eval").code == ExitCode.FAILED
    assert repo.run("results", "push", "--url", str(shared)).code == 0
    (run,) = _runs(repo.path / ".promptci/results.duckdb")
    results = shared / "runs" / run / "results.parquet"
    with duckdb.connect() as con:  # a secret that reached a published file some other way
        con.execute(
            f"COPY (SELECT * REPLACE ('key sk-abcdefghijklmnop at https://user:pw@host/x, open sesame #1 (v2.0)' AS output)"
            f" FROM read_parquet('{results}')) TO '{tmp_path}/r.parquet' (FORMAT parquet)"
        )
    (tmp_path / "r.parquet").replace(results)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.path), str(clone))
    assert main(["-C", str(clone), "results", "pull", "--url", str(shared)]) == 0
    with duckdb.connect(str(clone / ".promptci/results.duckdb"), read_only=True) as con:
        outputs = {r[0] for r in con.execute("SELECT output FROM results").fetchall()}
    assert outputs == {"key sk-*** at https://***@host/x, ***"}


def test_compare_lays_published_runs_over_a_local_database(repo: Repo, tmp_path: Path) -> None:
    """One run only published, one only local, in a database whose name is no plain identifier."""
    shared = tmp_path / "shared"
    config = repo.path / "promptci.yaml"
    text = config.read_text()
    config.write_text(text.replace("db: .promptci/results.duckdb", "db: .promptci/team-results.duckdb"))
    fail_every_case(repo)
    repo.commit("every case errors, so no model is needed")
    assert repo.run("eval").code == ExitCode.FAILED
    assert repo.run("results", "push", "--url", str(shared)).code == 0
    (published,) = _runs(repo.path / ".promptci/team-results.duckdb")
    (repo.path / ".promptci/team-results.duckdb").unlink()
    assert repo.run("eval").code == ExitCode.FAILED
    (local,) = _runs(repo.path / ".promptci/team-results.duckdb")
    assert repo.run("compare", published, local).code == ExitCode.USAGE
    r = repo.run("compare", published, local, "--results", str(shared), "--format", "json")
    assert r.code == 0, r.err
    assert [s["errors"] for s in json.loads(r.out)["suites"]] == [{"base": 6, "head": 6}]
    assert _runs(repo.path / ".promptci/team-results.duckdb") == [local]  # nothing was copied in


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3-compatible server on 127.0.0.1 with one bucket; yields its endpoint."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="team-results")
    yield endpoint
    server.stop()


def test_push_pull_and_read_in_place_on_an_object_store(repo: Repo, s3: str, tmp_path: Path) -> None:
    _configure(repo, f"results:\n  url: s3://team-results/promptci\n  options: {{endpoint_url: '{s3}'}}\n")
    fail_every_case(repo)
    repo.commit("every case errors, so no model is needed")
    assert repo.run("eval").code == ExitCode.FAILED
    pushed = repo.run("results", "push")
    assert pushed.code == 0 and "pushed to s3://team-results/promptci: 1 runs" in pushed.out, pushed.err
    (run,) = _runs(repo.path / ".promptci/results.duckdb")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.path), str(clone))
    where = "s3://team-results/promptci"
    assert main(["-C", str(clone), "compare", run, run]) == ExitCode.USAGE  # not on this machine
    report = json.loads(_cli(clone, "compare", run, run, "--results", where, "--format", "json"))
    assert [s["errors"] for s in report["suites"]] == [{"base": 6, "head": 6}]
    (point,) = json.loads(_cli(clone, "history", "--results", where, "--format", "json"))
    assert (point["cases"], point["score"], point["errors"], point["total"]) == (0, None, 6, 6)  # nothing scored
    assert not (clone / ".promptci/results.duckdb").exists()  # read in place, nothing copied
    assert main(["-C", str(clone), "results", "pull"]) == 0
    assert _runs(clone / ".promptci/results.duckdb") == [run]


def _cli(path: Path, *args: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "promptci", "-C", str(path), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_compare_reads_the_base_straight_from_the_destination(
    repo: Repo, katan: Callable[..., Katan], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    repo.use_model_server(katan("-b", "echo").base_url)
    repo.commit("use the echo server")
    base = repo.git("rev-parse", "HEAD")
    assert repo.run("eval").code == ExitCode.FAILED
    assert repo.run("results", "push", "--url", str(shared)).code == 0
    prompt = repo.path / "prompts/sentiment.yaml"
    prompt.write_text(prompt.read_text().replace("Review: {{ review }}", "Review text: {{ review }}"))
    repo.commit("reword")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.path), str(clone))
    assert main(["-C", str(clone), "eval"]) == ExitCode.FAILED  # the head's results, on this machine only
    missing = main(["-C", str(clone), "compare", base, "HEAD"])
    assert missing == ExitCode.USAGE  # the base was evaluated elsewhere
    out = tmp_path / "cmp.json"
    assert main(["-C", str(clone), "compare", base, "HEAD", "--results", str(shared), "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["suites"][0]["n"] == 6
    assert len(_runs(clone / ".promptci/results.duckdb")) == 1  # the base was read in place, not copied in
    page = tmp_path / "report.html"
    assert main(["-C", str(clone), "report", "--html", str(page), "--results", str(shared)]) == 0
    assert "sentiment" in page.read_text()


def test_an_optimization_is_published_once_it_is_over(repo: Repo, tmp_path: Path) -> None:
    from promptci.optimize.trajectory import new_row
    from promptci.results import Folder, pull, push
    from promptci.store import CreditRow, Store, now

    shared, db = tmp_path / "shared", tmp_path / "results.duckdb"
    with Store(db) as store:
        store.start_optimization(
            "opt-1", prompt="p", suite="s", method="gpo", base_commit="abc", settings="{}", initial="Say it."
        )
        store.add_trajectory([new_row("opt-1", 0, 0, None, "Say it.", "initial", accepted=True)])
        store.add_credit([
            CreditRow(
                optimization_id="opt-1", step=1, case_id="c1", step_id="reason", feedback="too long", blamed=True,
                created_at=now(),
            )
        ])  # fmt: skip
    assert push(db, Folder(str(shared))).optimizations == 0  # still running: not yet
    with Store(db) as store:
        store.update_optimization("opt-1", status="complete", ended_at=now())
    assert push(db, Folder(str(shared))).optimizations == 1
    assert sorted(p.name for p in (shared / "optimizations/opt-1").iterdir()) == [
        "credit.parquet",
        "optimizations.parquet",
        "trajectory.parquet",
    ]
    other = tmp_path / "other.duckdb"
    got = pull(other, Folder(str(shared)))
    assert (got.optimizations, got.rows) == (1, 3)
    with Store(other, read_only=True) as store:
        assert store.optimization("opt-1")["status"] == "complete"  # type: ignore[index]
        assert [r.text for r in store.trajectory("opt-1")] == ["Say it."]
        assert [r.feedback for r in store.credit("opt-1")] == ["too long"]

"""The viewer's own defences, tested with data written straight into the database (past the
store's redaction): every page is redacted and inert, every response carries the policy headers,
and ids from the database are encoded into links."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from promptci.project import Project
from promptci.store import Store
from tests.conftest import Repo
from tests.hostile.conftest import fail_every_case

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from promptci.view.app import create_app

KEY = "sk-proj-abcdefghijklmnop0123456789"
HOSTILE = f"reply \u202eeulav\u202c with NUL\x00 and ESC\x1b[2J and key {KEY}"
ODD_RUN = 'run"><b>x</b>?a=1#frag'


@pytest.fixture
def client(repo: Repo) -> TestClient:
    fail_every_case(repo)
    assert repo.run("eval").code == 1
    db = repo.path / ".promptci/results.duckdb"
    with duckdb.connect(str(db)) as con:  # straight in: the store's redaction never sees these
        con.execute("UPDATE results SET error = ?, output = ?", [HOSTILE, HOSTILE])
        con.execute("UPDATE runs SET id = ?, command = ?", [ODD_RUN, HOSTILE])
        con.execute("UPDATE results SET run_id = ?", [ODD_RUN])
    with Store(db, read_only=True):
        pass  # still a promptci database
    return TestClient(create_app(Project.discover(repo.path)), base_url="http://127.0.0.1")


def _pages(client: TestClient) -> list[str]:
    from urllib.parse import quote

    run = "/runs/" + quote(ODD_RUN, safe="")
    return [client.get(p).text for p in ("/", "/runs", run, run + "?status=errored", "/prompts/sentiment")]


def test_every_page_is_redacted_and_inert_whatever_the_database_holds(client: TestClient) -> None:
    pages = _pages(client)
    assert any("eulav" in p for p in pages), "the hostile text is on a page (shown, not acted on)"
    for page in pages:
        assert "abcdefghijklmnop" not in page
        for raw in ("\u202e", "\x00", "\x1b"):
            assert raw not in page
    assert any("\\u202e" in p and "\\x1b" in p for p in pages)


def test_a_run_id_from_the_database_is_one_encoded_path_segment(client: TestClient) -> None:
    runs = client.get("/runs").text
    assert 'href="/runs/run%22%3E%3Cb%3Ex%3C%2Fb%3E%3Fa%3D1%23frag"' in runs
    assert "<b>x</b>" not in runs


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("GET", "/", "evil.example", 400),
        ("GET", "/no/such/page", "127.0.0.1", 404),
        ("GET", "/runs/nope", "127.0.0.1", 404),
        ("POST", "/runs", "127.0.0.1", 405),
        ("DELETE", "/", "127.0.0.1", 405),
    ],
)
def test_every_response_carries_the_policy_headers(
    client: TestClient, method: str, path: str, host: str, status: int
) -> None:
    r = client.request(method, path, headers={"Host": host})
    assert r.status_code == status
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_html_report_is_inert_too(repo: Repo, tmp_path: Path, client: TestClient) -> None:
    out = tmp_path / "r.html"
    assert repo.run("report", "--html", str(out)).code == 0
    html = out.read_text()
    assert "\u202e" not in html and "\x00" not in html and "\x1b" not in html
    assert "abcdefghijklmnop" not in html

"""The viewer's paged reads on a real DuckDB file: pages are bounded, filters are counted before
paging, and no query text or offset a URL can carry breaks a page or changes what is stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.store import ResultRow, Store
from promptci.store.browse import MAX_PAGE
from promptci.view.pages import Pager

RUN = "20260101-000000-browse"


def _store(path: Path, n: int = 230) -> Path:
    with Store(path) as store:
        store.start_run(RUN, git_commit="a" * 40, branch="main", dirty=False, command="test", config_hash="c")
        rows = []
        for i in range(n):
            errored, passed = i % 10 == 0, i % 3 != 0
            row = ResultRow(
                run_id=RUN, suite="s", suite_hash="h", prompt="p", prompt_hash="v", prompt_commit="a" * 40,
                case_id=f"c{i:04d}", case_name=f"case {i}", repeat_index=0, model_id="m", params_hash="x",
                input=f"Review: item {i}", expected="positive", output=None if errored else "positive",
                scores=None, score=None if errored else float(passed), passed=None if errored else passed,
                error="HTTP 500" if errored else None, latency_ms=1.0, tokens_in=1, tokens_out=1, cost=0.0,
                cached=False, created_at=datetime(2026, 1, 1) + timedelta(seconds=i),
            )  # fmt: skip
            rows.append(row)
        store.add_results(rows)
        store.finish_run(RUN, "complete")
    return path


def test_pages_are_bounded_and_filters_counted_before_paging(tmp_path: Path) -> None:
    db = _store(tmp_path / "r.duckdb")
    with Store(db, read_only=True) as store:
        first = store.case_page(RUN, limit=100)
        assert (first.total, len(first.rows), first.next_offset, first.previous_offset) == (230, 100, 100, None)
        last = store.case_page(RUN, offset=200, limit=100)
        assert (len(last.rows), last.next_offset, last.previous_offset) == (30, None, 100)
        assert len(store.case_page(RUN, limit=10_000).rows) == MAX_PAGE
        errored = store.case_page(RUN, status="errored", limit=200)
        assert errored.total == 23 and all(r["error"] == "HTTP 500" for r in errored.rows)
        failed = store.case_page(RUN, status="failed", limit=200)
        assert failed.total == sum(1 for i in range(230) if i % 10 and i % 3 == 0)
        assert all(r["error"] is None and not r["passed"] for r in failed.rows)
        assert store.case_page(RUN, query="ITEM 42").total == 1  # case-insensitive, in the input
        ((_, errors),) = [(e["error"], e["n"]) for e in store.run_errors(RUN)]
        assert errors == 23
        (totals,) = store.run_totals(RUN)
        assert (totals["results"], totals["errors"], totals["scored"]) == (230, 23, 207)
    pager = Pager(first, f"/runs/{RUN}", {"status": "all", "q": "", "offset": "0"})
    assert pager.next == f"/runs/{RUN}?status=all&offset=100" and pager.previous is None
    assert pager.shown == "1–100 of 230"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("browse") / "r.duckdb", 40)


@settings(max_examples=60, deadline=None)
@given(
    query=st.text(max_size=60),
    status=st.text(max_size=12) | st.sampled_from(["all", "failed", "errored", "passed"]),
    offset=st.integers(min_value=-(2**40), max_value=2**40),
    limit=st.integers(min_value=-5, max_value=10**6),
)
def test_any_filter_a_url_carries_reads_a_bounded_page(
    small: Path, query: str, status: str, offset: int, limit: int
) -> None:
    before = small.read_bytes()
    with Store(small, read_only=True) as store:
        page = store.case_page(RUN, offset=offset, limit=limit, status=status, query=query or None)
    assert 0 <= len(page.rows) <= MAX_PAGE and page.total <= 40
    assert page.offset >= 0 and 1 <= page.limit <= MAX_PAGE
    assert small.read_bytes() == before

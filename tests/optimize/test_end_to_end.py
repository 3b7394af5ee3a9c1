"""Real optimizations on SmolLM2 and a shared BIG-bench task, small enough for CI.

On sports_understanding SmolLM2 mostly answers "not plausible", which the choice scorer
does not accept, so the dogfooded instruction scores near zero and the optimizer has
somewhere to go.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import duckdb
import pytest

import promptci
from promptci.errors import PromptciError
from promptci.optimize.hygiene import REASONS
from promptci.optimize.session import optimize
from promptci.optimize.settings import Settings
from promptci.project import Project

from ..conftest import Katan, Repo
from .conftest import set_limit

INITIAL = "You are a sports expert. Answer with one word, plausible or implausible."

pytestmark = pytest.mark.slow


def test_gpo_refuses_smollm2s_junk_proposals_and_makes_no_branch(sports: Repo) -> None:
    """SmolLM2 as its own optimizer on sports proposes only junk: meta-prompt copies, talk about
    the rewriting, exemplar lines, answers that collapse onto one value. Hygiene refuses each
    before scoring, with its reason; nothing wins, no branch is made, and the report says why
    without speaking of a branch."""
    navigate = sports  # 20 cases: split 4/6/10
    navigate.write("scratch.txt", "uncommitted work")  # a dirty checkout is fine and stays as it is
    status, head = navigate.git("status", "--porcelain"), navigate.git("rev-parse", "HEAD")
    result = navigate.run(
        "optimize", "sports_understanding", "--suite", "sports_understanding", "--method", "gpo",
        "--steps", "2", "--candidates", "3", "--split", "0.2/0.3/0.5", "-o", str(navigate.path.parent / "pr.md"),
        "--allow-insignificant",
    )  # fmt: skip
    assert result.code == 0, result.err
    body = (navigate.path.parent / "pr.md").read_text()
    assert body == result.out.rstrip("\n") + "\n"
    assert (navigate.path.parent / "pr.svg").read_text().startswith("<svg")

    db = duckdb.connect(str(navigate.path / ".promptci/results.duckdb"), read_only=True)
    (opt_id, status_, before, after, branch, p_value), *_ = db.execute(
        "SELECT id, status, test_before, test_after, branch, p_value FROM optimizations"
    ).fetchall()
    rows = db.execute(
        "SELECT step, candidate, status, dev_score, accepted, edit_distance, edit_budget, parent_step, text"
        " FROM trajectory WHERE optimization_id = ? ORDER BY step, candidate",
        [opt_id],
    ).fetchall()
    assert status_ == "complete" and branch is None and before == after and p_value == 1.0
    assert rows[0][:3] == (0, 0, "initial") and rows[0][3] is not None
    assert [r[0] for r in rows] == [0, 1, 1, 1, 2, 2, 2]
    refused = Counter(r[2] for r in rows[1:])
    assert set(refused) <= {*REASONS, "collapsed"} and len(refused) >= 3, refused
    for step, _, kind, dev, accepted, distance, budget, parent, _ in rows[1:]:
        assert budget == (30 if step == 1 else 10)  # cosine schedule over 2 steps, t = |H|
        assert parent == 0  # nothing was scored at step 1, so step 2 edits the initial prompt again
        assert (dev is not None) == (kind == "collapsed") and not accepted
        assert distance is not None
    assert navigate.git("branch", "--list", "promptci/*") == ""
    assert navigate.git("status", "--porcelain") == status and navigate.git("rev-parse", "HEAD") == head
    assert "no branch: no candidate beat the initial instruction on dev" in result.err

    # The report carries the same numbers and says what was refused, and why.
    assert f"**Held-out test: {before:.3f} → {after:.3f} (+0.000" in body
    assert "| best constant answer on test, " in body and "tokens per call" in body
    assert "Refused candidates: " + ", ".join(f"{n} {k}" for k, n in refused.most_common()) + "." in body
    assert "⚠️ The dev split has 6 cases" in body
    assert "with the new prompt file in place" in body and "this branch" not in body
    assert f"optimization_id = '{opt_id}'" in body


def test_a_budget_stops_cleanly_and_resume_continues_from_the_stored_trajectory(navigate: Repo) -> None:
    set_limit(navigate, "navigate", 15)  # split 3/3/9
    project = Project.discover(navigate.path)
    first = promptci.optimize_prompt(
        "navigate", "navigate", "opro", root=project.root, steps=4, candidates=2, options={"max_tokens": 40},
        budget={"calls": 12}, dry_run=True,
    )  # fmt: skip
    with pytest.raises(PromptciError, match="no setting 'optimizer_max_tokens'"):
        promptci.optimize_prompt("navigate", "navigate", "opro", root=project.root, optimizer_max_tokens=40)
    out = first.outcome
    # 6 for the initial scoring, then 2 optimizer samples a step and 3 train cases per new candidate:
    # 4 steps cannot fit, and no step or candidate is started that the budget cannot pay for.
    assert out.status == "budget" and 8 <= out.usage.calls <= 12
    assert "The search stopped early: the budget (calls 12) was spent." in first.body
    db = project.path(project.config.db)
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT step, candidate, text, train_score, calls FROM trajectory WHERE optimization_id = ?"
            " ORDER BY step, candidate",
            [out.id],
        ).fetchall()
        assert con.execute("SELECT status FROM optimizations WHERE id = ?", [out.id]).fetchone() == ("budget",)
    assert 1 <= max(r[0] for r in stored) < 4  # the initial scoring (3 train + 3 dev) and step 1 fit

    resumed = optimize(project, None, resume=out.id, settings=replace_budget(), dry_run=True)
    assert resumed.outcome.id == out.id and resumed.outcome.status == "complete"
    with duckdb.connect(str(db), read_only=True) as con:
        after = con.execute(
            "SELECT step, candidate, text, train_score, calls FROM trajectory WHERE optimization_id = ?"
            " ORDER BY step, candidate",
            [out.id],
        ).fetchall()
    assert after[: len(stored)] == stored  # nothing stored was rewritten
    assert {r[0] for r in after} == {0, 1, 2, 3, 4}
    assert resumed.outcome.usage.calls > out.usage.calls


def replace_budget() -> Settings:
    return Settings(method="opro", steps=0, budget={"calls": 1000})


def test_an_openai_compatible_optimizer_with_faults_is_retried_and_never_crashes(
    navigate: Repo, katan: Callable[..., Katan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optimizer behind llm-katan's echo backend, failing 30% of requests; SmolLM2 answers the cases."""
    server = katan("-b", "echo", "--error-rate", "0.3")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    set_limit(navigate, "navigate", 15)  # split 3/3/9
    result = navigate.run(
        "optimize", "navigate", "--suite", "navigate", "--method", "gpo", "--steps", "2", "--candidates", "2",
        "--optimizer-model", "openai:echo-model", "--dry-run", "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(result.out)
    con = duckdb.connect(str(navigate.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT step, status FROM trajectory WHERE optimization_id = ? ORDER BY step, candidate", [report["id"]]
    ).fetchall()
    assert [r[0] for r in rows] == [0, 1, 1, 2, 2]
    # An echo holds no real candidate: whatever it parses to is filtered, scored or skipped, never a crash.
    known = ("initial", "scored", "duplicate", "unparsable", "has-tag", "too-long", "invalid", "collapsed", *REASONS)
    assert all(r[1] in known for r in rows)
    cached = con.execute("SELECT count(*) FROM cache WHERE model_id LIKE 'openai:echo-model@%'").fetchone()
    assert cached == (4,)  # every optimizer sample answered despite the injected faults (errors are never cached)

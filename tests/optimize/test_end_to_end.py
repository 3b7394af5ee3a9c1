"""Real optimizations on SmolLM2 and a shared BIG-bench task, small enough for CI.

On sports_understanding SmolLM2 mostly answers "not plausible", which the choice scorer
does not accept, so the dogfooded instruction scores near zero and the optimizer has
somewhere to go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import duckdb
import pytest

import promptci
from promptci.errors import PromptciError
from promptci.optimize.session import optimize
from promptci.optimize.settings import Settings
from promptci.project import Project

from ..conftest import Katan, Repo
from .conftest import set_limit

INITIAL = "You are a sports expert. Answer with one word, plausible or implausible."

pytestmark = pytest.mark.slow


def test_gpo_commits_a_better_instruction_on_a_branch_with_evidence(sports: Repo) -> None:
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
    (opt_id, status_, before, after, branch, commit), *_ = db.execute(
        "SELECT id, status, test_before, test_after, branch, branch_commit FROM optimizations"
    ).fetchall()
    rows = db.execute(
        "SELECT step, candidate, status, dev_score, accepted, edit_distance, edit_budget, parent_step"
        " FROM trajectory WHERE optimization_id = ? ORDER BY step, candidate",
        [opt_id],
    ).fetchall()
    assert status_ == "complete"
    assert rows[0][:3] == (0, 0, "initial") and rows[0][3] is not None
    assert [r[0] for r in rows] == [0, 1, 1, 1, 2, 2, 2]
    for step, _, kind, dev, _, distance, budget, parent in rows[1:]:
        assert budget == (30 if step == 1 else 10)  # cosine schedule over 2 steps, t = |H|
        assert parent == step - 1
        assert (dev is not None) == (kind in ("scored", "duplicate"))
        assert (distance is not None) == (kind not in ("unparsable", "error"))
    assert sum(r[4] for r in rows if r[0] > 0) <= 2  # at most one move per step

    # The branch: HEAD plus the prompt file, with only the instruction changed.
    assert branch == f"promptci/optimize/sports_understanding/gpo-{opt_id.rsplit('-', 1)[1]}"
    assert navigate.git("rev-parse", branch) == commit and navigate.git("rev-parse", f"{commit}^") == head
    assert navigate.git("diff", "--name-only", head, commit) == "prompts/sports_understanding.yaml"
    new_source = navigate.git("show", f"{commit}:prompts/sports_understanding.yaml")
    assert new_source.startswith("# Owned by the evals team.\n") and INITIAL not in new_source
    old_source = navigate.git("show", f"{head}:prompts/sports_understanding.yaml")
    changed = [
        line for line in navigate.git("diff", "-U0", head, commit).splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]  # fmt: skip
    assert changed[0] == f"-    content: {INITIAL}" and changed[1].startswith("+    content: ")
    assert all(line.startswith("+") for line in changed[1:])  # a block scalar may take several lines
    unchanged = [line for line in old_source.splitlines() if INITIAL not in line]
    assert all(line in new_source.splitlines() for line in unchanged)
    message = navigate.git("log", "-1", "--format=%B", commit)
    assert message.startswith(
        f"optimize sports_understanding (gpo): test {before:.3f} → {after:.3f} ({after - before:+.3f},"
    )
    assert navigate.git("status", "--porcelain") == status and navigate.git("rev-parse", "HEAD") == head

    # The PR body carries the same numbers as the database.
    assert f"**Held-out test: {before:.3f} → {after:.3f} ({after - before:+.3f}" in body
    assert re.search(r"exact McNemar p = [0-9.e-]+ over 10 paired cases", body)
    assert "```mermaid\nxychart-beta" in body and "![dev score per step](pr.svg)" in body
    assert f"-    content: {INITIAL}" in body
    assert f"optimization_id = '{opt_id}'" in body
    assert "Split train/dev/test 4/6/10 (seed 0); 2 of 2 steps, 3 candidates per step" in body
    # Made with --allow-insignificant: the body and the commit say the gain may be noise.
    (p_value,) = db.execute("SELECT p_value FROM optimizations").fetchone()  # type: ignore[misc]
    assert p_value >= 0.05 and body.startswith(
        f"## promptci optimize: `sports_understanding` with GPO\n\n⚠️ **Not significant** (p = {p_value:.3g}"
    )
    assert "Held-out change, not significant at α = 0.05, on 10 test cases" in message


def test_a_budget_stops_cleanly_and_resume_continues_from_the_stored_trajectory(navigate: Repo) -> None:
    set_limit(navigate, "navigate", 15)  # split 3/3/9
    project = Project.discover(navigate.path)
    first = promptci.optimize_prompt(
        "navigate", "navigate", "opro", root=project.root, steps=2, candidates=2, options={"max_tokens": 40},
        budget={"calls": 12}, dry_run=True,
    )  # fmt: skip
    with pytest.raises(PromptciError, match="no setting 'optimizer_max_tokens'"):
        promptci.optimize_prompt("navigate", "navigate", "opro", root=project.root, optimizer_max_tokens=40)
    out = first.outcome
    assert out.status == "budget" and out.usage.calls >= 12
    assert "The search stopped early: the budget (calls 12) was spent." in first.body
    db = project.path(project.config.db)
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT step, candidate, text, train_score, calls FROM trajectory WHERE optimization_id = ?"
            " ORDER BY step, candidate",
            [out.id],
        ).fetchall()
        assert con.execute("SELECT status FROM optimizations WHERE id = ?", [out.id]).fetchone() == ("budget",)
    assert max(r[0] for r in stored) == 1  # the initial scoring (3 train + 3 dev) and step 1 fit

    resumed = optimize(project, None, resume=out.id, settings=replace_budget(), dry_run=True)
    assert resumed.outcome.id == out.id and resumed.outcome.status == "complete"
    with duckdb.connect(str(db), read_only=True) as con:
        after = con.execute(
            "SELECT step, candidate, text, train_score, calls FROM trajectory WHERE optimization_id = ?"
            " ORDER BY step, candidate",
            [out.id],
        ).fetchall()
    assert after[: len(stored)] == stored  # nothing stored was rewritten
    assert {r[0] for r in after} == {0, 1, 2}
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
    assert all(r[1] in ("initial", "scored", "duplicate", "unparsable", "has-tag", "too-long", "invalid") for r in rows)
    cached = con.execute("SELECT count(*) FROM cache WHERE model_id LIKE 'openai:echo-model@%'").fetchone()
    assert cached == (4,)  # every optimizer sample answered despite the injected faults (errors are never cached)

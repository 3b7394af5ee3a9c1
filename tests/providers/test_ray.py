"""`eval --executor ray` on a local two-CPU Ray cluster with the embedded model: the same stored
answers as a plain eval, and an actor killed mid-run loses nothing and stores nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from promptci.evals.plan import build_plan, suite_files
from promptci.evals.runner import run_eval
from promptci.project import Project
from promptci.providers.pool import ModelPool
from promptci.providers.ray_actors import RayOptions, RayProvider

from ..conftest import Repo

ray = pytest.importorskip("ray", reason="the Ray executor needs `pip install 'promptci-gate[ray]'`")
pytestmark = pytest.mark.slow
CASES = 200
WORDS = ["great", "awful", "fine", "broken", "lovely", "useless", "perfect", "cheap", "sturdy", "flimsy"]


@pytest.fixture
def many(repo: Repo) -> Iterator[Repo]:
    """The init example with a 200-review suite beside its own."""
    with (repo.path / "evals/many.jsonl").open("w") as fh:
        for i in range(CASES):
            a, b = WORDS[i % 10], WORDS[(i // 10) % 10]
            fh.write(json.dumps({"review": f"It is {a} and {b}, item {i}.", "sentiment": "positive"}) + "\n")
    suite = "prompts: [sentiment]\nscorers: [{type: choice, choices: [positive, negative]}]\n"
    suite += "dataset: {path: many.jsonl, vars: {review: review}, expected: sentiment}\n"
    (repo.path / "evals/many.yaml").write_text(suite)
    yield repo
    if ray.is_initialized():
        ray.shutdown()


def answers(repo: Repo) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        rows = db.execute(
            "SELECT run_id, case_id, output FROM results WHERE suite = 'many' ORDER BY run_id, case_id"
        ).fetchall()
    runs: dict[str, list[tuple[str, str]]] = {}
    for run_id, case_id, output in rows:
        runs.setdefault(run_id, []).append((case_id, output))
    return runs


class KillOne:
    """A progress display that kills one of the run's actors once ``after`` cases are in."""

    def __init__(self, pool: ModelPool, after: int) -> None:
        self.pool, self.after, self.seen, self.killed = pool, after, 0, None

    def start(self, total: int, cached: int) -> None: ...
    def status(self, text: str) -> None: ...

    def advance(self, n: int = 1) -> None:
        self.seen += n
        if self.seen >= self.after and self.killed is None:
            (provider,) = self.pool._loaded.values()
            assert isinstance(provider, RayProvider)
            victim = provider.actors[0]
            self.killed = ray.get(victim.pid.remote())
            ray.kill(victim, no_restart=True)


def test_ray_actors_store_the_answers_a_plain_run_does_and_survive_a_killed_one(many: Repo) -> None:
    env = {**os.environ, "PROMPTCI_WORKER": "0"}
    plain = subprocess.run(
        [sys.executable, "-m", "promptci", "-C", str(many.path), "eval", "many", "--no-cache"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert plain.returncode in (0, 1), plain.stderr

    project = Project.discover(many.path)
    plan = build_plan(project, suite_files(project, ("many",)))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    pool = ModelPool(project.root, ray=RayOptions(actors=2))
    progress: Any = KillOne(pool, after=40)
    report = run_eval(project, plan, use_cache=False, models=pool, progress=progress)
    (provider,) = pool._loaded.values()
    assert isinstance(provider, RayProvider)
    assert progress.killed is not None and provider.lost == 1 and provider.resent == 1
    assert report.status == "complete" and not report.skipped

    ray.shutdown()  # the command starts a local cluster of its own
    cli = subprocess.run(
        [sys.executable, "-m", "promptci", "-C", str(many.path), "eval", "many", "--no-cache", "--executor", "ray"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert cli.returncode == plain.returncode, cli.stderr

    first, killed, through_cli = answers(many).values()
    assert len(first) == len(killed) == len(through_cli) == CASES  # nothing lost, nothing twice
    assert len({case for case, _ in killed}) == CASES
    assert killed == first and through_cli == first

"""`promptci eval` end to end on the real SmolLM2 model and a real DuckDB file."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from xml.etree import ElementTree as ET

import duckdb
import pytest

from promptci.errors import ExitCode
from promptci.evals.plan import build_plan, suite_files
from promptci.evals.runner import run_eval
from promptci.project import Project
from promptci.store.migrations import MIGRATIONS

from ..conftest import Katan, Repo

pytestmark = pytest.mark.slow

SUITE = """\
prompts: [sentiment]
model: {max_tokens: 4}
scorers:
  - type: choice
    choices: [positive, negative]
threshold: 0.0
cases:
  - vars: {review: "Works perfectly, I use it every day."}
    expected: positive
  - vars: {review: "Broke after two days and support never answered."}
    expected: negative
  - vars: {review: "Great value for the price, would buy again."}
    expected: positive
"""


@pytest.fixture
def small(repo: Repo) -> Repo:
    repo.write("evals/sentiment.yaml", SUITE)
    repo.commit("small suite")
    return repo


def _sql(repo: Repo, query: str) -> list[tuple]:  # type: ignore[type-arg]
    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _usage(repo: Repo, *args: str) -> dict[str, int]:
    out = repo.path / "out.json"
    result = repo.run("eval", *args, "-o", str(out))
    assert result.code == ExitCode.OK, result.err  # threshold 0: every run passes
    return json.loads(out.read_text())["usage"]


def test_results_are_rows_in_duckdb(small: Repo) -> None:
    result = small.run("eval")
    assert result.code == ExitCode.OK, result.err
    assert "sentiment\tsentiment\t3\t" in result.out
    rows = _sql(
        small,
        "SELECT suite, prompt, prompt_hash, prompt_commit, model_id, output, scores, cached, error "
        "FROM results ORDER BY case_id",
    )
    head = small.git("rev-parse", "HEAD")
    prompt_changed = small.git("log", "-1", "--format=%H", "--", "prompts/sentiment.yaml")
    assert len(rows) == 3 and prompt_changed != head
    for suite, prompt, prompt_hash, commit, model_id, output, scores, cached, error in rows:
        assert (suite, prompt, commit, cached, error) == ("sentiment", "sentiment", prompt_changed, False, None)
        assert len(prompt_hash) == 64 and model_id.startswith("SmolLM2-135M-Instruct.Q4_1.gguf#")
        assert output and set(json.loads(scores)) == {"choice"}
    runs = _sql(small, "SELECT status, git_commit, branch, dirty FROM runs")
    assert runs == [("complete", head, "main", False)]
    assert _sql(small, "SELECT count(*) FROM schema_migrations") == [(len(MIGRATIONS),)]


def test_second_run_is_served_from_the_cache(small: Repo) -> None:
    assert _usage(small)["calls"] == 3
    again = _usage(small)
    assert again["calls"] == 0 and again["cached"] == 3
    outputs = _sql(small, "SELECT run_id, case_id, output FROM results ORDER BY case_id, created_at")
    assert outputs[0][2] == outputs[1][2] and outputs[0][0] != outputs[1][0]
    assert _usage(small, "--no-cache")["calls"] == 3


def test_the_repeat_index_is_part_of_the_cache_key(small: Repo) -> None:
    _usage(small)
    usage = _usage(small, "--repeat", "2")
    assert (usage["cached"], usage["calls"]) == (3, 3)
    assert _sql(small, "SELECT count(DISTINCT key) FROM cache") == [(6,)]


def test_render_errors_are_recorded_not_scored_or_cached(small: Repo) -> None:
    small.write("evals/sentiment.yaml", SUITE + "  - vars: {}\n    expected: positive\n")
    result = small.run("eval")
    assert result.code == ExitCode.FAILED
    rows = _sql(small, "SELECT error, score, passed FROM results WHERE error IS NOT NULL")
    assert len(rows) == 1 and rows[0][0].startswith("render: prompt 'sentiment': missing required variable")
    assert rows[0][1:] == (None, None)
    assert _sql(small, "SELECT count(*) FROM cache") == [(3,)]


def test_below_threshold_exits_1(small: Repo) -> None:
    small.write(
        "evals/sentiment.yaml",
        SUITE.replace("threshold: 0.0", "threshold: 1.0")
        + "  - vars: {review: 'neutral text'}\n    expected: neither\n",
    )
    result = small.run("eval")
    assert result.code == ExitCode.FAILED and "FAIL" in result.out


def test_an_interrupted_run_keeps_what_it_finished(small: Repo) -> None:
    project = Project.discover(small.path)
    plan = build_plan(project, suite_files(project))

    class Stop:
        done = 0

        def start(self, total: int, cached: int) -> None: ...
        def status(self, text: str) -> None: ...

        def advance(self, n: int = 1) -> None:
            self.done += n
            if self.done == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_eval(project, plan, progress=Stop())
    assert _sql(small, "SELECT status FROM runs") == [("interrupted",)]
    assert _sql(small, "SELECT count(*) FROM results") == [(2,)]
    resumed = _usage(small)
    assert (resumed["cached"], resumed["calls"]) == (2, 1)


def test_output_files(small: Repo) -> None:
    paths = {ext: small.path / f"out{ext}" for ext in (".json", ".jsonl", ".csv", ".xml")}
    args = [a for p in paths.values() for a in ("-o", str(p))]
    assert small.run("eval", *args).code == 0
    data = json.loads(paths[".json"].read_text())
    assert data["version"] == 1 and data["suites"][0]["cases"] == 3 and len(data["results"]) == 3
    assert len(paths[".jsonl"].read_text().splitlines()) == 3
    assert len(list(csv.DictReader(paths[".csv"].open()))) == 3
    suite = ET.parse(paths[".xml"]).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and len(suite.findall("testcase")) == 3
    assert small.run("eval", "-o", str(small.path / "out.html")).code == ExitCode.USAGE


def test_bad_dataset_fails_before_any_model_call(small: Repo) -> None:
    small.write("evals/data.yaml", "prompts: [sentiment]\ndataset: {path: nope.jsonl}\nscorers: [{type: exact}]\n")
    result = small.run("eval")
    assert result.code == ExitCode.USAGE and "dataset file not found" in result.err
    assert not (small.path / ".promptci/results.duckdb").exists()


def test_filters_and_shards(small: Repo) -> None:
    assert _usage(small, "--sample", "1")["calls"] == 1
    shards = [_usage(small, "--shard", f"{i}/2") for i in (1, 2)]
    assert sum(u["calls"] + u["cached"] for u in shards) == 3
    assert small.run("eval", "--shard", "3/2").code == ExitCode.USAGE


AMBIGUOUS_SUITE = """\
prompts: [sentiment]
model: {max_tokens: 64}
scorers:
  - type: choice
    choices: [positive, negative]
threshold: 0.5
cases:
  - vars: {review: "positive at first, then negative"}
    expected: positive
"""


def test_an_ambiguous_answer_is_stored_with_its_note(repo: Repo, katan: Callable[..., Katan]) -> None:
    """The echo server repeats the prompt, which states both choices: the answer scores 0, and
    the stored row says why."""
    repo.use_model_server(katan("-b", "echo").base_url)
    repo.write("evals/sentiment.yaml", AMBIGUOUS_SUITE)
    repo.commit("a suite the echo server answers ambiguously")
    result = repo.run("eval")
    assert result.code == ExitCode.FAILED, result.err
    ((output, score, note),) = _sql(repo, "SELECT output, score, note FROM results")
    assert "positive at first, then negative" in output
    assert score == 0.0 and note == "choice: ambiguous: states 'positive' and 'negative'"


def test_repeats_give_pass_k_pass_at_k_and_flaky_cases(small: Repo) -> None:
    """Sampled at temperature 1.5, SmolLM2's repeats disagree on some cases: each case's outcomes
    are counted, and pass^k ≤ the mean ≤ pass@k."""
    small.write("evals/sentiment.yaml", SUITE.replace("max_tokens: 4}", "max_tokens: 4, temperature: 1.5}"))
    out = small.path / "out.json"
    result = small.run("eval", "--repeat", "4", "-o", str(out))
    assert result.code == ExitCode.OK, result.err
    header = result.out.splitlines()[0].split("\t")
    assert header[header.index("score") + 1 : header.index("score") + 3] == ["pass^4", "pass@4"]
    (suite,) = json.loads(out.read_text())["suites"]
    rows = _sql(small, "SELECT case_id, count(*), count(*) FILTER (WHERE passed) FROM results GROUP BY 1")
    assert len(rows) == 3 and all(n == 4 for _, n, _ in rows)
    assert suite["repeats"] == 4
    assert suite["pass_all"] == sum(p == 4 for _, _, p in rows) / 3
    assert suite["pass_any"] == sum(p > 0 for _, _, p in rows) / 3
    assert suite["flaky"] == sum(0 < p < 4 for _, _, p in rows)
    assert suite["pass_all"] <= suite["pass_any"]

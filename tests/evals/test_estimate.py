"""`eval --estimate`, `--max-calls` and `--max-cost`: calls, tokens and price before a run,
against what the run then used, on the real SmolLM2 model and tokenizer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from promptci.errors import ExitCode
from promptci.evals.estimate import litellm_price

from ..conftest import REPO_ROOT, Repo


@pytest.mark.slow
def test_the_estimate_counts_what_the_run_then_sends(repo: Repo) -> None:
    assert repo.run("eval", "sentiment", "--head", "2").code in (0, 1)  # converts and caches the model
    runs = len(repo.sql("SELECT id FROM runs"))
    found = repo.run("eval", "sentiment", "--no-cache", "--estimate", "--format", "json")
    assert found.code == ExitCode.OK, found.err
    assert len(repo.sql("SELECT id FROM runs")) == runs  # an estimate runs nothing
    estimate = json.loads(found.out)
    (suite,) = estimate["suites"]
    assert suite["exact"] and suite["tokens_counted_by"] == "the model's tokenizer and chat template"
    cases = suite["calls"]
    assert suite["cost_max"] == 0.0 and suite["output_tokens_expected"] is not None
    done = repo.run("eval", "sentiment", "--no-cache")
    assert done.code in (0, 1) and f"estimate: {cases} new model call(s), 0 cached" in done.err
    ((tokens_in, tokens_out, calls),) = repo.sql(
        "SELECT sum(tokens_in), sum(tokens_out), count(*) FROM results"
        " WHERE run_id = (SELECT id FROM runs ORDER BY started_at DESC LIMIT 1)"
    )
    assert calls == suite["calls"] and tokens_in == suite["prompt_tokens"]  # the model's own tokenizer: exact
    assert tokens_out <= suite["output_tokens_max"]
    assert (
        f"estimated {cases} call(s) and {tokens_in:,} prompt tokens; used {cases} and {tokens_in:,} (+0.0%)" in done.err
    )
    ((stored, run_id),) = repo.sql("SELECT estimate, id FROM runs ORDER BY started_at DESC LIMIT 1")
    kept = json.loads(stored)
    assert kept["calls"] == cases and kept["prompt_tokens"] == tokens_in and kept["prompt_tokens_exact"]
    from promptci.store import Store
    from promptci.view.pages import run as run_page

    with Store(repo.path / ".promptci/results.duckdb", read_only=True) as store:
        page = run_page(store, run_id, {})
    assert page["estimate"] == kept and page["spent_in"] == tokens_in and page["spent_out"] == tokens_out
    ((first,),) = repo.sql("SELECT id FROM runs ORDER BY started_at LIMIT 1")
    comment = repo.run("compare", first, run_id, "--format", "markdown")  # the PR comment: estimate beside spend
    spend = f"run {run_id}: estimated {cases} call(s) and {tokens_in:,} prompt tokens; used {cases} and {tokens_in:,}"
    assert "**Estimate and spend** (head): " + spend in comment.out, comment.out
    cached = json.loads(repo.run("eval", "sentiment", "--estimate", "--format", "json").out)
    assert cached["calls"] == 0 and cached["suites"][0]["cached"] == cases
    refused = repo.run("eval", "sentiment", "--no-cache", "--max-calls", "2")
    assert refused.code == ExitCode.USAGE and f"{cases} new model calls, over --max-calls 2" in refused.err
    assert len(repo.sql("SELECT id FROM runs")) == runs + 1  # the refused run never started


@pytest.mark.slow
def test_a_tool_calling_prompt_is_counted_as_the_model_reads_it(repo: Repo) -> None:
    """The tools in the chat template (or the preamble the local provider writes): exact too."""
    for rel in ("prompts/extract_address.yaml", "evals/extract_address.yaml", "evals/data/addresses.jsonl"):
        (repo.path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / rel, repo.path / rel)
    repo.commit("a tool-calling suite")
    found = json.loads(repo.run("eval", "extract_address", "--head", "4", "--estimate", "--format", "json").out)
    assert repo.run("eval", "extract_address", "--head", "4").code in (0, 1)
    ((tokens_in, calls),) = repo.sql("SELECT sum(tokens_in), count(*) FROM results WHERE suite = 'extract_address'")
    assert found["calls"] == calls == 4 and found["prompt_tokens"] == tokens_in


def test_an_api_model_is_counted_and_priced_without_torch(repo: Repo) -> None:
    price = litellm_price("gpt-4o-mini")
    assert price is not None and price["input"] > 0  # LiteLLM's table, read as a file
    script = (
        "import sys, json\n"
        "from promptci.cli import main\n"
        f"code = main(['-C', {str(repo.path)!r}, 'eval', 'sentiment', '--model', 'openai:gpt-4o-mini',"
        " '--estimate', '--format', 'json'])\n"
        "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    verdict = json.loads(lines[-1])
    assert verdict == {"code": 0, "torch": False, "transformers": False}, done.stderr
    estimate = json.loads("\n".join(lines[:-1]))
    (suite,) = estimate["suites"]
    assert suite["exact"] and suite["tokens_counted_by"].startswith("tiktoken ")
    expected = (suite["prompt_tokens"] * price["input"] + suite["output_tokens_max"] * price["output"]) / 1e6
    assert suite["cost_max"] == pytest.approx(expected) and suite["cost_max"] > 0
    over = repo.run("eval", "sentiment", "--model", "openai:gpt-4o-mini", "--max-cost", "0.000001")
    assert over.code == ExitCode.USAGE and "over --max-cost $1e-06" in over.err
    unknown = repo.run("eval", "sentiment", "--model", "openai:house-model-7", "--max-cost", "1")
    assert unknown.code == ExitCode.USAGE and "no price is known" in unknown.err


def test_the_spent_line_gives_no_ratio_where_the_estimate_counts_only_some_prompts() -> None:
    from promptci.evals.estimate import spent_line

    whole = {"calls": 10, "prompt_tokens": 1000, "prompt_tokens_complete": True, "output_tokens_max": 40}
    assert "used 10 and 1,100 (+10.0%)" in (spent_line(whole, 10, 1100, 30) or "")
    partial = {**whole, "prompt_tokens_complete": False}
    line = spent_line(partial, 10, 1100, 30) or ""
    assert "%" not in line and "leaves out the prompts of turns and steps made as the run goes" in line
    assert spent_line(None, 0, 0, 0) is None

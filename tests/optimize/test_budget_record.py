"""What an optimization records as spent is what its server saw during the search, and never more
than ``--budget calls=N``, for every method: the record, the server's count and the docs agree."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from promptci.optimize import evaluate

from .test_false_pr import benchmark


@pytest.mark.parametrize("budget", [25, 40])
@pytest.mark.parametrize("method", ["gpo", "opro", "textgrad", "gepa", "demos"])
def test_the_record_is_the_search_the_server_saw(
    method: str, budget: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = benchmark()
    seen: list[str] = []
    answer = bench.answer

    def counted(body: dict[str, Any]) -> str:
        seen.append(body["model"])
        return str(answer(body))

    monkeypatch.setattr(bench, "answer", counted)
    held_out_from: list[int] = []  # the server's count when the held-out test began
    score = evaluate.Evaluator.score
    test_cases = 36  # 60 cases split 0.2/0.2/0.6: only the test split has 36

    def marked(self: evaluate.Evaluator, instruction: str, cases: list[Any], budget: Any = None) -> Any:
        if len(cases) == test_cases and not held_out_from:
            held_out_from.append(len(seen))
        return score(self, instruction, cases, budget)

    monkeypatch.setattr(evaluate.Evaluator, "score", marked)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "t")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "t@example.com")
    args = argparse.Namespace(cases=60, budget=budget, candidates=2, alpha=0.05)
    with bench.scripted_server() as url:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        result = bench.one_run(tmp_path, url, method, 0, args)
    recorded = sum(r.calls for r in result.outcome.rows)
    assert held_out_from, "the held-out test never ran"
    assert recorded == held_out_from[0] == result.outcome.usage.calls
    assert recorded <= budget

"""DSPy's GEPA on one task, run by ``benchmarks/vs_dspy_gepa.py`` in a separate environment
(``pip install dspy==3.4.1``): it reads the task as JSON on stdin and writes the answers, as JSON,
to the file the task names.

The program is ``dspy.Predict`` with one input (the case's question, as promptci's prompt
renders it) and one output, ``answer``; its instruction starts as the promptci prompt's system
message. GEPA runs with the task model as its reflection model too, within ``max_metric_calls``.
The metric gives 1 when the answer names the expected choice and no other one, and feedback in
the words promptci's gepa uses. The held-out answers of the initial and the optimized program go
back unscored: promptci scores both with the suite's own scorer.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import dspy


def mentioned(answer: str, choices: list[str]) -> set[str]:
    text = answer.casefold()
    return {c for c in choices if re.search(r"(?<!\w)" + re.escape(c.casefold()) + r"(?!\w)", text)}


def main() -> None:
    task: dict[str, Any] = json.load(sys.stdin)
    common = {"api_base": task["base_url"], "api_key": "unused", "temperature": 0.0, "cache": False, "num_retries": 2}

    def lm_of(max_tokens: int) -> dspy.LM:
        # DSPy's LM sends the limit as max_completion_tokens, which llm-katan does not read: without
        # max_tokens in the body too, every reply runs to the server's default of 512 tokens.
        extra = {"max_tokens": max_tokens}
        return dspy.LM(f"openai/{task['model']}", max_tokens=max_tokens, extra_body=extra, **common)

    lm = lm_of(task["max_tokens"])
    reflection = lm_of(task["reflection_max_tokens"])
    dspy.configure(lm=lm)
    signature = dspy.Signature("question -> answer", task["instruction"])
    program = dspy.Predict(signature)

    def examples(rows: list[dict[str, Any]]) -> list[dspy.Example]:
        return [
            dspy.Example(question=r["question"], expected=r["expected"], choices=r["choices"]).with_inputs("question")
            for r in rows
        ]

    def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        named = mentioned(str(getattr(pred, "answer", "") or ""), gold.choices)
        score = 1.0 if named == {gold.expected} else 0.0
        feedback = "correct." if score else f"wrong: the expected response is {gold.expected!r}."
        return dspy.Prediction(score=score, feedback=feedback)

    def answers(prog: Any, rows: list[dict[str, Any]]) -> list[str | None]:
        found: list[str | None] = []
        for r in rows:
            try:
                found.append(str(prog(question=r["question"]).answer))
            except Exception as exc:  # a reply the adapter cannot parse is a wrong answer, as in promptci
                found.append(None)
                print(f"unparsed: {type(exc).__name__}", file=sys.stderr)
        print(f"answered {len(rows)} held-out cases, {found.count(None)} unparsed", file=sys.stderr, flush=True)
        return found

    initial = answers(program, task["test"])
    before = len(lm.history)
    started = time.perf_counter()
    optimizer = dspy.GEPA(
        metric=metric,
        max_metric_calls=task["budget"],
        reflection_lm=reflection,
        reflection_minibatch_size=3,
        num_threads=task["threads"],
        seed=task["seed"],
        track_stats=False,
    )
    optimized = optimizer.compile(program, trainset=examples(task["train"]), valset=examples(task["dev"]))
    wall = time.perf_counter() - started
    search_calls = len(lm.history) - before
    after = answers(optimized, task["test"])
    found = json.dumps(
        {
            "initial_answers": initial,
            "optimized_answers": after,
            "instruction": optimized.signature.instructions,
            "task_calls": search_calls,
            "reflection_calls": len(reflection.history),
            "wall_s": wall,
            "unparsed": {"initial": initial.count(None), "optimized": after.count(None)},
        }
    )
    Path(task["out"]).write_text(found)  # not stdout: DSPy and GEPA print there too


if __name__ == "__main__":
    main()

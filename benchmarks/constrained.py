"""Constrained decoding on the embedded model: what it costs per token, and what it buys.

For each shipped tool example (``extract_address``, a JSON-schema response; ``route_request``,
three tools with ``tool_choice: required``) this renders every case as ``promptci eval`` does and
generates the replies on the local model twice in each round, under the grammar and without it
(``constrain: false``), alternating which goes first. It reports:

- **ms per generated token** and **ms per decoding step**, each way, and their ratios (the goal
  is at most 1.3×), the medians over ``--rounds``; the two run side by side in one process, on
  the same batches. Per token, a constrained batch pays for its rows that end early (a grammar
  that is complete ends its row, while free rows run on to ``max_tokens``): each step still runs
  the whole batch. Per step is the cost of the grammar itself, with its share of the time;
- **valid replies**: for the extraction, replies that parse and meet the schema; for the router,
  replies that make one call to a defined tool with arguments that meet its schema;
- the suite's **score** each way (the json scorer's fields; the tool-call scorer), the paired
  permutation test between them, and the best constant answer (the commonest expected answer,
  given to every case);
- whether greedy outputs are identical with the prefix cache on and off (under the grammar).

Usage: python benchmarks/constrained.py [--rounds 3] [--cases 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jsonschema  # noqa: E402
import numpy as np  # noqa: E402

from promptci.compare.stats import paired  # noqa: E402
from promptci.evals.plan import CaseFilter, build_plan, suite_files  # noqa: E402
from promptci.evals.scoring import make_scorer  # noqa: E402
from promptci.project import Project  # noqa: E402
from promptci.providers import models, replies  # noqa: E402
from promptci.providers.base import Completion, Request  # noqa: E402
from promptci.providers.constrained import GrammarMask  # noqa: E402
from promptci.providers.local import TransformersProvider  # noqa: E402
from promptci.settings import ModelSettings  # noqa: E402

EXAMPLES = ("extract_address", "route_request")


def planned(
    project: Project, name: str, cases: int, constrain: bool, max_tokens: int | None = None
) -> tuple[list[Request], Any]:
    """The suite's requests as ``promptci eval`` makes them, and its plan."""
    override = None if constrain else ModelSettings(max_tokens=max_tokens, params={"constrain": False})
    plan = build_plan(project, suite_files(project, (name,)), override=override, case_filter=CaseFilter(head=cases))
    return [item.request for item in plan.items if item.request is not None], plan


class Counted:
    """Counts the decoding steps of each batch (its longest reply, and the step that ended it)
    and the time spent in the grammar's logits processor."""

    def __init__(self, provider: TransformersProvider) -> None:
        self.steps = 0
        self.longest = 0  # the most steps one batch took
        self.grammar_seconds = 0.0
        generate_ids = provider.generate_ids

        def counted(*args: Any, **kwargs: Any) -> list[list[int]]:
            new = generate_ids(*args, **kwargs)
            steps = max(len(row) for row in new) + 1
            self.steps += steps
            self.longest = max(self.longest, steps)
            return new

        provider.generate_ids = counted  # type: ignore[method-assign]
        mask_call = GrammarMask.__call__

        def timed(mask: GrammarMask, ids: Any, scores: Any) -> Any:
            start = time.perf_counter()
            try:
                return mask_call(mask, ids, scores)
            finally:
                self.grammar_seconds += time.perf_counter() - start

        GrammarMask.__call__ = timed  # type: ignore[method-assign]


def run(provider: TransformersProvider, batch: list[Request], counted: Counted) -> dict[str, Any]:
    done: dict[int, Completion] = {}
    steps, grammar = counted.steps, counted.grammar_seconds
    counted.longest = 0
    start = time.perf_counter()
    provider.generate(batch, done.__setitem__, lambda: False)
    seconds = time.perf_counter() - start
    completions = [done[i] for i in range(len(batch))]
    return {
        "completions": completions,
        "seconds": seconds,
        "tokens": sum(c.tokens_out or 0 for c in completions),
        "steps": counted.steps - steps,
        "longest": counted.longest,
        "grammar_seconds": counted.grammar_seconds - grammar,
    }


def valid(request: Request, text: str) -> bool:
    """Whether ``text`` meets the request's response schema, or makes one call to one of its tools
    with arguments that meet that tool's schema."""
    pieces = json.loads(request.tools)
    if "response_format" in pieces:
        try:
            jsonschema.validate(json.loads(text), pieces["response_format"]["json_schema"]["schema"])
        except (ValueError, jsonschema.ValidationError):
            return False
        return True
    reply = replies.decode(text)
    if reply is None or len(reply.calls) != 1:
        return False
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in pieces["tools"]}
    arguments, _ = reply.calls[0].arguments()
    if reply.calls[0].name not in schemas or arguments is None:
        return False
    return not list(jsonschema.Draft202012Validator(schemas[reply.calls[0].name]).iter_errors(arguments))


def scores(project: Project, plan: Any, texts: list[str]) -> list[float]:
    scorer = make_scorer(plan.tasks[0], project)
    return [scorer.score(text, item.case)[1] for text, item in zip(texts, plan.items, strict=True)]


def constant(project: Project, plan: Any) -> float:
    """The best constant answer's score: the commonest expected answer given to every case."""
    expected = [json.dumps(item.case.expected, sort_keys=True) for item in plan.items]
    best = Counter(expected).most_common(1)[0][0]
    answer = json.loads(best)
    if isinstance(answer, dict) and "arguments" in answer:  # a call: made as the tool would store it
        answer = replies.encode(None, [replies.Call(answer["name"], json.dumps(answer["arguments"]))])
    text = answer if isinstance(answer, str) else json.dumps(answer)
    values = scores(project, plan, [text] * len(plan.items))
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    project = Project.discover(ROOT)
    source = models.resolve(None, ROOT)
    provider = TransformersProvider(source)
    uncached = TransformersProvider(source, prefix_cache_mb=None)
    counted = Counted(provider)
    table: dict[str, Any] = {}
    for name in EXAMPLES:
        ways: dict[str, dict[str, Any]] = {}
        for k in range(args.rounds):
            for constrain in (True, False) if k % 2 == 0 else (False, True):
                batch, plan = planned(project, name, args.cases, constrain)
                got = run(provider, batch, counted)
                way = ways.setdefault("constrained" if constrain else "free", {"per_token": [], "per_step": []})
                way["per_token"].append(1000 * got["seconds"] / max(got["tokens"], 1))
                texts = [c.text or "" for c in got["completions"]]
                per_case = scores(project, plan, texts)
                way.update(
                    valid=sum(valid(r, t) for r, t in zip(batch, texts, strict=True)),
                    score=round(sum(per_case) / len(per_case), 3),
                    per_case=per_case,
                    constant=round(constant(project, plan), 3),
                    texts=texts,
                    tokens=got["tokens"],
                    steps=got["steps"],
                    longest=got["longest"],
                    seconds=got["seconds"],
                    grammar_share=got["grammar_seconds"] / got["seconds"],
                )
            # Per step, at like work: free decoding stopped where the constrained run's longest batch did.
            on = ways["constrained"]
            on["per_step"].append(1000 * on["seconds"] / on["steps"])
            matched = run(provider, planned(project, name, args.cases, False, on["longest"] - 1)[0], counted)
            ways["free"]["per_step"].append(1000 * matched["seconds"] / max(matched["steps"], 1))
        batch, _ = planned(project, name, args.cases, True)
        off = run(uncached, batch, counted)["completions"]
        row: dict[str, Any] = {
            "cases": len(batch),
            "ms_per_token": {w: round(statistics.median(ways[w]["per_token"]), 2) for w in ways},
            "ms_per_step": {w: round(statistics.median(ways[w]["per_step"]), 2) for w in ways},
            "grammar_share": round(ways["constrained"]["grammar_share"], 4),
            "valid": {w: ways[w]["valid"] for w in ways},
            "score": {w: ways[w]["score"] for w in ways},
            "tokens": {w: ways[w]["tokens"] for w in ways},
            "same_without_prefix_cache": [c.text for c in off] == ways["constrained"]["texts"],
            "best_constant": ways["constrained"]["constant"],
        }
        free_scores, on_scores = (np.array(ways[w]["per_case"]) for w in ("free", "constrained"))
        row["p_constrained_vs_free"] = paired(
            free_scores, on_scores, free_scores >= 1, on_scores >= 1, binary=False
        ).p_value
        for unit in ("token", "step"):
            cost = row[f"ms_per_{unit}"]
            row[f"ratio_per_{unit}"] = round(cost["constrained"] / cost["free"], 3)
        table[name] = row
    header = f"{'suite':<17}{'cases':>6}  {'ms/token on/free':>17}{'ratio':>7}  {'ms/step on/free':>16}{'ratio':>7}"
    print(header + f"{'grammar':>9}  {'valid on/free':>13}  {'score on/free':>13}{'p':>7}{'constant':>9}  cache on=off")
    for name, row in table.items():
        t, p = row["ms_per_token"], row["ms_per_step"]
        print(
            f"{name:<17}{row['cases']:>6}  {t['constrained']:>8}/{t['free']:<8}{row['ratio_per_token']:>6}×"
            f"  {p['constrained']:>7}/{p['free']:<8}{row['ratio_per_step']:>6}×{row['grammar_share']:>8.1%}"
            f"  {row['valid']['constrained']:>6}/{row['valid']['free']:<6}"
            f"  {row['score']['constrained']:>6}/{row['score']['free']:<6}{row['p_constrained_vs_free']:>7.3f}"
            f"{row['best_constant']:>9}  {row['same_without_prefix_cache']}"
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()

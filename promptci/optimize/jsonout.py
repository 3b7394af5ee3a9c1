"""An optimization's outcome, and a CI pass's, as ``--format json`` prints them."""

from __future__ import annotations

from typing import Any

from .passes import PassEntry


def result_dict(result: Any) -> dict[str, Any]:
    outcome, r = result.outcome, result.stats.result
    return {
        "id": outcome.id,
        "status": outcome.status,
        "method": outcome.method,
        "prompt": outcome.prompt,
        "suite": outcome.suite,
        "initial": outcome.initial.text,
        "best": outcome.best.text,
        "test": {
            "n": r.n,
            "before": r.base_mean,
            "after": r.head_mean,
            "delta": r.delta,
            "ci": [r.ci_low, r.ci_high],
            "p_value": r.p_value,
            "test": r.test,
        },
        "calls": outcome.usage.calls,
        "tokens": outcome.usage.tokens,
        "cost": outcome.usage.cost,
        "wall_s": round(outcome.wall_s, 2),
        "branch": result.branch,
        "commit": result.commit,
        "reason": result.reason or None,
    }


def entry_dict(entry: PassEntry) -> dict[str, Any]:
    found = {**result_dict(entry.result), "why": entry.why}
    publication = entry.publication
    if publication is not None:
        pr = publication.pr
        found["publication"] = {
            "status": publication.status,
            "branch": publication.branch,
            "pushed": publication.pushed,
            "pr": pr.number if pr else None,
            "url": pr.url if pr else None,
            "reason": publication.reason or (pr.reason if pr else None),
        }
    return found

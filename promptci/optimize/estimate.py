"""What an optimization will cost before it runs: ``promptci optimize --estimate``.

The suite's cases are split as the run will split them; the seed prompt's requests are counted
by the same machinery as ``eval --estimate`` (the model's tokenizer, tiktoken, or 4 characters a
token) and priced the same way. One scoring of a candidate asks the task model each dev case
once; the held-out test asks each test case twice (the seed and the winner). The search is
bounded by a calls budget where one is given; without one, by its steps: each step scores up
to ``candidates`` candidates on dev. Candidates differ from the seed in their instruction or
demonstrations, so their requests are priced at the seed's tokens a call; the optimizer model's
own proposals are counted apart, as one call a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..evals.estimate import estimate_in
from ..evals.plan import build_plan
from ..project import Project
from ..providers import parse_model_option
from ..settings import ModelSettings
from . import methods
from .session import find_suite
from .settings import Settings
from .split import split_cases


@dataclass(frozen=True)
class OptimizeEstimate:
    cases: tuple[int, int, int]  # train, dev, test
    scoring: int  # task calls to score one candidate on dev
    search: int  # task calls the search may make
    bounded_by: str  # "--budget calls=N", or "N steps × C candidates"
    proposals: int  # the optimizer model's calls, one a candidate (none where a calls budget bounds the search)
    tokens_per_call: float
    output_per_call: int
    cost_per_call: float | None  # USD, at max_tokens
    tokens: str  # how the prompt tokens were counted

    @property
    def calls(self) -> int:
        return self.search + 2 * self.cases[2]

    @property
    def cost(self) -> float | None:
        return None if self.cost_per_call is None else self.cost_per_call * self.calls

    def line(self) -> str:
        train, dev, test = self.cases
        cost = "" if self.cost is None else f", at most ${self.cost:.4f}"
        return (
            f"estimate: at most {self.calls:,} task-model calls ({self.search:,} in the search, bounded by"
            f" {self.bounded_by}; {2 * test} on the held-out test), about {round(self.calls * self.tokens_per_call):,}"
            f" prompt tokens{cost}; one scoring on dev is {self.scoring} calls; split {train}/{dev}/{test}"
            + (f"; plus up to {self.proposals:,} optimizer proposals" if self.proposals else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": dict(zip(("train", "dev", "test"), self.cases, strict=True)),
            "calls": self.calls,
            "search_calls": self.search,
            "bounded_by": self.bounded_by,
            "test_calls": 2 * self.cases[2],
            "scoring_calls": self.scoring,
            "optimizer_calls": self.proposals,
            "prompt_tokens": round(self.calls * self.tokens_per_call),
            "output_tokens_max": self.calls * self.output_per_call,
            "cost_max": self.cost,
            "tokens_counted_by": self.tokens,
        }


def optimize_estimate(
    project: Project, name: str, suite: str, settings: Settings, task_model: str | None
) -> OptimizeEstimate:
    """The calls, tokens and price of optimizing ``name`` on ``suite`` with ``settings``."""
    override = ModelSettings(**parse_model_option(task_model)) if task_model else None  # type: ignore[arg-type]
    plan = build_plan(project, [find_suite(project, suite)], prompts=(name,), override=override)
    found = estimate_in(project, plan, use_cache=False)
    if not plan.tasks:
        raise InputError(f"suite '{suite}' does not use prompt '{name}'", hint="add it to the suite's prompts:")
    task = plan.tasks[0]
    split = split_cases(task.cases, settings.split, settings.seed)
    sizes = (len(split.train), len(split.dev), len(split.test))
    calls = max(1, found.calls)
    per_call = found.prompt_tokens / calls
    output = found.output_max // calls
    price = found.cost(at_most=True)
    budget = settings.budget.get("calls")
    steps = _steps(settings, sizes[0])
    if budget is not None:
        search, bounded, proposals = int(budget), f"--budget calls={int(budget)}", 0
    else:
        search = steps * settings.candidates * sizes[1]
        bounded = f"{steps} step(s) × {settings.candidates} candidates" + (
            " (auto's costliest choice, gpo+demos)" if settings.method == "auto" else ""
        )
        proposals = steps * settings.candidates
    how = ", ".join(sorted({t.tokens for t in found.tasks})) or "-"
    return OptimizeEstimate(sizes, sizes[1], search, bounded, proposals, per_call, output,
                            None if price is None else price / calls, how)  # fmt: skip


def _steps(settings: Settings, n_train: int) -> int:
    """The search's steps: ``--steps``, else each method's default (a chain's summed; auto's
    costliest choice, gpo+demos)."""
    if settings.steps > 0:
        return settings.steps
    names = ["gpo", "demos"] if settings.method == "auto" else settings.method.split("+")
    return max(1, sum(methods.get(n).default_steps(n_train) for n in names))

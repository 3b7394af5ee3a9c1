"""What a run will cost before it starts: ``promptci eval --estimate``.

Per suite × prompt: the new model calls (a case whose answer is in the response cache costs
none), the prompt tokens those calls send, the output tokens at most (``max_tokens`` each) and
at the median past runs of the same prompt produced, the price, and the time past runs of the
model took per call.

Tokens are counted by the model's own tokenizer where one is at hand without loading a model:
a local model's ``tokenizer.json`` and chat template (the ``tokenizers`` library, no torch), an
OpenAI-style model's tiktoken encoding. Elsewhere four characters make a token, and the estimate
says so. A price comes from the model's ``price:`` parameter, else LiteLLM's price table read as
a file; a local model costs nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from statistics import median
from typing import Any

from ..project import Project
from ..providers.base import Request
from ..providers.batch import batch_discount, batchable
from ..store import Store
from .plan import Plan, Task
from .suite import JudgeScorer

CHARS_PER_TOKEN = 4
PER_MESSAGE = 3  # OpenAI's chat format: tokens around each message, and 3 more to start the reply


@dataclass(frozen=True)
class Tokens:
    """How prompts are counted for one model: a counter, and how exactly it counts."""

    count: Callable[[Request], int]
    how: str  # "tokenizer.json and chat template", "tiktoken o200k_base", "≈ 4 characters a token"
    exact: bool


@dataclass
class TaskEstimate:
    suite: str
    prompt: str
    model_id: str
    calls: int  # new model calls
    cached: int  # answers the cache holds
    prompt_tokens: int  # sent by the new calls
    output_max: int  # max_tokens a call, every new call
    output_median: int | None  # the median past output of this prompt, a call (None: no past run)
    output_spread: tuple[int, int] | None  # the 10th and 90th percentile past output, a call
    tokens: str  # how the prompt tokens were counted
    exact: bool
    price: dict[str, float] | None = None  # USD per million tokens, input and output
    seconds_per_call: float | None = None  # from past runs of the model
    notes: list[str] = field(default_factory=list)
    stepwise: bool = False  # some requests are made as the run goes: their prompts are not counted

    @property
    def output_expected(self) -> int | None:
        return None if self.output_median is None else self.output_median * self.calls

    def cost(self, output_tokens: int | None) -> float | None:
        if self.price is None or output_tokens is None:
            return None
        return (self.prompt_tokens * self.price.get("input", 0) + output_tokens * self.price.get("output", 0)) / 1e6

    @property
    def seconds(self) -> float | None:
        return None if self.seconds_per_call is None else self.seconds_per_call * self.calls


@dataclass
class Estimate:
    tasks: list[TaskEstimate]

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.tasks)

    @property
    def prompt_tokens(self) -> int:
        return sum(t.prompt_tokens for t in self.tasks)

    @property
    def output_max(self) -> int:
        return sum(t.output_max for t in self.tasks)

    def cost(self, at_most: bool = True) -> float | None:
        """The price of the run, at every call's max_tokens (or at the median past output)."""
        found = [t.cost(t.output_max if at_most else t.output_expected) for t in self.tasks if t.calls]
        if any(c is None for c in found):  # a model with no known price: no total either
            return None
        return sum(c for c in found if c is not None)

    def output_spread(self) -> list[int] | None:
        """The output tokens of the run at its prompts' 10th and 90th percentile past answers."""
        spreads = [(t.output_spread, t.calls) for t in self.tasks if t.calls]
        if not spreads or any(s is None for s, _ in spreads):
            return None
        return [sum(s[0] * n for s, n in spreads if s), sum(s[1] * n for s, n in spreads if s)]

    def totals(self) -> dict[str, Any]:
        """What a run stores of its estimate, to set beside what it spent."""
        expected = [t.output_expected for t in self.tasks if t.calls]
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "prompt_tokens_exact": all(t.exact for t in self.tasks if t.calls),
            # False where some prompts are only made as the run goes (a conversation's turns, a pipeline's steps)
            "prompt_tokens_complete": not any(t.stepwise for t in self.tasks if t.calls),
            "output_tokens_max": self.output_max,
            "output_tokens_expected": None if any(e is None for e in expected) else sum(e or 0 for e in expected),
            "output_tokens_spread": self.output_spread(),
            "cost_max": self.cost(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.totals(),
            "suites": [
                {
                    "suite": t.suite,
                    "prompt": t.prompt,
                    "model": t.model_id,
                    "calls": t.calls,
                    "cached": t.cached,
                    "prompt_tokens": t.prompt_tokens,
                    "output_tokens_max": t.output_max,
                    "output_tokens_expected": t.output_expected,
                    "tokens_counted_by": t.tokens,
                    "exact": t.exact,
                    "cost_max": t.cost(t.output_max),
                    "cost_expected": t.cost(t.output_expected),
                    "seconds": t.seconds,
                    "notes": t.notes,
                }
                for t in self.tasks
            ],
        }


def estimate(
    project: Project, plan: Plan, store: Store | None, *, use_cache: bool = True, batch: bool = False
) -> Estimate:
    """The estimate of running ``plan`` (with ``batch``, its API models through their batch APIs):
    nothing is loaded but tokenizers, nothing is called."""
    keys = [i.key for i in plan.items if i.runnable and i.request is not None]
    hits = set(store.cache_get(keys)) if store is not None and use_cache and keys else set()
    found = []
    for task in plan.tasks:
        items = [i for i in plan.items if i.task is task and i.runnable]
        requests = [i.request for i in items if i.request is not None and i.key not in hits]
        cached = sum(1 for i in items if i.request is not None and i.key in hits)
        counter = tokens_for(task, project.root)
        calls, notes = len(requests), []
        stepwise = [i for i in items if i.request is None]  # requests made as the run goes
        if stepwise and task.conversation is not None:
            turns = max(len(i.case.turns) for i in stepwise)
            calls += turns * len(stepwise)
            notes.append(f"a conversation: up to {turns} turns a case, each turn's prompt holds the replies before it")
            if task.conversation.simulator is not None:
                calls += 2 * task.conversation.simulator.max_turns * len(stepwise)
                notes.append("a simulated user: its turns and the replies to them counted at their most")
        elif stepwise:
            steps = len(task.stages or ()) or 1
            calls += steps * len(stepwise)
            notes.append(f"a pipeline: {steps} step call(s) a case")
        if stepwise:
            notes.append("prompt tokens of requests made as the run goes are not counted")
        judged = sum(s.repeat for s in task.suite.scorers if isinstance(s, JudgeScorer)) * (
            len(requests) + len(stepwise)
        )
        if judged:
            notes.append(f"an llm-judge: {judged} grading call(s) besides, not priced here")
        price = _price(task)
        if price is not None and (batch or task.settings.batch) and batchable(task.settings):
            share = batch_discount(task.settings)
            price = {k: v * share for k, v in price.items()}
            notes.append(f"priced at the batch rate: {share:g} of the realtime price")
        max_tokens = int(task.settings.max_tokens or 0)
        past = _past(store, task, max_tokens)
        found.append(
            TaskEstimate(
                task.suite_name,
                task.prompt.name,
                task.model_id,
                calls,
                cached,
                sum(counter.count(r) for r in requests),
                max_tokens * calls,
                past[0],
                past[1],
                counter.how,
                counter.exact,
                price,
                past[2],
                notes,
                bool(stepwise),
            )
        )
    return Estimate(found)


def estimate_in(project: Project, plan: Plan, *, use_cache: bool = True, batch: bool = False) -> Estimate:
    """:func:`estimate` against the project's results database (its cache and past runs), where
    one exists."""
    db = project.path(project.config.db)
    if not db.is_file():
        return estimate(project, plan, None, use_cache=use_cache, batch=batch)
    with Store(db, read_only=True) as store:
        return estimate(project, plan, store, use_cache=use_cache, batch=batch)


def stored_estimate(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The estimate a run row stores (JSON); None where it has none, or a damaged one."""
    try:
        found = json.loads((row or {}).get("estimate") or "null")
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _past(store: Store | None, task: Task, max_tokens: int) -> tuple[int | None, tuple[int, int] | None, float | None]:
    """The median, and 10th and 90th percentiles, of the output tokens of this prompt's past answers
    (a call's, at most ``max_tokens``), and the seconds a new call on this model took in past runs."""
    if store is None:
        return None, None, None
    outputs, runs = store.past_usage(task.suite_name, task.prompt.name, task.model_id)
    if max_tokens:  # a conversation's row holds every turn's output
        outputs = [min(o, max_tokens) for o in outputs]
    calls = sum(n for _, n in runs)
    seconds = sum(s for s, _ in runs) / calls if calls else None
    if not outputs:
        return None, None, seconds
    ordered = sorted(outputs)
    spread = (ordered[int(0.1 * (len(ordered) - 1))], ordered[int(0.9 * (len(ordered) - 1))])
    return int(median(ordered)), spread, seconds


def _price(task: Task) -> dict[str, float] | None:
    provider = task.settings.provider or "transformers"
    if provider == "transformers":
        return {"input": 0.0, "output": 0.0}
    given = task.settings.params.get("price")
    if isinstance(given, dict):
        return {k: float(v) for k, v in given.items()}
    return litellm_price(str(task.settings.model))


def tokens_for(task: Task, root: Path) -> Tokens:
    """How this task's prompts are counted: its model's own tokenizer where one is at hand."""
    provider = task.settings.provider or "transformers"
    if provider == "transformers":
        folder = _local_dir(task.settings.model, root)
        if folder is not None and (folder / "tokenizer.json").is_file():
            return _local_tokens(folder)
    elif provider in ("openai", "litellm"):
        found = _tiktoken(str(task.settings.model))
        if found is not None:
            return found
    return Tokens(_approximate, f"≈ {CHARS_PER_TOKEN} characters a token (no tokenizer at hand)", False)


def _approximate(request: Request) -> int:
    text = request.turns or "".join(str(c) for _, c in request.messages)
    return max(1, (len(text) + len(request.tools)) // CHARS_PER_TOKEN) + PER_MESSAGE * (len(request.messages) + 1)


def _local_dir(model: str | None, root: Path) -> Path | None:
    """The folder with the local model's tokenizer: a converted GGUF's cache, or the model's own."""
    from ..providers.models import converted_dir, resolve

    source = resolve(model, root)
    if source.kind == "gguf":
        folder = converted_dir(Path(source.location))
        return folder if folder.is_dir() else None
    return Path(source.location) if source.kind == "dir" else None


@lru_cache(maxsize=8)
def _local_tokens(folder: Path) -> Tokens:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from tokenizers import Tokenizer

    from ..providers import structured

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config = (
        json.loads((folder / "tokenizer_config.json").read_text())
        if (folder / "tokenizer_config.json").is_file()
        else {}
    )
    source = folder / "chat_template.jinja"
    text = source.read_text() if source.is_file() else config.get("chat_template")
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda value, **_: json.dumps(value)
    template = env.from_string(text) if isinstance(text, str) else None
    source_text = text if isinstance(text, str) else ""
    specials = {k: config.get(k) or "" for k in ("bos_token", "eos_token")}

    def count(request: Request) -> int:
        chat, tools = request.chat, None
        if request.tools or request.turns:  # tools and earlier calls, as the local provider shows them
            chat, tools = structured.for_template(chat, structured.Shape.of(request.tools), source_text)
        if template is None:
            rendered = "\n\n".join(str(m.get("content", "")) for m in chat) + "\n"
        else:
            prefill = bool(chat) and chat[-1].get("role") == "assistant"
            rendered = template.render(messages=chat, tools=tools, add_generation_prompt=not prefill, **specials)
        return len(tokenizer.encode(rendered, add_special_tokens=False).ids)

    return Tokens(count, "the model's tokenizer and chat template", True)


def _tiktoken(model: str) -> Tokens | None:
    """tiktoken's encoding for ``model`` (o200k_base where it knows none), from the files LiteLLM
    ships where no cache is set: nothing is fetched."""
    try:
        import tiktoken
    except ImportError:
        return None
    bundled = _litellm_file("litellm_core_utils/tokenizers")
    if bundled is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))
    name = model.rsplit("/", 1)[-1]
    try:
        encoding = tiktoken.encoding_for_model(name)
    except KeyError:
        encoding = None
    for candidate in ([encoding] if encoding else []) + ["o200k_base", "cl100k_base"]:
        try:
            enc = tiktoken.get_encoding(candidate) if isinstance(candidate, str) else candidate
            enc.encode("probe")
        except Exception:  # a missing file: nothing may be fetched
            continue

        def count(request: Request, enc: Any = enc) -> int:
            body = sum(len(enc.encode(str(m.get("content") or ""))) for m in request.chat)
            return (
                body + PER_MESSAGE * (len(request.chat) + 1) + (len(enc.encode(request.tools)) if request.tools else 0)
            )

        return Tokens(count, f"tiktoken {enc.name}", True)
    return None


def _litellm_file(relative: str) -> Path | None:
    from importlib.util import find_spec

    spec = find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / relative
    return path if path.exists() else None


@lru_cache(maxsize=1)
def _litellm_prices() -> dict[str, Any]:
    path = _litellm_file("model_prices_and_context_window_backup.json")
    if path is None:
        return {}
    try:
        found: dict[str, Any] = json.loads(path.read_text())
        return found
    except (OSError, ValueError):
        return {}


def litellm_price(model: str) -> dict[str, float] | None:
    """USD per million tokens for ``model`` from LiteLLM's price table (None: not in it)."""
    table = _litellm_prices()
    entry = table.get(model) or table.get(model.rsplit("/", 1)[-1])
    if not isinstance(entry, dict) or "input_cost_per_token" not in entry:
        return None
    return {
        "input": float(entry.get("input_cost_per_token") or 0) * 1e6,
        "output": float(entry.get("output_cost_per_token") or 0) * 1e6,
    }


def over_limits(calls: int, cost: float | None, max_calls: int | None, max_cost: float | None) -> list[str]:
    """Why a run of ``calls`` model calls costing at most ``cost`` must not start: the limits
    ``--max-calls`` and ``--max-cost`` it would pass."""
    reasons = []
    if max_calls is not None and calls > max_calls:
        reasons.append(f"{calls} new model calls, over --max-calls {max_calls}")
    if max_cost is not None and cost is None:
        reasons.append("no price is known for a model in this run: set price: in its params to use --max-cost")
    elif max_cost is not None and cost is not None and cost > max_cost:
        reasons.append(f"up to ${cost:.4f}, over --max-cost ${max_cost:g}")
    return reasons


def summary_line(found: Estimate) -> str:
    """One line, printed before every eval: calls, tokens and the price at most."""
    cost = found.cost()
    price = "" if cost is None or cost == 0 else f", up to ${cost:.4f}"
    cached = sum(t.cached for t in found.tasks)
    approximate = "" if all(t.exact for t in found.tasks if t.calls) else " (≈)"
    return (
        f"estimate: {found.calls} new model call(s), {cached} cached; {found.prompt_tokens:,} prompt tokens"
        f"{approximate}, at most {found.output_max:,} output tokens{price}"
    )


def spent_line(estimate: dict[str, Any] | None, used_calls: int, tokens_in: int, tokens_out: int) -> str | None:
    """``estimated 40 calls and 9,905 prompt tokens; used 40 and 9,905 (+0.0%)``."""
    if not estimate or not estimate.get("calls"):
        return None
    wanted = estimate["prompt_tokens"]
    off = f" ({(tokens_in - wanted) / wanted:+.1%})" if wanted else ""
    if not estimate.get("prompt_tokens_complete", True):
        off = " (the estimate leaves out the prompts of turns and steps made as the run goes)"
    expected = estimate.get("output_tokens_expected")
    outputs = f"; output tokens {tokens_out:,}" + (f", {expected:,} expected" if expected is not None else "")
    return (
        f"estimated {estimate['calls']} call(s) and {wanted:,} prompt tokens;"
        f" used {used_calls} and {tokens_in:,}{off}{outputs}, at most {estimate['output_tokens_max']:,}"
    )


def run_spend(store: Store, run_id: str) -> str | None:
    """``spent_line`` for a stored run, from its stored estimate and its new calls' tokens."""
    found = stored_estimate(store.run_row(run_id))
    if found is None:
        return None
    totals = store.run_totals(run_id)
    calls = sum(int(t["new_calls"] or 0) for t in totals)
    tokens_in = sum(int(t["new_tokens_in"] or 0) for t in totals)
    tokens_out = sum(int(t["new_tokens_out"] or 0) for t in totals)
    line = spent_line(found, calls, tokens_in, tokens_out)
    cost = sum(float(t["new_cost"] or 0) for t in totals)
    if line and found.get("cost_max") is not None:
        line += f"; cost ${cost:.4f} of at most ${found['cost_max']:.4f}"
    return line

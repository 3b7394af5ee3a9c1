"""Few-shot demonstrations as an optimizer, that a constant answer cannot fool.

A candidate is a set of ``k`` demonstrations drawn from the **train split only**. Each is a
train case rendered through the prompt's own template (the user turn) and an answer (the
assistant turn): the gold answer, or, with ``bootstrapped``, the task model's own answer
where it scored full marks, which keeps the model's style. They go into the prompt as
literal user/assistant message pairs before the final user turn, so the diff shows them.

For choice suites the sets are balanced across answers (one label, or one option position,
per demonstration in turn) and shuffled, because majority-label and recency bias are the
known failure of few-shot prompts (Zhao et al. 2021, "Calibrate Before Use"). The first
part of the search draws random sets; the rest swaps one demonstration of the best set at
a time. Every set is scored on dev like any candidate; a set whose answers collapse onto
one value is recorded as ``collapsed``, and none wins without beating the best constant
answer on dev (the engine's rule for every method).

Beside fixed sets, the first step proposes **choosing per case**: an ``examples:`` block that
shows each question the ``k`` train cases nearest it (BM25; :mod:`promptci.prompts.examples`),
with the train cases written to ``<prompt>.examples.jsonl`` beside the prompt file. It is scored
on dev like any set and kept only where it wins there; its branch adds the pool file.

To chain: ``--method gpo+demos`` runs the instruction search first, then this on its choice.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from pydantic import Field

from ...errors import InputError
from ...evals.baseline import expected_text
from ...evals.dataset import EvalCase
from ...evals.suite import ChoiceScorer
from ...store import TrajectoryRow
from ..context import Context, question
from ..engine import Method, best_by, score_candidate, score_on, scored_by_hash
from ..instruction import insert_messages, literal
from ..settings import Options
from ..trajectory import new_row
from . import register


class DemosConfig(Options):
    k: int = Field(3, ge=1, le=32, description="demonstrations per candidate set")
    bootstrapped: bool = Field(
        True, description="use the task model's own answer where it scored full marks, instead of the gold one"
    )
    balanced: bool = Field(True, description="for choice suites, spread each set across the answers")
    explore: float = Field(0.5, ge=0, le=1, description="the share of steps that draw random sets before swaps")


@dataclass(frozen=True)
class Demo:
    case: str  # the train case's id
    user: str
    assistant: str
    label: str  # what a balanced set spreads across: the answer, or the gold option's position


@register
class Demos(Method[DemosConfig]):
    name = "demos"
    description = "k few-shot demonstrations from the train split, balanced across answers: random sets, then swaps"
    Config = DemosConfig
    scored_on = "dev"
    tags = ("", "")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        k, n = self.config.k, len(ctx.split.train)
        if k > n:
            raise InputError(
                f"demos.k = {k} needs {k} train cases, and the train split has {n} of {len(ctx.evaluator.task.cases)}",
                hint="lower demos.k, or give train a larger share with --split",
            )
        self.before = _final_user_turn(ctx)
        ctx.evaluator.composer = self.compose
        prompt = ctx.evaluator.prompt
        self.pool_path = str(Path(prompt.path).with_suffix("")) + ".examples.jsonl"
        if prompt.spec.examples is None:  # a prompt that chooses per case already is left as it is
            ctx.evaluator.files[self.pool_path] = self.pool_file().encode()

    @classmethod
    def default_steps(cls, n_train: int) -> int:
        return 10

    def per_step(self) -> str:
        return f"{self.ctx.settings.candidates} sets of {self.config.k} demonstrations per step"

    def initial_text(self) -> str:
        return "[]"

    def score_initial(self, row: TrajectoryRow) -> TrajectoryRow:
        row, _ = score_on(self.ctx, row, "dev")
        return row

    def compose(self, text: str) -> str:
        """The prompt file with the set's demonstrations before its final user turn; or, for the
        per-case candidate, with an ``examples:`` block that chooses them."""
        task = self.ctx.evaluator.task
        if text.startswith("{"):
            chosen = json.loads(text)
            block = {"from": self.pool_path, "answer": ANSWER, "k": chosen["k"], "select": chosen["select"]}
            return task.prompt.source.rstrip("\n") + "\nexamples: " + json.dumps(block) + "\n"
        pairs = []
        for demo in json.loads(text or "[]"):
            pairs += [("user", literal(demo["user"])), ("assistant", literal(demo["assistant"]))]
        return insert_messages(task.prompt.source, task.prompt.path, self.before, pairs)

    def pool_file(self) -> str:
        """The train cases as an example pool: each case's variables and its gold answer."""
        train = self.ctx.split.train
        return "".join(json.dumps({**c.vars, ANSWER: expected_text(c)}, ensure_ascii=False) + "\n" for c in train)

    def files(self, text: str) -> list[tuple[str, str, str]]:
        if not text.startswith("{"):
            return []
        prompt = self.ctx.evaluator.prompt
        after = self.compose(text)
        return [(prompt.path, prompt.source, after), (self.pool_path, "", self.pool_file())]

    @cached_property
    def pool(self) -> list[Demo]:
        """One demonstration per train case: the model's own correct answer, else the gold one."""
        train = self.ctx.split.train
        own: dict[str, str] = {}
        if self.config.bootstrapped:
            scored = self.ctx.score("[]", train)
            threshold = self.ctx.evaluator.task.suite.case_threshold
            own = {i: out for i, out in scored.outputs.items() if scored.per_case.get(i, 0.0) >= threshold and out}
        task = self.ctx.evaluator.task
        return [Demo(c.id, question(task, c), own.get(c.id, expected_text(c)), self._label(c)) for c in train]

    def _label(self, case: EvalCase) -> str:
        if not self.config.balanced:
            return ""
        for spec in self.ctx.evaluator.task.suite.scorers:
            if isinstance(spec, ChoiceScorer):
                if spec.choices is not None:
                    return expected_text(case).casefold()
                options = case.data.get(spec.choices_from or "")
                if isinstance(options, list) and case.expected in options:
                    return f"option {options.index(case.expected) + 1}"
        return ""

    def draw(self, rng: random.Random) -> list[Demo]:
        """A random set of k, spread across labels in turn (a random label order), shuffled."""
        groups: dict[str, list[Demo]] = defaultdict(list)
        for demo in self.pool:
            groups[demo.label].append(demo)
        for members in groups.values():
            rng.shuffle(members)
        labels = sorted(groups)
        rng.shuffle(labels)
        chosen: list[Demo] = []
        while len(chosen) < self.config.k:
            for label in labels:
                if groups[label] and len(chosen) < self.config.k:
                    chosen.append(groups[label].pop())
        rng.shuffle(chosen)
        return chosen

    def swap(self, demos: list[Demo], rng: random.Random) -> list[Demo]:
        """``demos`` with one replaced by another train demonstration of the same label, where one is left."""
        i = rng.randrange(len(demos))
        used = {d.case for d in demos}
        spare = [d for d in self.pool if d.case not in used]
        same = [d for d in spare if d.label == demos[i].label]
        if not (same or spare):
            return demos
        out = list(demos)
        out[i] = rng.choice(same or spare)
        return out

    def candidates(self, step: int) -> list[TrajectoryRow]:
        ctx = self.ctx
        rng = random.Random(ctx.settings.seed * 1_000_003 + step)
        best = best_by(ctx.scored_rows(), lambda r: (r.dev_score or 0.0, -r.step, -r.candidate))
        exploring = step <= max(1, round(self.steps() * self.config.explore)) or best.text == "[]"
        parent = None if exploring else best
        if parent is not None and not parent.text.startswith("["):  # the per-case candidate: draw fresh sets
            parent = None
        seen = scored_by_hash(ctx)
        rows: list[TrajectoryRow] = []
        for index in range(ctx.settings.candidates):
            if step == 1 and index == 0 and ctx.evaluator.files:  # choosing per case, beside the fixed sets
                text = json.dumps({"select": "similar", "k": self.config.k})
            else:
                text = _dumps(self.draw(rng) if parent is None else self.swap(self.read(parent.text), rng))
            row = new_row(ctx.id, step, index, parent, text, "new")
            if row.text_hash in seen:
                earlier = seen[row.text_hash]
                row = new_row(ctx.id, step, index, parent, row.text, "duplicate", dev_score=earlier.dev_score)
            elif ctx.spent() or not ctx.affords(len(ctx.split.dev)):  # never score a candidate in part
                row = new_row(ctx.id, step, index, parent, row.text, "budget")
            else:
                row = score_candidate(ctx, self, row)
                if row.status == "scored":
                    seen[row.text_hash] = row
            rows.append(row)
        return rows

    def describe(self, text: str) -> str:
        """``[True] Take 4 steps. Turn around. … · [False] …``: each answer and its case, past the
        wording every train case shares."""
        demos = json.loads(text or "[]")
        if isinstance(demos, dict):
            return f"the {demos['k']} train cases nearest each question, chosen per case (BM25)"
        if not demos:
            return "no demonstrations"
        prefix = _shared_start([d.user for d in self.pool])
        return " · ".join(f"[{d['assistant']}] {d['user'][len(prefix) :].strip()}" for d in demos)

    def read(self, text: str) -> list[Demo]:
        by_case = {d.case: d for d in self.pool}
        return [by_case[d["case"]] for d in json.loads(text) if d["case"] in by_case]

    def choose(self, step: int, rows: list[TrajectoryRow]) -> list[TrajectoryRow]:
        scored = [r for r in rows if r.status == "scored" and r.dev_score is not None]
        earlier = [r for r in self.ctx.scored_rows() if r.dev_score is not None]
        top = max((r.dev_score or 0.0 for r in earlier), default=0.0)
        if not scored:
            return rows
        pick = best_by(scored, lambda r: (r.dev_score or 0.0, -r.candidate))
        if (pick.dev_score or 0.0) <= top:
            return rows
        return [replace(r, accepted=True) if r is pick else r for r in rows]

    def final(self) -> TrajectoryRow:
        scored = [r for r in self.ctx.scored_rows() if r.dev_score is not None]
        # ties go to the fewer demonstrations (none, first), then the earlier set
        return best_by(scored, lambda r: (r.dev_score or 0.0, -(r.loss or 0.0), -_size(r.text), -r.step, -r.candidate))


ANSWER = "answer"  # the pool file's answer column


def _size(text: str) -> int:
    """Demonstrations a candidate shows: a fixed set's count; per case, its k."""
    found = json.loads(text or "[]")
    return int(found["k"]) if isinstance(found, dict) else len(found)


def _final_user_turn(ctx: Context) -> int:
    spec = ctx.evaluator.prompt.spec
    messages = spec.messages or []
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if spec.template is not None or not users:
        raise InputError(
            f"prompt '{spec.name}' has no user message to put demonstrations before",
            path=ctx.evaluator.task.prompt.path,
            hint="demonstrations are message pairs: give the prompt a messages: list",
        )
    return users[-1]


def _shared_start(texts: list[str]) -> str:
    """The wording every text starts with, up to the last line break in it."""
    if len(texts) < 2:
        return ""
    first, last = min(texts), max(texts)
    n = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[: first.rfind("\n", 0, n) + 1]


def _dumps(demos: list[Demo]) -> str:
    return json.dumps(
        [{"case": d.case, "user": d.user, "assistant": d.assistant} for d in demos], ensure_ascii=False, indent=1
    )

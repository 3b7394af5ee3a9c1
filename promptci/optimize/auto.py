"""``--method auto``: measure which lever the model responds to, then pull that one.

An instruction method (GPO, OPRO, GEPA, TextGrad) can only help where the model's answers
change when its instruction does; demonstrations only where they change when examples are
added. A small model may follow demonstrations and barely read instructions, and a search
that cannot move the model spends its whole budget for nothing. So ``auto`` first probes a
slice of dev, within a tenth of the budget:

- two rewrites of the instruction (a format line added; a plain generic instruction instead);
- two seeded sets of demonstrations from train, added before the final user turn;

and counts, for each lever, the probed answers that differ from the initial prompt's, and the
cases whose score changed. A lever *moves* the model when at least :data:`MOVED_SHARE` of its
answers (and two or more) change and at least one case's score changes with them: a weak model
that writes a different wrong answer for every rewording is not moved toward anything.
Then it runs ``demos``, ``gpo``, or the chain ``gpo+demos``, or nothing, saying why in one line.
The probe's answers are real evaluations: the initial prompt's come from the cache afterwards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from ..errors import ExitCode, InputError, PromptciError
from ..evals.dataset import EvalCase
from ..evals.plan import Task
from ..project import Project
from ..settings import ModelSettings
from . import methods
from .context import Context, Reporter
from .evaluate import Evaluator, Scored
from .settings import Settings
from .split import Split, split_cases

MOVED_SHARE = 0.2  # of the probed answers, that must change for a lever to count as moving the model
PROBE_SHARE = 0.1  # of a call budget, at most, that the probe spends
PROBE_CASES = 12  # dev cases probed when no call budget bounds it
FORMAT_LINE = "Reply with the answer alone."
PLAIN = "Answer the question."
INSTRUCTION_METHOD = "gpo"


@dataclass(frozen=True)
class Probe:
    """What the probe saw: per lever, answers changed of answers compared; and what it chose."""

    cases: int
    instruction: tuple[int, int, int]  # answers changed, scores changed, answers compared
    demos: tuple[int, int, int]
    calls: int
    pick: str | None
    embedded_optimizer: bool = False

    @staticmethod
    def moved(changed: tuple[int, int, int]) -> bool:
        return changed[0] >= 2 and changed[0] >= MOVED_SHARE * changed[2] and changed[1] >= 1

    def line(self) -> str:
        """``instruction variants changed 0 of 24 dev answers; demonstrations changed 17 of 24: demos``."""
        i, d = self.instruction, self.demos
        said = (
            f"instruction variants changed {i[0]} of {i[2]} dev answers ({i[1]} scores);"
            f" demonstrations changed {d[0]} of {d[2]} ({d[1]} scores)"
        )
        return f"{said} ({self.calls} calls): " + (
            f"running {self.pick}" if self.pick else "neither moves the model, so nothing is optimized"
        )

    def table(self) -> list[str]:
        lines = [
            f"Probe on {self.cases} dev cases, {self.calls} calls:",
            "",
            "| lever | answers changed | scores changed | moves the model |",
            "|---|---|---|---|",
        ]
        for lever, seen in (("instruction variants", self.instruction), ("demonstrations", self.demos)):
            moved = "yes" if self.moved(seen) else "no"
            lines.append(f"| {lever} | {seen[0]} of {seen[2]} | {seen[1]} | {moved} |")
        lines += ["", f"Chosen: **{self.pick or 'nothing'}**."]
        if self.embedded_optimizer and self.pick and INSTRUCTION_METHOD not in self.pick:
            lines += [
                "",
                "The optimizer model is the embedded one, which rarely writes an instruction that helps; to try the"
                " instruction methods anyway, point `--optimizer-model` at a stronger model.",
            ]
        return lines


class Unmoved(PromptciError):
    """``auto`` found no lever that moves the model: nothing is optimized, and that is no error."""

    exit_code = ExitCode.OK

    def __init__(self, probe: Probe) -> None:
        super().__init__(f"auto: {probe.line()}")
        self.probe = probe


def choose(
    project: Project, task: Task, settings: Settings, optimizer: ModelSettings, reporter: Reporter | None = None
) -> Probe:
    """Probe ``task`` on a slice of dev and pick the method (or chain) to run, or none."""
    split = split_cases(task.cases, settings.split, settings.seed)
    calls_budget = settings.budget.get("calls")
    n = PROBE_CASES if calls_budget is None else int(calls_budget * PROBE_SHARE) // 5  # 5 prompts on the slice
    if n < 2:
        least = int(2 * 5 / PROBE_SHARE)
        raise InputError(
            f"auto probes with at least 10 calls, more than {PROBE_SHARE:.0%} of a budget of {calls_budget:g} calls",
            hint=f"give a budget of at least {least} calls, or name a method",
        )
    cases = split.dev[: max(2, min(n, len(split.dev)))]
    if reporter:
        reporter.phase(f"auto: probing {len(cases)} dev cases with instruction variants and demonstrations")
    evaluator = Evaluator(project, task, settings.position, db=project.path(project.config.db))
    initial = evaluator.score(evaluator.initial, cases)
    spent = initial.calls
    instruction = (0, 0, 0)
    for text in (f"{evaluator.initial.rstrip()} {FORMAT_LINE}", PLAIN):
        scored = evaluator.score(text, cases)
        spent += scored.calls
        instruction = _add(instruction, _changed(initial, scored, cases))
    demos = (0, 0, 0)
    for text, composed in _demo_sets(project, task, settings, optimizer, split):
        scored = composed.score(text, cases)  # through the demos composer: the set goes into the prompt
        spent += scored.calls
        demos = _add(demos, _changed(initial, scored, cases))
    moved = [INSTRUCTION_METHOD] if Probe.moved(instruction) else []
    moved += ["demos"] if Probe.moved(demos) else []
    embedded = (optimizer.provider or "transformers") == "transformers" and not optimizer.model
    return Probe(len(cases), instruction, demos, spent, "+".join(moved) or None, embedded)


def _demo_sets(
    project: Project, task: Task, settings: Settings, optimizer: ModelSettings, split: Split
) -> list[tuple[str, Evaluator]]:
    """Two seeded sets of demonstrations, drawn as the demos method draws them (gold answers)."""
    from .methods.demos import Demos, _dumps

    config = methods.configure("demos", {"bootstrapped": False, "k": min(3, len(split.train))})
    evaluator = Evaluator(project, task, settings.position, db=project.path(project.config.db))
    probe_settings = replace(settings, method="demos", config=config)
    ctx = Context("probe", project, probe_settings, evaluator, split, optimizer, project.path(project.config.db), "")
    demos = Demos(ctx)
    rng = random.Random(settings.seed * 1_000_003)
    return [(_dumps(demos.draw(rng)), evaluator) for _ in range(2)]


def _changed(initial: Scored, other: Scored, cases: list[EvalCase]) -> tuple[int, int, int]:
    """Answers that differ from the initial prompt's, cases whose score differs, and cases both answered."""
    both = [c.id for c in cases if c.id in initial.answers and c.id in other.answers]
    answers = sum(initial.answers[i] != other.answers[i] for i in both)
    scores = sum(initial.per_case.get(i) != other.per_case.get(i) for i in both)
    return answers, scores, len(both)


def _add(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]

"""What an eval run will do: suites × prompts × cases × repeats, each rendered and keyed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import validation_error
from ..conversations.run import CONVERSATION, Dialogue, Setup, Simulator, turn_variables
from ..errors import InputError, NotFoundError, PromptciError
from ..files import read_text
from ..patterns import compile_user
from ..pipelines.execute import Stage, prompt_request
from ..pipelines.load import Pipeline, Subjects
from ..pipelines.spec import Step
from ..project import Project
from ..prompts.images import has_images, stored
from ..prompts.prompt import Prompt
from ..prompts.registry import Ref
from ..providers import identity
from ..providers.base import GenParams, Request, cache_key
from ..settings import ModelSettings, image_refusal, loglik_refusal
from ..yamlio import canonical_json, parse_yaml
from .dataset import EvalCase, load_cases
from .suite import ChoiceScorer, Conversation, Suite

DEFAULT_MAX_TOKENS = 64


@dataclass(frozen=True)
class CaseFilter:
    """Which cases run: a regex over case names and ids, one shard of N, then a seeded random
    sample of N (the same N cases on every machine and at every commit, so that two sampled runs
    compare) or the first N."""

    pattern: str | None = None
    sample: int | None = None
    shard: tuple[int, int] | None = None  # (i, n), 1-based
    head: int | None = None
    seed: int = 0

    @property
    def narrows(self) -> bool:
        return bool(self.pattern or self.sample or self.shard or self.head)

    def describe(self) -> str:
        """The filter as eval's flags write it, for messages."""
        parts = [f"--filter {self.pattern!r}"] if self.pattern else []
        parts += [f"--shard {self.shard[0]}/{self.shard[1]}"] if self.shard else []
        parts += [f"--sample {self.sample}"] if self.sample else []
        parts += [f"--head {self.head}"] if self.head else []
        return " ".join(parts)

    def apply(self, cases: list[EvalCase]) -> list[EvalCase]:
        if self.pattern:
            try:
                regex = compile_user(self.pattern)
            except ValueError as exc:
                raise InputError(f"--filter {self.pattern!r}: {exc}") from None
            cases = [c for c in cases if regex.search(c.name) or regex.search(c.id)]
        if self.shard:
            i, n = self.shard
            # By case id, so every machine of a CI matrix agrees without talking to the others.
            cases = [c for c in cases if int(c.id, 16) % n == i - 1]
        if self.sample and self.sample < len(cases):
            # by case id, not position: adding a case elsewhere in the suite does not reshuffle the sample
            import random

            chosen = set(random.Random(self.seed).sample(sorted(c.id for c in cases), self.sample))
            cases = [c for c in cases if c.id in chosen]
        return cases[: self.head] if self.head else cases


@dataclass
class Task:
    """One suite run against one prompt (or pipeline) version and one model.

    A pipeline task has one stage per step; its ``model_id`` names every step's model
    and its ``params`` cover every step's, so that any change to them is a new identity.
    """

    suite_name: str
    suite_path: Path
    suite: Suite
    suite_hash: str
    prompt: Prompt | Pipeline
    settings: ModelSettings
    model_id: str
    params: GenParams
    cases: list[EvalCase]
    repeat: int
    stages: tuple[Stage, ...] = ()
    conversation: Setup | None = None  # set when the cases run as conversations

    @property
    def label(self) -> str:
        return f"{self.suite_name} × {self.prompt.name}"


@dataclass
class Item:
    """One generation to run (or to find in the cache)."""

    task: Task
    case: EvalCase
    repeat: int
    request: Request | None  # None for a pipeline's case, whose requests are made step by step
    key: str
    rendered: str
    error: str | None = None  # set when the prompt could not be rendered for this case

    @property
    def runnable(self) -> bool:
        return self.error is None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)


def suite_files(project: Project, paths: tuple[str, ...] = ()) -> list[Path]:
    """The suite files named (a path, or a suite's name under the evals directory), else all of them."""
    if paths:
        return [_suite_file(project, p) for p in paths]
    root = project.evals_dir
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def by_default(project: Project, paths: list[Path]) -> tuple[list[Path], list[str]]:
    """``paths`` less the suites marked ``default: false``, and the names of those left out."""
    kept: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        (kept if read_suite(project, path)[0].default else skipped).append(path)
    return kept, [p.stem for p in skipped]


def _suite_file(project: Project, given: str) -> Path:
    for path in (project.root / given, Path(given)):  # from the project's root first: a side's worktree
        if path.is_file():
            return project.path(path.resolve())
    for suffix in (".yaml", ".yml"):
        named = project.evals_dir / f"{given}{suffix}"
        if named.is_file():
            return project.path(named)
    known = sorted(p.stem for p in suite_files(project))
    raise NotFoundError(
        f"no suite '{given}': not a file, nor a suite under {project.rel(project.evals_dir)}/",
        hint=f"suites: {', '.join(known[:12])}{' …' if len(known) > 12 else ''}" if known else None,
    )


def suite_name(project: Project, path: Path) -> str:
    """A suite's name: its path under the evals directory, without the extension."""
    return project.rel(path).removeprefix(project.config.evals_dir.rstrip("/") + "/").rsplit(".", 1)[0]


def thresholds(project: Project) -> dict[str, float]:
    """Each readable suite's threshold by name (a suite that does not load is left out)."""
    found = {}
    for path in suite_files(project):
        try:
            suite, _ = read_suite(project, path)
        except InputError:
            continue
        found[suite_name(project, path)] = suite.threshold
    return found


def read_suite(project: Project, path: Path) -> tuple[Suite, str]:
    """A validated suite and the hash of its content (cases aside, scorers and settings count)."""
    rel = project.rel(path)
    doc = parse_yaml(read_text(project.path(path), rel, what="suite"), rel)
    if not isinstance(doc.data, dict):
        raise InputError("a suite file must be a mapping", path=rel, line=1, col=1)
    try:
        suite = Suite.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(exc, doc) from None
    scoring = {k: v for k, v in doc.data.items() if k in ("scorers", "threshold", "case_threshold", "aggregate", "k")}
    return suite, hashlib.sha256(canonical_json(scoring).encode()).hexdigest()[:16]


def build_plan(
    project: Project,
    suite_paths: list[Path],
    *,
    prompts: tuple[str, ...] = (),
    repeat: int | None = None,
    override: ModelSettings | None = None,
    case_filter: CaseFilter = CaseFilter(),
) -> Plan:
    """Resolve every suite's prompts (and pipelines), cases and model; render every case."""
    subjects = Subjects(project)
    plan = Plan()
    for path in suite_paths:
        suite, suite_hash = read_suite(project, path)
        cases = case_filter.apply(load_cases(project, path, suite))
        name = suite_name(project, path)
        for raw in suite.prompts:
            ref = Ref.parse(raw)
            if prompts and ref.name not in prompts:
                continue
            subject = subjects.resolve(ref)
            if isinstance(subject, Pipeline):
                if suite.converses:
                    message = f"a conversation runs one prompt, and '{subject.name}' is a pipeline"
                    raise _at(project, path, ("conversation",), message, "name a prompt in this suite")
                task = pipeline_task(project, name, path, suite, suite_hash, subject, override)
            else:
                settings = project.config.model.merged(subject.spec.model).merged(suite.model).merged(override)
                check_likelihood(project, suite, settings, path)
                model_id, params = identity(settings, project.root), gen_params(settings)
                task = Task(name, path, suite, suite_hash, subject, settings, model_id, params, [], 1)
                if suite.converses:
                    task.conversation = conversation_setup(project, path, suite, task, subjects)
            task.cases, task.repeat = cases, repeat or suite.repeat
            plan.tasks.append(task)
            plan.items += [make_item(task, case, r) for case in cases for r in range(task.repeat)]
    return plan


def pipeline_task(
    project: Project,
    name: str,
    path: Path,
    suite: Suite,
    suite_hash: str,
    pipeline: Pipeline,
    override: ModelSettings | None,
) -> Task:
    """A suite's task for a pipeline, one stage per step (see :func:`pipeline_stages`)."""
    scorer = likelihood_scorer(suite)
    if scorer is not None:
        message = f"mode: loglik ranks a prompt's choices, and '{pipeline.name}' is a pipeline"
        raise _at_mode(project, path, suite, scorer, message, "score a pipeline's parsed output with mode: generate")
    stages = pipeline_stages(project, pipeline, suite.model, override)
    output = stages[pipeline.spec.index(pipeline.spec.output) or 0]
    model_id = " + ".join(dict.fromkeys(s.model_id for s in stages))
    params = GenParams(extra=(("steps", tuple((s.step.id, s.params.digest()) for s in stages)),))
    return Task(name, path, suite, suite_hash, pipeline, output.settings, model_id, params, [], 1, tuple(stages))


def pipeline_stages(
    project: Project, pipeline: Pipeline, suite_model: ModelSettings | None, override: ModelSettings | None
) -> tuple[Stage, ...]:
    """Each step's prompt and model: the project's model, then the step prompt's, the suite's,
    the step's own ``model:`` and the command line's, each over the last."""
    stages = []
    for step, prompt in zip(pipeline.spec.steps, pipeline.prompts, strict=True):
        settings = project.config.model.merged(prompt.spec.model).merged(suite_model).merged(step.model)
        settings = settings.merged(override)
        stages.append(Stage(step, prompt, settings, identity(settings, project.root), gen_params(settings)))
    return tuple(stages)


def gen_params(settings: ModelSettings) -> GenParams:
    provider_only = {
        "base_url",
        "api_key_env",
        "concurrency",
        "max_retries",
        "timeout",
        "backoff",
        "max_backoff",
        "price",
        "batch_discount",
        "device",
        "dtype",
        "batch_size",
        "tensor_parallel_size",
        "gpu_memory_utilization",
        "prefix_cache",
        "prefix_cache_mb",
        "threads",
    }
    extra = tuple(sorted((k, v) for k, v in settings.params.items() if k not in provider_only))
    return GenParams(
        max_tokens=settings.max_tokens or DEFAULT_MAX_TOKENS,
        temperature=settings.temperature or 0.0,
        top_p=settings.top_p,
        seed=settings.seed,
        stop=tuple(settings.stop or ()),
        extra=extra,
    )


def likelihood_scorer(suite: Suite) -> ChoiceScorer | None:
    """The suite's choice scorer that ranks choices by likelihood, if it has one."""
    return next((s for s in suite.scorers if isinstance(s, ChoiceScorer) and s.mode == "loglik"), None)


def check_likelihood(project: Project, suite: Suite, settings: ModelSettings, path: Path) -> None:
    """A likelihood choice scorer needs a local model, which gives log-probabilities; else an
    error at the scorer's ``mode:`` line (exit 2)."""
    scorer = likelihood_scorer(suite)
    message = loglik_refusal(settings.provider) if scorer is not None else None
    if scorer is not None and message:
        raise _at_mode(
            project, path, suite, scorer, message, "use a local transformers model for this suite, or mode: generate"
        )


def _at_mode(project: Project, path: Path, suite: Suite, scorer: ChoiceScorer, message: str, hint: str) -> InputError:
    """An error at the ``mode:`` line of the suite's likelihood scorer."""
    return _at(project, path, ("scorers", suite.scorers.index(scorer), "mode"), message, hint)


def _at(project: Project, path: Path, loc: tuple[str | int, ...], message: str, hint: str | None = None) -> InputError:
    """An error at ``loc`` in suite file ``path`` (the nearest line that exists)."""
    rel = project.rel(path)
    at = parse_yaml(read_text(path, rel), rel).position(loc)
    return InputError(message, path=rel, line=at.line, col=at.col, hint=hint)


def make_item(task: Task, case: EvalCase, repeat: int) -> Item:
    """Render one case for one repeat; a render error is kept on the item, not raised.

    A pipeline's case is only checked against the pipeline's inputs here: its steps are
    rendered as the answers they read come in."""
    if task.conversation is not None:
        return conversation_item(task, case, repeat)
    if isinstance(task.prompt, Pipeline):
        try:
            inputs = task.prompt.bind(case.vars)
        except PromptciError as exc:
            return Item(task, case, repeat, None, "", canonical_json(case.vars), error=f"render: {exc}")
        return Item(task, case, repeat, None, "", canonical_json(inputs))
    try:
        request, messages = prompt_request(task.prompt, task.params, case.vars, repeat)
    except PromptciError as exc:
        return Item(task, case, repeat, None, "", canonical_json(case.vars), error=f"render: {exc}")
    if has_images(messages) and (refusal := image_refusal(task.settings)):
        return Item(task, case, repeat, None, "", canonical_json(stored(messages)), error=refusal)
    loglik = likelihood_scorer(task.suite)
    if loglik is not None:
        options = loglik.choices if loglik.choices is not None else case.data.get(loglik.choices_from or "")
        if not isinstance(options, list) or not options:
            return Item(task, case, repeat, None, "", canonical_json(messages), error="loglik: the case has no choices")
        prior: tuple[tuple[str, str], ...] = ()
        if loglik.calibrate:  # every variable "N/A": what the model says with nothing to read
            blank = task.prompt.render(**{k: "N/A" for k in case.vars})
            prior = tuple((m["role"], m["content"]) for m in blank)
        request = replace(request, choices=tuple(str(o) for o in options), normalize=loglik.normalize, prior=prior)
    key = cache_key(task.model_id, request)
    return Item(task, case, repeat, request, key, canonical_json(stored(messages)))


def conversation_setup(project: Project, path: Path, suite: Suite, task: Task, subjects: Subjects) -> Setup:
    """How ``task``'s cases converse: the prompt variables the turns go into, checked here, and the
    simulated user's prompt and model. A variable that does not fit is an error at the suite's
    ``conversation:`` line (exit 2)."""
    spec = suite.conversation or Conversation()
    prompt = task.prompt
    assert isinstance(prompt, Prompt), "a conversation runs a prompt"
    assistant = Stage(
        Step.model_construct(id="turn", prompt=prompt.name), prompt, task.settings, task.model_id, task.params
    )
    listed = [n for n, v in prompt.variables.items() if v.type == "messages"]
    history = spec.history or (listed[0] if len(listed) == 1 else None)
    if history is None or history not in listed:
        if history:
            message = f"prompt '{prompt.name}' has no variable '{history}' of type messages"
        elif listed:
            message = f"prompt '{prompt.name}' has {len(listed)} variables of type messages: name one in 'history'"
        else:
            message = f"prompt '{prompt.name}' has no variable of type messages to hold the conversation"
        hint = "declare `history: {type: messages}` and put `- {history: history}` in its messages"
        first = next((i for i, c in enumerate(suite.cases) if c.turns), 0)
        where = ("conversation", "history") if suite.conversation else ("cases", first, "turns")
        raise _at(project, path, where, message, hint)
    user = spec.user
    if user is not None and prompt.variables.get(user, None) is None:
        raise _at(project, path, ("conversation", "user"), f"prompt '{prompt.name}' has no variable '{user}'")
    if user is not None and prompt.variables[user].type not in ("string", "any"):
        raise _at(project, path, ("conversation", "user"), f"variable '{user}' takes each user turn: make it a string")
    return Setup(assistant, history, user, _simulator(project, path, spec, suite.model, subjects))


def _simulator(
    project: Project, path: Path, spec: Conversation, suite_model: ModelSettings | None, subjects: Subjects
) -> Simulator | None:
    """The simulated user's stage: its prompt on the project's model, then the prompt's, the suite's and
    ``simulate.model``, each over the last (the command line's model is the one under test, not this one)."""
    sim = spec.simulate
    if sim is None:
        return None
    found = subjects.resolve(Ref.parse(sim.prompt))
    where = ("conversation", "simulate", "prompt")
    if not isinstance(found, Prompt):
        raise _at(project, path, where, f"'{sim.prompt}' is a pipeline: a simulated user is one prompt")
    var = found.variables.get(CONVERSATION)
    if var is None or var.type != "messages":
        hint = f"declare `{CONVERSATION}: {{type: messages}}` and put `- {{history: {CONVERSATION}}}` in its messages"
        raise _at(
            project, path, where, f"prompt '{found.name}' plays the user and has no '{CONVERSATION}' messages", hint
        )
    settings = project.config.model.merged(found.spec.model).merged(suite_model).merged(sim.model)
    step = Step.model_construct(id="user", prompt=found.name)
    stage = Stage(step, found, settings, identity(settings, project.root), gen_params(settings))
    return Simulator(stage, sim.max_turns, compile_user(sim.stop) if sim.stop else None)


def conversation_item(task: Task, case: EvalCase, repeat: int) -> Item:
    """A conversation case: checked here by rendering its first turn; its requests are made turn by turn."""
    setup = task.conversation
    assert setup is not None, "a conversation's task"
    a = setup.assistant
    if (a.prompt, a.settings, a.model_id, a.params) != (task.prompt, task.settings, task.model_id, task.params):
        # a variant of the task (an optimizer's candidate): its turns run the variant's prompt and model
        assert isinstance(task.prompt, Prompt), "a conversation runs a prompt"
        stage = Stage(a.step, task.prompt, task.settings, task.model_id, task.params)
        task.conversation = setup = replace(setup, assistant=stage, _stages={})
    rendered = canonical_json({"vars": case.vars, "turns": [t.user for t in case.turns]})
    if not case.turns and setup.simulator is None:
        return Item(task, case, repeat, None, "", rendered, error="conversation: the case gives no turns")
    d = dialogue(task, case, repeat)
    opening = case.turns[0].user if case.turns else "…"
    try:
        _, messages = prompt_request(setup.assistant.prompt, task.params, turn_variables(d, opening), repeat)
    except PromptciError as exc:
        return Item(task, case, repeat, None, "", rendered, error=f"render: {exc}")
    if has_images(messages) and (refusal := image_refusal(task.settings)):
        return Item(task, case, repeat, None, "", rendered, error=refusal)
    return Item(task, case, repeat, None, "", rendered)


def dialogue(task: Task, case: EvalCase, repeat: int, owner: Any = None) -> Dialogue:
    """A case's conversation as it starts: its variables, its scripted turns and the history it gives."""
    setup = task.conversation
    assert setup is not None, "a conversation's task"
    start = case.vars.get(setup.history) or []
    variables = {k: v for k, v in case.vars.items() if k != setup.history}
    script = tuple(t.user for t in case.turns)
    return Dialogue(setup, variables, script, list(start) if isinstance(start, list) else start, repeat, owner)

"""``promptci run``: one pipeline (or one prompt, as a pipeline of one step), once, on given
inputs, with the trace of every step.

Answers go through the project's response cache like an eval's, so a second run of
the same inputs costs no model calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..pipelines.execute import Stage, Trace, execute, stages_to_run
from ..pipelines.load import Pipeline, Subjects
from ..pipelines.spec import Step
from ..project import Project
from ..prompts.prompt import Prompt
from ..providers import identity
from ..providers.pool import ModelPool, session_pool
from ..settings import ModelSettings
from ..store import Store
from .answers import Usage, answer, to_cache
from .plan import gen_params, pipeline_stages


@dataclass
class RunResult:
    """A pipeline's answer to one set of inputs."""

    pipeline: Pipeline | Prompt  # a prompt runs as one step of its own
    trace: Trace
    usage: Usage

    @property
    def output(self) -> Any:
        """The output step's parsed value; None when a step failed."""
        return self.trace.output if self.trace.error is None else None

    def to_json(self) -> dict[str, Any]:
        t = self.trace
        return {
            "pipeline": self.pipeline.name,
            "content_hash": self.pipeline.content_hash,
            "inputs": t.inputs,
            "output": self.output,
            "error": t.error,
            "steps": [
                {
                    "id": s.stage.step.id,
                    "prompt": s.stage.prompt.name,
                    "prompt_hash": s.stage.prompt.content_hash,
                    "model": s.stage.model_id,
                    "messages": s.messages,
                    "output": s.completion.text if s.completion else None,
                    "parsed": None if s.error or s.completion is None else s.parsed,
                    "error": s.error,
                    "latency_ms": s.completion.latency_ms if s.completion else None,
                    "tokens_in": s.completion.tokens_in if s.completion else None,
                    "tokens_out": s.completion.tokens_out if s.completion else None,
                    "cached": s.cached,
                }
                for s in t.steps
            ],
            "calls": self.usage.calls,
            "cached": self.usage.cached,
        }


def run_pipeline(
    project: Project,
    ref: str,
    inputs: dict[str, Any],
    *,
    override: ModelSettings | None = None,
    use_cache: bool = True,
    models: ModelPool | None = None,
    db: Path | None = None,
) -> RunResult:
    """Run pipeline or prompt ``ref`` (``NAME``, ``NAME@REV`` or ``NAME@LABEL``) once on ``inputs``."""
    subject = Subjects(project).resolve(ref)
    if isinstance(subject, Pipeline):
        stages = stages_to_run(subject, pipeline_stages(project, subject, None, override))
        trace = Trace(stages, subject.bind(inputs))
    else:
        trace = Trace((_prompt_stage(project, subject, override),), subject.bind(inputs))
    usage = Usage()
    pool = models if models is not None else session_pool(project.root)
    with Store(db or project.path(project.config.db)) as store:

        def step_answers(stage: Any, requests: Any, keys: Any) -> Any:
            got = answer(store, pool, stage.settings, requests, keys, usage, use_cache=use_cache)
            usage.cached += sum(1 for g in got if g is not None and g[1])
            return got

        try:
            execute([trace], step_answers)
        finally:
            entries = [(key, model, r) for key, model, c in trace.new_answers() if (r := to_cache(c)) is not None]
            store.cache_put(entries)
    return RunResult(subject, trace, usage)


def _prompt_stage(project: Project, prompt: Prompt, override: ModelSettings | None) -> Stage:
    """A prompt as the one step of a pipeline: its variables passed through as they are given
    (lists and objects as JSON, which the step reads back as they were)."""
    structured = {name for name, var in prompt.variables.items() if var.type in ("array", "object")}
    step = Step(
        id="prompt",
        prompt=prompt.name,
        vars={n: "{{ inputs." + n + (" | tojson" if n in structured else "") + " }}" for n in prompt.variables},
    )
    settings = project.config.model.merged(prompt.spec.model).merged(override)
    return Stage(step, prompt, settings, identity(settings, project.root), gen_params(settings))

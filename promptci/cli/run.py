from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .options import State, format_option, pass_state, vars_options

if TYPE_CHECKING:
    from ..evals.trace import RunResult


@click.command()
@click.argument("ref", metavar="PIPELINE|PROMPT[@REV|@LABEL]")
@vars_options("input")
@click.option("--model", metavar="[PROVIDER:]MODEL", help="Run every step on this model instead.")
@click.option("--no-cache", is_flag=True, help="Call the model even where a cached answer exists.")
@format_option()
@pass_state
def run(
    state: State, ref: str, pairs: tuple[str, ...], vars_file: Path | None, model: str | None, no_cache: bool, fmt: str
) -> int:
    """Send a prompt to its model once, or run a pipeline once, and print the reply (a prompt) or
    the trace (each step's messages, output and parsed value), with tokens and latency: a
    playground in the terminal, through the project's response cache.

    Exits 1 when a step fails (render, provider or parse), naming the step.
    """
    from ..evals.trace import run_pipeline
    from ..pipelines.load import Subjects
    from ..providers import parse_model_option
    from ..settings import ModelSettings
    from .output import emit_json
    from .show import read_vars

    project = state.project
    subject = Subjects(project).resolve(ref)
    inputs = read_vars(state, subject.variables, pairs, vars_file)
    override = ModelSettings(**parse_model_option(model)) if model else None  # type: ignore[arg-type]
    result = run_pipeline(project, ref, inputs, override=override, use_cache=not no_cache)
    if fmt == "json":
        emit_json(result.to_json())
    else:
        click.echo(describe(result))
    return 1 if result.trace.error else 0


def describe(result: RunResult) -> str:
    """The trace as text: per step its messages, output, parsed value, latency and tokens."""
    from ..pipelines.load import Pipeline
    from ..pipelines.steps import as_text

    kind = "pipeline" if isinstance(result.pipeline, Pipeline) else "prompt"
    lines = [f"{kind} {result.pipeline.name} ({result.pipeline.content_hash[:12]})"]
    for s in result.trace.steps:
        c = s.completion
        how = "cached" if s.cached else f"{c.latency_ms:.0f} ms" if c and c.latency_ms is not None else ""
        tokens = f", {c.tokens_in or 0} -> {c.tokens_out or 0} tokens" if c else ""
        lines.append(f"\n== step {s.stage.step.id} · {s.stage.prompt.name} · {s.stage.model_id} ({how}{tokens})")
        for m in s.messages or []:
            lines.append(f"[{m['role']}]\n{m['content'].rstrip()}")
        if c is not None:
            lines.append(f"-> {c.text!r}" if c.text is not None else "-> (no text)")
        if s.error:
            lines.append(f"error: {s.error}")
        elif c is not None and s.stage.step.parse is not None:
            lines.append(f"parsed: {as_text(s.parsed)}")
    if result.trace.error:
        lines.append(f"\nfailed: {result.trace.error}")
    else:
        lines.append(f"\noutput: {as_text(result.trace.output)}")
    return "\n".join(lines)

from __future__ import annotations

from pathlib import Path

import click

from .options import State, format_option, pass_state


@click.command()
@click.argument("ref", metavar="PIPELINE[@REV|@LABEL]")
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="An input; repeatable.")
@click.option(
    "--vars-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A YAML or JSON mapping of inputs; --var wins over it.",
)
@click.option("--model", metavar="[PROVIDER:]MODEL", help="Run every step on this model instead.")
@click.option("--no-cache", is_flag=True, help="Call the model even where a cached answer exists.")
@format_option()
@pass_state
def run(
    state: State, ref: str, pairs: tuple[str, ...], vars_file: Path | None, model: str | None, no_cache: bool, fmt: str
) -> int:
    """Run a pipeline once and print its trace: each step's messages, output and parsed value.

    Exits 1 when a step fails (render, provider or parse), naming the step.
    """
    from ..pipelines.load import Subjects
    from ..pipelines.run import describe, run_pipeline
    from ..providers import parse_model_option
    from ..settings import ModelSettings
    from .output import emit_json
    from .show import read_vars

    project = state.project
    pipeline = Subjects(project).pipelines.resolve(ref)
    inputs = read_vars(state, pipeline.variables, pairs, vars_file)
    override = ModelSettings(**parse_model_option(model)) if model else None  # type: ignore[arg-type]
    result = run_pipeline(project, ref, inputs, override=override, use_cache=not no_cache)
    if fmt == "json":
        emit_json(result.to_json())
    else:
        click.echo(describe(result))
    return 1 if result.trace.error else 0

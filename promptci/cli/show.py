from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import InputError
from .options import State, format_option, pass_state, vars_options

if TYPE_CHECKING:
    from ..pipelines.load import Pipeline
    from ..prompts.spec import Variable


@click.command()
@click.argument("ref", metavar="NAME[@REV|@LABEL]")
@format_option("text", "json", "yaml")
@pass_state
def show(state: State, ref: str, fmt: str) -> int:
    """Show a prompt or pipeline as it is in the working tree, at a revision or under a label.

    --format yaml prints the file exactly as stored at that version.
    """
    from ..pipelines.load import Pipeline, Subjects
    from .output import emit_json, short

    found = Subjects(state.project).resolve(ref)
    version = found.version
    if fmt == "yaml":
        click.echo(found.source, nl=False)
        return 0
    if fmt == "json":
        data: dict[str, Any] = {
            "name": found.name,
            "kind": "pipeline" if isinstance(found, Pipeline) else "prompt",
            "path": found.path,
            "rev": found.rev,
            "content_hash": version.content_hash,
            "commit": version.commit,
            "dirty": version.dirty,
            "spec": found.spec.model_dump(mode="json", exclude_none=True, by_alias=True),
        }
        if isinstance(found, Pipeline):
            data["steps"] = [{"prompt": p.name, "content_hash": p.content_hash} for p in found.prompts]
        emit_json(data)
        return 0
    if isinstance(found, Pipeline):
        _show_pipeline(found, short(version.commit) if not version.dirty else None, version.short)
        return 0
    prompt = found
    spec = prompt.spec
    click.echo(click.style(prompt.name, bold=True) + f"  ({prompt.path})")
    where = "uncommitted changes" if version.dirty else f"commit {short(version.commit)}"
    click.echo(f"version      {version.short}  {where}")
    if spec.description:
        click.echo(f"description  {spec.description}")
    _declared("variable", spec.variables)
    if spec.model:
        settings = spec.model.model_dump(exclude_none=True, exclude_defaults=True)
        click.echo("model        " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if spec.tags:
        click.echo("tags         " + ", ".join(spec.tags))
    click.echo()
    if spec.template is not None:
        click.echo(spec.template)
    for m in spec.messages or []:
        if m.history is not None:
            click.echo(click.style(f"[the turns of {m.history}]", fg="cyan") + "\n")
            continue
        click.echo(click.style(f"[{m.role}]", fg="cyan"))
        if isinstance(m.content, str):
            click.echo(m.content.rstrip("\n") + "\n")
            continue
        for part in m.content:
            text = part.text if part.type == "text" else click.style(f"[image: {part.image}]", fg="magenta")
            click.echo(text.rstrip("\n") + "\n")
    return 0


def _declared(label: str, declared: Mapping[str, Variable]) -> None:
    for name, var in declared.items():
        extra = "required" if var.required else f"default {var.default!r}"
        desc = f": {var.description}" if var.description else ""
        click.echo(f"{label:<13}{name} ({var.type}, {extra}){desc}")


def _show_pipeline(pipeline: Pipeline, commit: str | None, version: str) -> None:
    spec = pipeline.spec
    click.echo(click.style(pipeline.name, bold=True) + f"  ({pipeline.path}, a pipeline)")
    click.echo(f"version      {version}  {f'commit {commit}' if commit else 'uncommitted changes'}")
    if spec.description:
        click.echo(f"description  {spec.description}")
    _declared("input", spec.inputs)
    click.echo(f"output       {spec.output}")
    for step, prompt in zip(spec.steps, pipeline.prompts, strict=True):
        click.echo()
        click.echo(click.style(f"[{step.id}]", fg="cyan") + f" {prompt.name} ({prompt.content_hash[:12]})")
        for bound, source in step.vars.items():
            click.echo(f"  {bound} = {source}")
        if step.model:
            settings = step.model.model_dump(exclude_none=True, exclude_defaults=True)
            click.echo("  model: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
        if step.parse:
            click.echo(
                "  parse: "
                + ", ".join(f"{k}={v}" for k, v in step.parse.model_dump(by_alias=True).items() if v is not None)
            )


@click.command()
@click.argument("ref", metavar="NAME[@REV|@LABEL]")
@vars_options("variable")
@format_option()
@pass_state
def render(state: State, ref: str, pairs: tuple[str, ...], vars_file: Path | None, fmt: str) -> int:
    """Render a prompt with variables and print the messages."""
    from .output import emit_json

    prompt = state.registry.resolve(ref)
    messages = prompt.render(**read_vars(state, prompt.variables, pairs, vars_file))
    if fmt == "json":
        emit_json({"name": prompt.name, "content_hash": prompt.content_hash, "messages": messages})
    elif prompt.spec.template is not None:
        click.echo(messages[0]["content"])
    else:
        click.echo("\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages))
    return 0


def read_vars(
    state: State, declared: Mapping[str, Variable], pairs: tuple[str, ...], vars_file: Path | None
) -> dict[str, Any]:
    """``--vars-file`` then ``--var KEY=VALUE`` (read as the declared type), the latter winning."""
    from ..prompts.prompt import coerce

    values: dict[str, Any] = _read_vars_file(state.project.path(vars_file)) if vars_file else {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"bad --var '{pair}'", hint="write --var name=value")
        var = declared.get(key)
        values[key] = coerce(var, raw, key) if var else raw
    return values


def _read_vars_file(path: Path) -> dict[str, Any]:
    # JSON is YAML, so one parser gives positioned errors for both.
    from ..files import read_text
    from ..yamlio import parse_yaml

    data = parse_yaml(read_text(path, str(path), what="vars file"), str(path)).data
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise InputError("a vars file must hold a mapping of variable names to values", path=path, line=1)
    return data

from __future__ import annotations

import click

from .options import State, format_option, pass_state


@click.command(name="ls")
@click.option("--rev", help="List the prompts at this git revision instead of the working tree.")
@format_option()
@pass_state
def ls(state: State, rev: str | None, fmt: str) -> int:
    """List the prompts and pipelines in the registry.

    A pipeline's variables are its inputs, and its hash covers its step prompts.
    """
    from ..pipelines.load import Pipelines
    from ..prompts.labelfile import read_labels
    from .output import emit_json, table

    prompts = state.registry.load_all(rev)
    pipelines = Pipelines(state.project, state.registry).load_all(rev)
    labels = read_labels(state.project)
    entries = [("prompt", p) for p in prompts] + [("pipeline", p) for p in pipelines]
    if fmt == "json":
        emit_json(
            [
                {
                    "name": p.name,
                    "kind": kind,
                    "path": p.path,
                    "description": p.spec.description,
                    "variables": sorted(p.variables),
                    "labels": labels.get(p.name, {}),
                    "content_hash": p.content_hash,
                    "tags": p.spec.tags,
                }
                for kind, p in entries
            ]
        )
        return 0
    rows = [
        (p.name, p.path, ", ".join(p.variables), ", ".join(sorted(labels.get(p.name, {}))), p.content_hash[:12])
        for _, p in entries
    ]
    table(("name", "path", "variables", "labels", "hash"), rows)
    return 0

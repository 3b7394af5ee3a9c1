from __future__ import annotations

import click

from .options import State, format_option, pass_state


@click.group()
def cache() -> None:
    """Inspect or clear the response cache (answers keyed by prompt, model, params and repeat)."""


@cache.command()
@format_option()
@pass_state
def info(state: State, fmt: str) -> int:
    """Show where the cache lives and how much it holds."""
    from ..store import Store
    from .output import emit_json

    db = state.project.path(state.project.config.db)
    if db.exists():
        with Store(db, read_only=True) as store:
            data = store.cache_info()
    else:
        data = {"path": str(db), "entries": 0, "output_bytes": 0, "models": {}}
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(f"{data['path']}: {data['entries']} answers, {data['output_bytes']} bytes of output")
        for model, count in data["models"].items():
            click.echo(f"  {count:6d}  {model}")
    return 0


@cache.command()
@click.option("--model", "model_id", help="Only answers from this model id (see `cache info`).")
@pass_state
def clear(state: State, model_id: str | None) -> int:
    """Delete cached answers. Stored results are kept."""
    from ..store import Store

    with Store(state.project.path(state.project.config.db)) as store:
        removed = store.cache_clear(model_id)
    click.echo(f"removed {removed} cached answers")
    return 0

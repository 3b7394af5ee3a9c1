from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> int:
    """Scaffold promptci.yaml, prompts/, evals/ and a pre-commit config with a working example."""
    from ..scaffold import scaffold

    result = scaffold(directory, force=force)
    if result.git_initialized:
        click.echo(f"initialized an empty git repository in {directory}")
    for path in result.written:
        click.echo(f"wrote {path}")
    click.echo("\nnext: promptci lint && promptci render sentiment --var review='Love it'")
    return 0

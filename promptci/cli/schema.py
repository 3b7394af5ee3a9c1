from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("kind", type=click.Choice(["prompt", "suite", "pipeline", "config"]), default="prompt")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def schema(kind: str, output: Path | None) -> int:
    """Print the JSON Schema of a file format, for editor completion and validation."""
    import json

    from ..schemas import json_schema
    from ..yamlio import atomic_write

    text = json.dumps(json_schema(kind), indent=2) + "\n"
    if kind != "suite":  # the others hold optimize: blocks, whose options come from every method
        from ..optimize.methods import loadable

        for problem in loadable()[1]:
            click.echo(f"warning: {problem}; its options are left out", err=True)
    if output:
        atomic_write(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    return 0

from __future__ import annotations

from pathlib import Path

import click

from ..version import __version__

ACTION = f"promptci/promptci@v{__version__}"


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option(
    "--github",
    "github",
    is_flag=True,
    help="Only write the GitHub workflows: the regression gate, and the optimizer passes that open PRs.",
)
@click.option(
    "--action", default=ACTION, show_default=True, metavar="OWNER/REPO@REF", help="The composite action they use."
)
def init(directory: Path, force: bool, github: bool, action: str) -> int:
    """Scaffold promptci.yaml, prompts/, evals/ and a pre-commit config with a working example.

    With --github, write .github/workflows/promptci.yml (evaluate, compare and comment on
    every prompt change) and .github/workflows/promptci-optimize.yml (optimizer passes for
    prompts with optimize: settings, on a change to the default branch, a
    `promptci:optimize` PR label, or a schedule; one PR per prompt).
    """
    from ..scaffold import scaffold, scaffold_github

    if github:
        for path in scaffold_github(directory, action, force=force):
            click.echo(f"wrote {path}")
        click.echo("\nnext: add an optimize: block (suite, method, budget) to a prompt, then commit and push")
        return 0
    result = scaffold(directory, force=force)
    if result.git_initialized:
        click.echo(f"initialized an empty git repository in {directory}")
    for path in result.written:
        click.echo(f"wrote {path}")
    click.echo(
        "\nnext: git add -A && git commit -m start, then `promptci eval`: 24 reviews on the embedded"
        " SmolLM2 score about 0.67 against the threshold 0.60, so the suite passes (a constant answer"
        " scores 0.50).\nBreak the prompt and `promptci compare --run-missing` shows the flipped cases"
        " and exits 1 with 'regressed'."
    )
    return 0

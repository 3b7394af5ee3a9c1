"""The option reference in docs/commands.md, written from the commands themselves.

``python -m promptci.cli.reference`` rewrites the part of docs/commands.md between its markers;
a test fails when a command or an option is missing there, so the docs cannot fall behind --help.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

BEGIN = "<!-- the option reference: written by `python -m promptci.cli.reference` -->"
END = "<!-- end of the option reference -->"
SHARED = {"-q", "-v", "-h"}  # every command's: described once, above the reference


def commands(group: click.Group, prefix: str = "promptci") -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand, by its full name, in the order --help lists them."""
    ctx = click.Context(group, info_name=prefix)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path)


def options(command: click.Command) -> list[click.Option]:
    found = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    return [o for o in found if not set(o.opts) & SHARED]


def section(group: click.Group) -> str:
    """The reference: for each command, its usage, its first line of help and its options."""
    lines = [BEGIN, ""]
    for path, command in commands(group):
        ctx = click.Context(command, info_name=path)
        usage = " ".join([path, *command.collect_usage_pieces(ctx)])
        lines += [f"### `{path}`", "", f"`{usage}`"]
        summary = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        lines += ["", summary, ""]
        rows = [_row(o, ctx) for o in options(command)]
        if rows:
            lines += ["| option | |", "|---|---|", *rows, ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _row(option: click.Option, ctx: click.Context) -> str:
    record = option.get_help_record(ctx)
    names, text = record if record else (", ".join(option.opts), "")
    return f"| `{_cell(names)}` | {_cell(' '.join(text.split()))} |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a table cell: a bar would end it


def update(path: Path, group: click.Group) -> bool:
    """Rewrite the reference in ``path``; whether it changed."""
    text = path.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END) + 1
        new = text[:start] + section(group) + text[end:]
    else:
        new = text.rstrip("\n") + "\n\n## Every option, command by command\n\n" + section(group)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def written(path: Path, group: click.Group) -> str | None:
    """The reference as it stands in ``path``; None where it has none."""
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"


if __name__ == "__main__":
    from . import cli

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/commands.md")
    print(f"{'updated' if update(target, cli) else 'unchanged'}: {target}")

from __future__ import annotations

import click

from .options import State, pass_state

INSTALL = "pip install 'promptci-gate[view]'"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="The port to listen on.")
@pass_state
def view(state: State, host: str, port: int) -> int:
    """Browse prompts, runs, comparisons and optimizations in a local, read-only web viewer.

    Every page is a URL a teammate who runs the same command can open. The viewer listens on
    127.0.0.1 unless --host says otherwise, answers only GET requests, and writes nothing.
    """
    from ..errors import InputError

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise InputError("promptci view needs starlette and uvicorn", hint=INSTALL) from None
    from ..view.app import serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach it can read the results", err=True)
    project = state.project
    db = project.path(project.config.db)
    if db.is_file():  # a forged or damaged database is refused here, before the server starts
        from ..store import Store

        Store(db, read_only=True).close()
    shown = "127.0.0.1" if host == "0.0.0.0" else host
    click.echo(f"promptci view: http://{shown}:{port}/ (Ctrl+C stops it)", err=True)
    serve(project, host, port)
    return 0

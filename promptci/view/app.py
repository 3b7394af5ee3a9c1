"""The viewer's web app: GET routes only, server-rendered HTML, no script, no asset from the network.

Each request opens the results database read-only for as long as it takes to answer, so an
``eval`` can write between two page loads. Every page body passes the redaction layer. The
host header must name this machine (a web page elsewhere cannot reach the viewer through DNS
rebinding), and the pages forbid scripts, frames and requests to other origins.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ..errors import PromptciError
from ..project import Project
from ..redact import inert, redact
from ..report.html import environment
from ..store import Store
from ..version import __version__
from . import pages

POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
log = logging.getLogger("promptci.view")


def create_app(project: Project, host: str = "127.0.0.1") -> Starlette:
    """The viewer over ``project``'s registry and results database."""
    env = environment()
    db = project.path(project.config.db)

    @contextlib.contextmanager
    def opened() -> Iterator[Store | None]:
        if not db.is_file():
            yield None
            return
        with Store(db, read_only=True) as store:
            yield store

    def page(template: str, section: str, build: Callable[[Store | None, Request], dict[str, Any]]) -> Any:
        def endpoint(request: Request) -> HTMLResponse:
            def render(name: str, context: dict[str, Any]) -> str:
                return env.get_template(name).render(
                    title=f"{context.get('title') or section} · promptci", section=section, version=__version__,
                    project=project.root.name, **context,
                )  # fmt: skip

            status = 200
            try:
                with opened() as store:
                    body = render(template, build(store, request))
            except pages.Missing as exc:
                status, body = 404, render("view/problem.html.j2", {"message": str(exc)})
            except PromptciError as exc:
                status, body = 422, render("view/problem.html.j2", {"message": str(exc)})
            except Exception as exc:  # a page that fails says why, and the viewer keeps serving
                log.exception("%s failed", request.url.path)
                status, body = 500, render("view/problem.html.j2", {"message": f"internal error: {exc!r}"})
            return HTMLResponse(inert(redact(body)), status_code=status, headers=HEADERS)

        return endpoint

    def query(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    routes = [
        Route("/", page("view/index.html.j2", "prompts", lambda s, r: pages.index(project, s))),
        Route(
            "/prompts/{name:path}",
            page("view/prompt.html.j2", "prompts", lambda s, r: pages.prompt(project, s, r.path_params["name"])),
        ),
        Route("/runs", page("view/runs.html.j2", "runs", lambda s, r: pages.runs(s, query(r)))),
        Route(
            "/runs/{run_id}/case",
            page("view/case.html.j2", "runs", lambda s, r: pages.case(s, r.path_params["run_id"], query(r))),
        ),
        Route(
            "/runs/{run_id}",
            page("view/run.html.j2", "runs", lambda s, r: pages.run(s, r.path_params["run_id"], query(r))),
        ),
        Route("/compare", page("view/compare.html.j2", "compare", lambda s, r: pages.compare(project, s, query(r)))),
        Route(
            "/optimizations",
            page("view/optimizations.html.j2", "optimizations", lambda s, r: pages.optimizations(s, query(r))),
        ),
        Route(
            "/optimizations/{o}",
            page("view/optimization.html.j2", "optimizations", lambda s, r: pages.optimization(s, r.path_params["o"])),
        ),
        Route("/ab", page("view/ab.html.j2", "A/B", lambda s, r: pages.ab(s))),
    ]
    hosts = LOCAL_HOSTS + ([host] if host not in LOCAL_HOSTS else [])
    return Starlette(
        routes=routes,
        # Outermost first: the headers reach every response, Starlette's own 400, 404 and 405 too.
        middleware=[Middleware(_Headers), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
    )


class _Headers:
    """Sets :data:`HEADERS` (the content security policy among them) on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ours = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
        names = {k for k, _ in ours}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + ours}
            await send(message)

        await self.app(scope, receive, sending)


def serve(project: Project, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(project, host), host=host, port=port, log_level="warning")

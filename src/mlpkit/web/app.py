"""The Starlette application of ``mlpkit serve``: routes per concern, the security boundary as
middleware around them (`mlpkit.web.security`).

Routes: ``/`` draw, ``/runs`` runs, ``/live/{name}`` live training, ``/compare?run=A&run=B``;
``POST /api/predict``, ``GET /api/models``, ``GET /api/runs``, ``GET /api/runs/{name}/events``
(server-sent events); ``/runs/{name}/{file}`` a run's report and figures; ``/static/...`` the
package's scripts and stylesheet. Nothing writes a file or starts work: the only POST predicts.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlpkit.web.models import ModelSet
from mlpkit.web.pages import Pages
from mlpkit.web.predict_api import make_models_endpoint, make_predict_endpoint
from mlpkit.web.runs_api import POLL_S, RunRoutes
from mlpkit.web.security import MAX_BODY_BYTES, BodyLimit, HostCheck, SecurityHeaders, allowed_hosts

__all__ = ["create_app"]


def create_app(
    models: ModelSet,
    *,
    runs: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_s: float = POLL_S,
) -> Starlette:
    """The web app over ``models`` and the run folders under ``runs``.

    Parameters
    ----------
    models : ModelSet
        The models the draw page and ``POST /api/predict`` answer with.
    runs : Path or None
        The folder whose run folders the runs and live pages show; None: none.
    host, port : str, int
        Where the server is bound: requests for another ``Host`` are refused (DNS rebinding).
    poll_s : float
        How often the live events look at a run folder.

    Returns
    -------
    Starlette
        An ASGI app (serve it with uvicorn, `mlpkit.web.server`).
    """
    run_routes = RunRoutes(runs, poll_s=poll_s)
    pages = Pages(models, run_routes)
    routes = [
        Route("/", pages.draw),
        Route("/runs", pages.runs_page),
        Route("/live/{name}", pages.live),
        Route("/compare", run_routes.compare),
        Route("/api/predict", make_predict_endpoint(models), methods=["POST"]),
        Route("/api/models", make_models_endpoint(models)),
        Route("/api/runs", run_routes.list),
        Route("/api/runs/{name}/events", run_routes.events),
        Route("/runs/{name}/{path:path}", run_routes.file),
        Mount("/static", StaticFiles(packages=[("mlpkit.web", "static")]), name="static"),
    ]
    wildcard = host in ("0.0.0.0", "::", "")
    middleware = [
        Middleware(HostCheck, hosts=allowed_hosts(host, port), any_ip_port=port if wildcard else None),
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, limit=MAX_BODY_BYTES),
    ]
    return Starlette(routes=routes, middleware=middleware)

"""The three pages (draw, runs, live), rendered from Jinja2 templates with autoescaping.

Python hands the templates plain values; the pages' behaviour is in the package's static
scripts (no inline script, no inline handler: the Content-Security-Policy forbids both).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mlpkit.core.errors import InputError
from mlpkit.web.models import ModelSet
from mlpkit.web.run_index import list_runs
from mlpkit.web.runs_api import RunRoutes

if TYPE_CHECKING:
    import jinja2

__all__ = ["Pages", "environment"]


@cache
def environment() -> jinja2.Environment:
    """Autoescaping Jinja2 over ``mlpkit/web/templates``."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("mlpkit.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    from mlpkit.core.version import __version__

    return environment().get_template(template).render(version=__version__, **context)


class Pages:
    """The page handlers over the loaded models and the runs folder.

    Parameters
    ----------
    models : ModelSet
        For the draw page's model picker.
    runs : RunRoutes
        The runs folder (None inside when the server has none).
    """

    def __init__(self, models: ModelSet, runs: RunRoutes) -> None:
        self.models = models
        self.runs = runs

    async def draw(self, request: Request) -> HTMLResponse:
        models = self.models.describe()
        return HTMLResponse(render("draw.html.j2", page="draw", title="Draw a digit", models=models))

    async def runs_page(self, request: Request) -> HTMLResponse:
        root = self.runs.root
        runs = await run_in_threadpool(list_runs, root) if root is not None else []
        return HTMLResponse(
            render("runs.html.j2", page="runs", title="Runs", runs=runs, root=str(root) if root else None)
        )

    async def live(self, request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        try:
            self.runs.folder(name)
        except InputError as exc:
            return HTMLResponse(render("missing.html.j2", page="runs", title="No such run", message=str(exc)), 404)
        return HTMLResponse(render("live.html.j2", page="live", title=f"Live: {name}", name=name))

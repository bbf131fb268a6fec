"""The run folders under ``--runs``: ``GET /api/runs``, the live events of one run
(``GET /api/runs/{name}/events``, server-sent events), a run's files and report, and the
comparison page of several runs.

Every name from a URL goes through `mlpkit.web.security.run_folder` (one folder directly under
the root, no traversal) and every file through `mlpkit.web.security.inside`. Reports that a
folder does not hold are rendered on request into a temporary folder that is removed at once:
nothing is written under ``--runs``.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse

from mlpkit.core.errors import InputError, MlpkitError
from mlpkit.runs import schema
from mlpkit.web.run_index import list_runs, live_state
from mlpkit.web.security import inside, run_folder

__all__ = ["MAX_COMPARE", "POLL_S", "RunRoutes", "render_report"]

#: How often an event stream looks at the run folder.
POLL_S = 0.5
#: A comment line this often keeps proxies and browsers from closing a quiet stream.
KEEPALIVE_S = 15.0
#: The most runs one comparison page shows.
MAX_COMPARE = 8
#: Files of a run folder that may be served (its report and figures, its small text files).
SERVED_SUFFIXES = (".html", ".png", ".svg", ".json", ".toml")
_RENDER_LOCK = threading.Lock()  # matplotlib figures are made one page at a time


def report_csp() -> str:
    from mlpkit.report.page import CSP

    return CSP + "; frame-ancestors 'none'"


def render_report(folders: Sequence[Path]) -> str:
    """The HTML of `mlpkit.report.build_report` for ``folders``, made in a temporary folder
    (removed before returning)."""
    from mlpkit.report.run_report import build_report

    with _RENDER_LOCK, tempfile.TemporaryDirectory(prefix="mlpkit-serve-") as tmp:
        out = build_report(list(folders), Path(tmp) / "report.html")
        return out.read_text(encoding="utf-8")


class RunRoutes:
    """The handlers over one root folder of runs.

    Parameters
    ----------
    root : Path or None
        The ``--runs`` folder; None: no runs (the handlers answer 404).
    poll_s : float
        How often event streams look at a run folder.
    """

    def __init__(self, root: Path | None, *, poll_s: float = POLL_S) -> None:
        self.root = root
        self.poll_s = poll_s

    def folder(self, name: str) -> Path:
        if self.root is None:
            raise InputError("the server has no runs folder (start it with --runs DIR)")
        return run_folder(self.root, name)

    async def list(self, request: Request) -> JSONResponse:
        runs = await run_in_threadpool(list_runs, self.root) if self.root is not None else []
        return JSONResponse({"runs": runs})

    async def events(self, request: Request) -> Response:
        try:
            path = self.folder(request.path_params["name"])
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(self._stream(request, path), media_type="text/event-stream", headers=headers)

    async def _stream(self, request: Request, path: Path) -> AsyncIterator[str]:
        """``progress`` events (the `live_state` as JSON) whenever the folder's progress or
        results change, then one ``end`` event once the run is over; keep-alive comments."""
        last: tuple[float, ...] | None = None
        quiet_since = time.monotonic()
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            seen = _signature(path)
            if seen != last:
                last, quiet_since = seen, time.monotonic()
                state = await run_in_threadpool(live_state, path)
                yield f"event: progress\ndata: {json.dumps(finite(state), allow_nan=False, default=str)}\n\n"
                if state["status"] not in ("running", "incomplete"):
                    yield "event: end\ndata: {}\n\n"
                    return
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(self.poll_s)

    async def file(self, request: Request) -> Response:
        name, relative = request.path_params["name"], request.path_params["path"]
        try:
            folder = self.folder(name)
            if relative == "report.html" and not (folder / relative).is_file():
                html = await run_in_threadpool(render_report, [folder])
                return HTMLResponse(html, headers={"content-security-policy": report_csp()})
            path = inside(folder, relative)
        except InputError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except MlpkitError as exc:
            return PlainTextResponse(f"cannot show this run: {exc}", status_code=409)
        if path.suffix.lower() not in SERVED_SUFFIXES:
            return PlainTextResponse(f"{relative}: not served (only {', '.join(SERVED_SUFFIXES)})", status_code=403)
        headers = {"content-security-policy": report_csp()} if path.suffix.lower() == ".html" else {}
        return FileResponse(path, headers=headers)

    async def compare(self, request: Request) -> Response:
        names = request.query_params.getlist("run")
        if not 1 <= len(names) <= MAX_COMPARE:
            return PlainTextResponse(f"name 1 to {MAX_COMPARE} runs: /compare?run=A&run=B", status_code=400)
        try:
            folders = [self.folder(n) for n in names]
        except InputError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        try:
            html = await run_in_threadpool(render_report, folders)
        except MlpkitError as exc:
            return PlainTextResponse(f"cannot compare these runs: {exc}", status_code=409)
        return HTMLResponse(html, headers={"content-security-policy": report_csp()})


def _signature(path: Path) -> tuple[float, ...]:
    """Modification times (0: absent) of the files that a live page's state is made of."""
    out = []
    for name in (schema.PROGRESS, schema.METRICS, schema.METRICS_PARTIAL, schema.DIVERGED):
        try:
            out.append((path / name).stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(float(t) for t in out)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value

"""The server's boundary, as configuration at the edge (ASGI middleware), not checks scattered
through handlers: the Host header, the size of request bodies, the security headers of every
response, and the one function that turns a run name from a URL into a folder.

- Host: only the bound host and port (plus the loopback names when bound to loopback, and
  literal IP addresses when bound to every interface) are served; anything else is refused with
  400, so a web page whose DNS name an attacker re-points at 127.0.0.1 (DNS rebinding) cannot
  read the app.
- Bodies: over `MAX_BODY_BYTES` is 413, decided from Content-Length or while reading.
- Headers: a Content-Security-Policy with no external source (scripts and styles only from this
  server, no inline script), no framing, no sniffing, no referrer.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlpkit.core.errors import InputError

__all__ = [
    "APP_CSP",
    "MAX_BODY_BYTES",
    "BodyLimit",
    "HostCheck",
    "SecurityHeaders",
    "allowed_hosts",
    "inside",
    "run_folder",
]

MAX_BODY_BYTES = 1_000_000
#: The pages of the app: their own scripts, styles and images, data: images (the preview), and
#: requests to this server only.
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

Scope = dict[str, Any]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` header values served for a server bound to ``host``:``port``: the bound
    address; with a loopback address, also ``localhost`` and the other loopback literal; with
    every interface (``0.0.0.0``, ``::``), also the machine's name (literal IP addresses are
    accepted separately, see `HostCheck`)."""
    names = {f"[{host}]" if ":" in host else host}
    if host in ("127.0.0.1", "::1", "localhost"):
        names.update(_LOOPBACK_NAMES)
    if host in ("0.0.0.0", "::", ""):
        names.update(_LOOPBACK_NAMES)
        names.add(socket.gethostname().lower())
    return frozenset(f"{n.lower()}:{port}" for n in names)


class HostCheck:
    """Refuse (400) a request whose ``Host`` is not one of ``hosts`` (``name:port``, lower case).

    Parameters
    ----------
    app : ASGI app
        What is served.
    hosts : iterable of str
        Accepted ``name:port`` values (`allowed_hosts`).
    any_ip_port : int or None
        Bound to every interface: also accept a literal IP address with this port (an address
        cannot be re-pointed by DNS).
    """

    def __init__(self, app: Any, *, hosts: Iterable[str], any_ip_port: int | None = None) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.any_ip_port = any_ip_port

    def accepts(self, value: str) -> bool:
        value = value.strip().lower()
        if value in self.hosts:
            return True
        name, _, port = value.rpartition(":")
        return self.any_ip_port is not None and port == str(self.any_ip_port) and _is_ip(name)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not self.accepts(host):
                await _plain(send, 400, "invalid Host header")
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Answer 413 to a request body over ``limit`` bytes (by its Content-Length, or counted
    while it is read); a smaller one is read whole and handed on."""

    def __init__(self, app: Any, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and not length.isdigit():
            await _plain(send, 400, "bad Content-Length")
            return
        if length is not None and int(length) > self.limit:
            await _plain(send, 413, "request body over 1 MB")
            return
        if scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _plain(send, 413, "request body over 1 MB")
                return
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Add `HEADERS` to every response, and `APP_CSP` unless the response brought its own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = dict(HEADERS, **{"content-security-policy": APP_CSP})
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _plain(send: Any, status: int, text: str) -> None:
    body = (text + "\n").encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_folder(root: Path, name: str) -> Path:
    """The run folder ``name`` directly under ``root`` (a name from a URL).

    Raises
    ------
    InputError
        If ``name`` is not a plain folder name (letters, digits, ``._-``; no separators, no
        ``..``), or the folder it names (links followed) is not a folder directly inside ``root``.
    """
    if not _RUN_NAME.fullmatch(name) or set(name) == {"."}:
        raise InputError(f"not a run name: {name[:80]!r}")
    root = root.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_dir():
        raise InputError(f"no run folder {name!r}")
    return path


def inside(folder: Path, relative: str) -> Path:
    """``folder / relative`` if it stays inside ``folder`` once links are followed and is a file.

    Raises
    ------
    InputError
        If it leaves the folder, or is no file.
    """
    if "\\" in relative or "\x00" in relative or relative.startswith("/"):
        raise InputError(f"not a file in the run folder: {relative[:80]!r}")
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        raise InputError(f"not a file in the run folder: {relative[:80]!r}")
    return path

"""Serving the app with uvicorn on a socket bound here first: a port in use is an ``OSError``
naming the address (one error line from the CLI), port 0 picks a free port that the Host check
then knows, and tests and the load benchmark run the same server in a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RunningServer", "bind", "serve", "start_in_thread"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port).

    Raises
    ------
    OSError
        If the address cannot be bound (in use, not this machine's, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named: asyncio turns Nagle's algorithm off only on sockets that say they are TCP, and
    # with it on, a response's header and body writes wait ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _server(app: Any, *, log_level: str) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, timeout_graceful_shutdown=2, lifespan="off", ws="none"
    )
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C."""
    _server(app, log_level=log_level).run(sockets=[sock])


@dataclass
class RunningServer:
    """A server in a background thread: ``url``, and ``stop()`` to end it and close its socket."""

    url: str
    server: Any
    thread: threading.Thread
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def start_in_thread(app: Any, sock: socket.socket, *, log_level: str = "warning") -> RunningServer:
    """Serve ``app`` on ``sock`` in a daemon thread; returns once it accepts connections.

    Raises
    ------
    RuntimeError
        If the server has not started within 20 seconds.
    """
    server = _server(app, log_level=log_level)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="mlpkit-serve")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return RunningServer(url, server, thread, sock)

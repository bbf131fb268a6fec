#!/usr/bin/env python
"""A bounded load test of ``mlpkit serve``'s ``POST /api/predict`` on 127.0.0.1.

    python benchmarks/web_load.py                      # 2,000 requests, 32 at a time
    python benchmarks/web_load.py RUN_OR_MODEL --requests 500 --concurrency 8

The server is ``python -m mlpkit serve`` in its own process (as a user runs it), on a free
port; the client is this process: ``concurrency`` threads, each with one keep-alive
connection, share ``requests`` requests. Every request is a drawing (a 280x280 PNG data URL of a
stroke, as the draw page sends) or, one in four, a row of 784 pixels. Every answer must be 200
with a label; any error, refusal or timeout (``--timeout`` per request) is counted and makes the
exit status 1.

First ``--single`` requests go one at a time (the time of one drawing, the issue's p99 <= 10 ms
server-side), then the load test. Printed for each: requests per second, and p50/p99/max of
the latency the client saw, of the server's handler (waiting for a worker thread included) and
of the server's work on the request (the ``Server-Timing`` header's ``predict``: decoding the
PNG, preprocessing, the forward pass, building the answer; and its ``cpu``: the CPU time of that
work, which a busy machine does not inflate). Without a model argument a model of the
seed's shape (784-64-10, random weights: the time does not depend on the weights) is written
to a temporary folder. Results also go to benchmarks/results/web-load-<time>.json.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"


def drawings(n: int = 8) -> list[bytes]:
    """Request bodies: drawn strokes as PNG data URLs (RGBA, as a canvas sends) and pixel rows."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    bodies = []
    for k in range(n):
        img = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
        draw = ImageDraw.Draw(img)
        if k % 2:
            draw.ellipse([(80 + k, 40), (200 - k, 240)], outline=(0, 0, 0, 255), width=20)
        else:
            draw.line([(140 + k, 40), (136 - k, 240)], fill=(0, 0, 0, 255), width=20)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        bodies.append(json.dumps({"image": url}).encode())
    bodies += [json.dumps({"pixels": rng.integers(0, 256, 784).tolist()}).encode() for _ in range(n // 3 or 1)]
    return bodies


def seed_shaped_model(folder: Path) -> Path:
    from mlpkit.data.normalize import Normalization
    from mlpkit.nn.mlp import MLP
    from mlpkit.runs.model_file import save_model

    net = MLP([64], activation="improved_sigmoid").init_weights(np.random.default_rng(0), "fan_in_normal")
    path = folder / "seed-shaped.safetensors"
    save_model(net, path, normalization=Normalization("global", 33.3, 78.6), classes=list(range(10)),
               input_shape=(28, 28), dataset="mnist")  # fmt: skip
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpkit", "serve", str(model), "--port", str(port), "--runs", str(model.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.communicate()[0]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start within 60 s")


def load(
    host: str, port: int, bodies: list[bytes], *, requests: int, concurrency: int, timeout: float
) -> dict[str, Any]:
    """Send ``requests`` POSTs over ``concurrency`` keep-alive connections; latencies and errors."""
    work: queue.Queue[int] = queue.Queue()
    for i in range(requests):
        work.put(i)
    client_ms: list[float] = []
    server_ms: list[float] = []
    handler_ms: list[float] = []
    cpu_ms: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                break
            body = bodies[i % len(bodies)]
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/predict", body=body, headers={"content-type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                took = (time.perf_counter() - start) * 1000
                timing = dict(re.findall(r"(\w+);dur=([0-9.]+)", response.getheader("server-timing") or ""))
                ok = response.status == 200 and "label" in json.loads(data)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                if ok:
                    client_ms.append(took)
                    if timing:
                        server_ms.append(float(timing["predict"]))
                        handler_ms.append(float(timing["total"]))
                        cpu_ms.append(float(timing["cpu"]))
                else:
                    errors.append(f"status {response.status}: {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"requests": requests, "concurrency": concurrency, "ok": len(client_ms), "errors": errors,
            "wall_s": wall, "client_ms": summary(client_ms), "server_ms": summary(server_ms),
            "handler_ms": summary(handler_ms), "cpu_ms": summary(cpu_ms)}  # fmt: skip


def summary(ms: list[float]) -> dict[str, float | None]:
    if not ms:
        return {"p50": None, "p99": None, "max": None}
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def report(name: str, result: dict[str, Any]) -> None:
    print(f"{name}: {result['ok']}/{result['requests']} answered, {len(result['errors'])} errors,"
          f" {result['concurrency']} at a time, {result['requests'] / result['wall_s']:.0f} requests/s")  # fmt: skip
    rows = (("client_ms", "client latency"), ("handler_ms", "server handler"), ("server_ms", "server work"),
            ("cpu_ms", "server work CPU"))  # fmt: skip
    for key, what in rows:
        m = result[key]
        if m["p50"] is not None:
            print(f"  {what + ' ms:':22s} p50 {m['p50']:7.2f}  p99 {m['p99']:7.2f}  max {m['max']:7.2f}")
    for e in result["errors"][:5]:
        print("  error:", e)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, help="model file or run folder (default: a seed-shaped one)")
    parser.add_argument("--requests", type=int, default=2000, help="requests of the load test")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight in the load test")
    parser.add_argument("--single", type=int, default=300, help="requests sent one at a time first")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or seed_shaped_model(Path(tmp))
        port = free_port()
        server = start_server(model, port)
        try:
            bodies = drawings()
            load("127.0.0.1", port, bodies, requests=50, concurrency=4, timeout=args.timeout)  # warm-up
            single = load("127.0.0.1", port, bodies, requests=args.single, concurrency=1, timeout=args.timeout)
            loaded = load("127.0.0.1", port, bodies, requests=args.requests, concurrency=args.concurrency,
                          timeout=args.timeout)  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
    result = {"single": single, "load": loaded, "machine": platform.machine(), "cpus": os.cpu_count(),
              "affinity": len(os.sched_getaffinity(0)), "python": platform.python_version(),
              "model": str(args.model or "seed-shaped (784-64-10)")}  # fmt: skip
    report("one at a time", single)
    report("load", loaded)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"web-load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {out}")
    failed = [r for r in (single, loaded) if r["errors"] or r["ok"] != r["requests"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

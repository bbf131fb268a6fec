"""``mlpkit serve`` as a command: errors are one line, a non-loopback address warns, the CLI does
not import the web stack until the command runs, and the real server (a subprocess, as a user
starts it) answers a small bounded load with no error and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlpkit.cli import main
from mlpkit.data.normalize import Normalization
from mlpkit.nn.mlp import MLP
from mlpkit.runs.model_file import save_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import web_load


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    net = MLP([16], activation="relu").init_weights(np.random.default_rng(0), "he_normal")
    path = tmp_path_factory.mktemp("serve") / "small.safetensors"
    save_model(net, path, normalization=Normalization("global", 33.3, 78.6), classes=list(range(10)),
               input_shape=(28, 28), dataset="mnist")  # fmt: skip
    return path


def test_importing_mlpkit_and_its_cli_loads_no_web_stack():
    code = (
        "import sys, mlpkit, mlpkit.cli, mlpkit.web; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bad_model_path_is_one_error_line(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "missing"), "--runs", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such model file or run folder"]
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "junk.safetensors")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def test_a_port_in_use_is_one_error_line(model_file, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", str(model_file), "--port", str(port), "--runs", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_listening_beyond_loopback_warns(model_file, tmp_path, monkeypatch, host, warns):
    import socket

    import mlpkit.web.server

    asked, served = [], []

    def bind_loopback(host: str, port: int) -> socket.socket:
        """Record the address asked for, listen on 127.0.0.1 (tests never bind another address)."""
        asked.append(host)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", port))
        return sock

    monkeypatch.setattr(mlpkit.web.server, "bind", bind_loopback)
    monkeypatch.setattr(
        mlpkit.web.server, "serve", lambda app, sock: served.append((asked[-1], sock.getsockname()[1])) or sock.close()
    )
    result = CliRunner().invoke(
        main, ["serve", str(model_file), "--host", host, "--port", "0", "--runs", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert served and served[0][0] == host and served[0][1] > 0
    assert ("warning: listening on 0.0.0.0, not 127.0.0.1" in result.output) == warns
    assert f"http://{host}:{served[0][1]}/" in result.output and "models: small" in result.output


def test_the_server_answers_a_bounded_load_and_stops_on_ctrl_c(model_file):
    """A small version of benchmarks/web_load.py: 200 requests, 8 at a time, none may fail."""
    port = web_load.free_port()
    proc = web_load.start_server(model_file, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=10) as r:
            assert [m["name"] for m in json.load(r)["models"]] == ["small"]
        result = web_load.load("127.0.0.1", port, web_load.drawings(4), requests=200, concurrency=8, timeout=30)
        assert result["errors"] == [] and result["ok"] == 200
        assert result["server_ms"]["p50"] is not None and result["cpu_ms"]["p99"] < 1000
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out  # the CLI's status for Ctrl-C, after uvicorn's clean shutdown
    assert "Traceback" not in out and f"http://127.0.0.1:{port}/" in out and out.strip().endswith("interrupted")

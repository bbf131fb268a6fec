"""The web app of ``mlpkit serve`` over HTTP (Starlette's TestClient, no socket): the API's shapes
and every security point of its boundary: the Host check, 413 over 1 MB, 400 for malformed JSON
and images, 422 for bodies off the schema, path traversal refused, a strict CSP on every page and
no inline script, nothing written anywhere."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from starlette.testclient import TestClient

from mlpkit.data.normalize import Normalization
from mlpkit.nn.mlp import MLP
from mlpkit.runs.loaded_model import LoadedModel, Provenance
from mlpkit.runs.model_file import save_model
from mlpkit.web.app import create_app
from mlpkit.web.models import ModelSet
from mlpkit.web.security import APP_CSP, MAX_BODY_BYTES
from mlpkit.workflows.predict import load_predictor, predict_files
from report_fakes import write_fake_run

BASE = "http://127.0.0.1:8000"


def small_model(seed: int = 0, hidden: tuple[int, ...] = (16, 8)) -> LoadedModel:
    net = MLP(list(hidden), activation="relu").init_weights(np.random.default_rng(seed), "he_normal")
    return LoadedModel(net, Normalization("global", 33.3, 78.6), list(range(10)), (28, 28), "mnist", Provenance())


def data_url(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, fmt)
    mime = "png" if fmt == "PNG" else "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def drawn_one() -> Image.Image:
    img = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
    ImageDraw.Draw(img).line([(140, 40), (136, 240)], fill=(0, 0, 0, 255), width=20)
    return img


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A runs folder with two finished (fake) runs, a model file, and a client of the app."""
    root = tmp_path_factory.mktemp("web")
    runs = root / "runs"
    write_fake_run(runs / "alpha", "task3c", val_accuracy=0.95)
    write_fake_run(runs / "beta", "task4a", val_accuracy=0.97, early_stop_step=320, seed=1)
    (root / "secret.txt").write_text("not for the web")
    model = small_model()
    save_model(model.model, root / "small.safetensors", normalization=model.normalization, classes=model.classes,
               input_shape=(28, 28), dataset="mnist")  # fmt: skip
    models = ModelSet.load([root / "small.safetensors", root / "small.safetensors"])
    app = create_app(models, runs=runs, host="127.0.0.1", port=8000, poll_s=0.02)
    with TestClient(app, base_url=BASE) as client:
        yield client, root, runs, models


# ------------------------------------------------------------------------------- the API
def test_predict_pixels_answers_as_the_model_does(served):
    client, _, _, models = served
    pixels = np.random.default_rng(1).integers(0, 256, 784)
    r = client.post("/api/predict", json={"pixels": pixels.tolist()})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {"model", "label", "probabilities", "classes", "input28", "activations"}
    model = models.models["small"]
    proba = model.predict_proba(pixels.reshape(1, 28, 28).astype(np.float64))[0]
    assert doc["model"] == "small" and doc["classes"] == list(range(10))
    assert doc["label"] == int(np.argmax(proba))
    assert np.allclose(doc["probabilities"], proba, atol=1e-6) and abs(sum(doc["probabilities"]) - 1) < 1e-4
    assert doc["input28"] == pixels.reshape(28, 28).tolist()
    assert [len(a) for a in doc["activations"]] == [16, 8] and min(doc["activations"][0]) >= 0  # relu
    assert re.fullmatch(r"predict;dur=[0-9.]+, total;dur=[0-9.]+, cpu;dur=[0-9.]+", r.headers["server-timing"])


def test_a_drawing_is_preprocessed_as_mlpkit_predict_does(served, tmp_path):
    client, root, _, _ = served
    img = drawn_one()
    img.save(tmp_path / "one.png")
    expected = predict_files(load_predictor(root / "small.safetensors"), [tmp_path / "one.png"], top=10)[0]
    doc = client.post("/api/predict", json={"image": data_url(img), "model": "small-2"}).json()
    assert doc["model"] == "small-2" and doc["label"] == expected.top[0][0]
    by_label = dict(expected.top)
    assert np.allclose(doc["probabilities"], [by_label[k] for k in range(10)], atol=1e-6)
    seen = np.array(doc["input28"])
    assert seen.shape == (28, 28) and seen.max() == 255 and seen[:, :4].max() == 0  # ink centred, bright on black


def test_models_and_runs_are_listed(served):
    client, *_ = served
    assert [m["name"] for m in client.get("/api/models").json()["models"]] == ["small", "small-2"]
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) == {"alpha", "beta"}
    assert runs["alpha"]["status"] == "finished" and runs["alpha"]["val_accuracy"] == pytest.approx(0.95)
    assert runs["beta"]["status"] == "early-stopped" and runs["beta"]["config_name"] == "task4a"


# ------------------------------------------------------------------- request checking
def test_malformed_json_is_400_and_bodies_off_the_schema_are_422(served):
    client, *_ = served
    for body in (b"{not json", b"\xff\xfe", b""):
        r = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"] == "the body is not valid JSON"
    off_schema = [
        [],
        {},
        {"pixels": [0] * 784, "image": "data:image/png;base64,AAAA"},
        {"pixels": [0] * 783},
        {"pixels": [0] * 783 + [256]},
        {"pixels": [0] * 783 + [-1]},
        {"pixels": [0] * 783 + [True]},
        {"pixels": [0] * 783 + ["1"]},
        {"pixels": "0" * 784},
        {"image": 3},
        {"image": "https://example.com/a.png"},
        {"pixels": [0] * 784, "model": 1},
        {"pixels": [0] * 784, "extra": 1},
    ]
    for body in off_schema:
        r = client.post("/api/predict", json=body)
        assert r.status_code == 422, (body if len(str(body)) < 100 else str(body)[:100], r.text)
        assert r.json()["error"]


def test_malformed_and_oversized_images_are_400(served):
    client, *_ = served
    good = data_url(drawn_one())
    png = base64.b64decode(good.partition(",")[2])
    cases = {
        "bad base64": "data:image/png;base64,@@@@",
        "not an image": "data:image/png;base64," + base64.b64encode(b"hello world").decode(),
        "truncated": "data:image/png;base64," + base64.b64encode(png[: len(png) // 2]).decode(),
        "too wide": data_url(Image.new("L", (2049, 8), 255)),
        "blank": data_url(Image.new("L", (50, 50), 255)),
    }
    for what, url in cases.items():
        r = client.post("/api/predict", json={"image": url})
        assert r.status_code == 400, (what, r.text)
        assert 0 < len(r.json()["error"]) < 300, what
    widest = Image.new("L", (2048, 64), 255)
    ImageDraw.Draw(widest).line([(900, 5), (900, 60)], fill=0, width=6)
    assert client.post("/api/predict", json={"image": data_url(widest)}).status_code == 200  # the limit itself is fine
    assert client.post("/api/predict", json={"image": data_url(drawn_one().convert("RGB"), "JPEG")}).status_code == 200


def test_unknown_model_is_404_naming_the_loaded_ones(served):
    client, *_ = served
    r = client.post("/api/predict", json={"pixels": [0] * 784, "model": "nope"})
    assert r.status_code == 404 and "small, small-2" in r.json()["error"]


def test_bodies_over_1_mb_are_413(served):
    client, *_ = served
    big = b'{"pixels": [' + b"0," * (MAX_BODY_BYTES // 2) + b"0]}"
    assert client.post("/api/predict", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: counted while read
        for _ in range(40):
            yield b" " * 50_000

    r = client.post("/api/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/api/predict", content=b"x", headers={"content-length": "abc"}).status_code == 400


def test_requests_for_another_host_are_refused(served):
    client, *_ = served
    for host in ("evil.example:8000", "127.0.0.1:9999", "127.0.0.1", "localhost.evil.example:8000", ""):
        r = client.get("/api/models", headers={"host": host})
        assert r.status_code == 400 and r.text.strip() == "invalid Host header", host
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000"):
        assert client.get("/api/models", headers={"host": host}).status_code == 200, host
    wildcard = TestClient(create_app(ModelSet({}), host="0.0.0.0", port=8000), base_url=BASE)
    assert wildcard.get("/api/models", headers={"host": "192.168.1.7:8000"}).status_code == 200
    assert wildcard.get("/api/models", headers={"host": "rebound.example:8000"}).status_code == 400
    assert wildcard.get("/api/models", headers={"host": "192.168.1.7:80"}).status_code == 400


def test_path_traversal_is_refused(served):
    client, root, runs, _ = served
    (runs / "alpha" / "escape.json").symlink_to(root / "secret.txt")
    (runs / "link").symlink_to(root)
    try:
        for url in (
            "/runs/alpha/../../secret.txt",
            "/runs/alpha/..%2F..%2Fsecret.txt",
            "/runs/..%2Fsecret.txt/x",
            "/runs/%2e%2e/secret.txt",
            "/runs/alpha/%2e%2e/%2e%2e/secret.txt",
            "/runs/alpha/escape.json",
            "/runs/link/secret.txt",
            "/runs/alpha/%5C..%5Csecret.txt",
            "/static/../templates/base.html.j2",
            "/static/..%2Ftemplates%2Fbase.html.j2",
            "/api/runs/..%2F..%2F/events",
            "/api/runs/link/events",
            "/live/%2e%2e",
            "/live/..%2F..%2Fsecret.txt",
            "/compare?run=..&run=alpha",
        ):
            r = client.get(url)
            assert r.status_code in (400, 404), (url, r.status_code)
            assert "not for the web" not in r.text
    finally:
        (runs / "alpha" / "escape.json").unlink()
        (runs / "link").unlink()
    assert client.get("/runs/alpha/weights.npz").status_code == 403  # only reports, figures, text
    assert client.get("/runs/alpha/config.toml").status_code == 200


def test_read_only_methods_and_nothing_written(served):
    client, root, _, _ = served
    before = tree(root)
    for method, url in (("PUT", "/api/predict"), ("DELETE", "/runs/alpha/config.toml"), ("POST", "/api/runs"),
                        ("POST", "/runs/alpha/report.html"), ("PATCH", "/")):  # fmt: skip
        assert client.request(method, url).status_code == 405, (method, url)
    assert client.get("/runs/alpha/report.html").status_code == 200  # rendered in memory
    r = client.get("/compare?run=alpha&run=beta")
    assert r.status_code == 200 and "alpha" in r.text and "beta" in r.text
    client.post("/api/predict", json={"image": data_url(drawn_one())})
    assert tree(root) == before


# ---------------------------------------------------------------------------- the pages
def test_pages_have_a_strict_csp_and_no_inline_script(served):
    client, *_ = served
    assert "http" not in APP_CSP and "'unsafe-inline'" not in APP_CSP and "*" not in APP_CSP
    for url in ("/", "/runs", "/live/alpha"):
        r = client.get(url)
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == APP_CSP
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        html = r.text
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all(re.search(r'\bsrc="/static/[a-z]+\.js"', s) for s in scripts), scripts
        assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # no inline code
        assert re.search(r"\son[a-z]+\s*=", html) is None  # no inline handler
        assert "style=" not in html and "<style" not in html
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
    report = client.get("/runs/alpha/report.html")
    assert report.headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src" not in report.headers["content-security-policy"]  # reports run no script at all


def test_runs_page_lists_runs_with_links(served):
    client, *_ = served
    html = client.get("/runs").text
    assert html.count('class="pick"') == 2
    assert 'href="/runs/alpha/report.html"' in html and 'href="/live/beta"' in html
    assert "0.9500" in html and "0.9700" in html


# --------------------------------------------------------------------------- live events
def events(client: TestClient, url: str, limit: int = 50) -> list[tuple[str, dict]]:
    out = []
    with client.stream("GET", url) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[6:])))
                if kind == "end" or len(out) >= limit:
                    break
    return out


def test_events_of_a_finished_run_give_its_curves_then_end(served):
    client, *_ = served
    got = events(client, "/api/runs/alpha/events")
    assert [k for k, _ in got] == ["progress", "end"]
    state = got[0][1]
    assert state["status"] == "finished" and state["step"] == 400
    assert len(state["validation"]["val_loss"]) == 20 and state["train"]["step"][-1] == 400


def test_events_follow_a_progress_file_as_it_is_rewritten(served):
    client, _, runs, _ = served
    live = runs / "live"
    live.mkdir()
    (live / "config.toml").write_text('name = "live"\n')

    def write(step: int, status: str) -> None:
        doc = {
            "status": status, "step": step, "total_steps": 300, "steps_per_epoch": 100, "started": time.time(),
            "updated": time.time(), "elapsed_s": step / 100, "train": {"step": list(range(10, step + 1, 10)),
            "loss": [1.0 / s for s in range(10, step + 1, 10)]},
            "validation": {"step": [step], "val_loss": [float("nan")], "val_accuracy": [0.5], "train_accuracy": [0.6]},
            "early_stopping": {"patience": 5, "wait": 1, "best": 0.5, "best_step": step, "stopped_step": None},
        }  # fmt: skip
        tmp = live / ".p.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.replace(live / "progress.json")

    write(100, "running")

    def trainer() -> None:
        for step in (200, 300):
            time.sleep(0.3)
            write(step, "running" if step < 300 else "finished")

    thread = threading.Thread(target=trainer)
    thread.start()
    try:
        got = events(client, "/api/runs/live/events")
    finally:
        thread.join()
        for p in live.iterdir():
            p.unlink()
        live.rmdir()
    steps = [s["step"] for k, s in got if k == "progress"]
    assert steps == sorted(steps) and steps[0] == 100 and steps[-1] == 300 and len(steps) >= 2
    first = got[0][1]
    assert first["status"] == "running" and first["eta_s"] == pytest.approx(2.0, rel=0.01)
    assert first["validation"]["val_loss"] == [None]  # NaN sent as null (JSON has no NaN)
    assert got[-1][0] == "end"

"""HTML reports from run folders (mlpkit.report.html, mlpkit.report.figures).

Real runs on a slice of MNIST check the run report against the files it was made from;
synthetic run folders (written here, no training) check the seed report and the edge cases.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mlpkit.runs.config import to_toml, with_overrides
from mlpkit.core.errors import MlpkitError
from mlpkit.core.fileio import atomic_save_npz, atomic_write_json, atomic_write_text
from mlpkit.report.html import (SEED_TASKS, _labels, build_report, build_seed_report, compare, preset_overrides,
                           seed_task_keys)
from mlpkit.report.figures import encode_png_gray, pixel_weights
from mlpkit.runs.environment import environment_info
from mlpkit.runs.folder import load_run
from mlpkit.workflows.configs import resolve_config

REPO = Path(__file__).resolve().parents[1]
SEED_PRESETS = ("task2c", "task2c-noshuffle", "task3a", "task3b", "task3c", "task4a", "task4b", "task4d", "task4e")


def mnist_dir() -> Path:
    return Path(os.environ.get("MLPKIT_DATA") or REPO.parent / "shared" / "data" / "mnist")


# ------------------------------------------------------------------ synthetic run folders
def _num_parameters(hidden: list[int]) -> int:
    sizes = [785, *hidden, 10]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def write_fake_run(path: Path, preset: str = "task3c", *, val_accuracy: float = 0.96, val_loss: float = 0.15,
                   train_accuracy: float = 1.0, train_loss: float = 0.002, early_stop_step: int | None = None,
                   steps: int = 400, steps_per_epoch: int = 100, n_val: int = 600, seed: int = 0,
                   predictions: bool = True, weights: bool = True) -> Path:
    """A finished run folder with the layout of mlpkit.runs.folder, made of synthetic numbers (no training)."""
    rng = np.random.default_rng(seed)
    cfg = resolve_config(preset)
    hidden = list(cfg.model.hidden)
    path.mkdir(parents=True)
    atomic_write_text(path / "config.toml", to_toml(cfg))
    atomic_write_json(path / "environment.json", environment_info(seed=cfg.seed, threads=None))
    t = np.arange(1, steps + 1)
    loss = train_loss + 2.0 * np.exp(-t / (steps / 8)) + rng.normal(0, 0.05, steps) * np.exp(-t / steps)
    every = steps_per_epoch // 5
    v = np.arange(every, steps + 1, every)
    history = {"train": {"step": t.tolist(), "loss": np.abs(loss).tolist()},
               "validation": {"step": v.tolist(), "epoch": (v / steps_per_epoch).tolist(),
                              "val_loss": (val_loss + 1.5 * np.exp(-v / (steps / 6))).tolist(),
                              "val_accuracy": (val_accuracy - 0.25 * np.exp(-v / (steps / 6))).tolist(),
                              "train_loss": (train_loss + 1.5 * np.exp(-v / (steps / 6))).tolist(),
                              "train_accuracy": (train_accuracy - 0.2 * np.exp(-v / (steps / 6))).tolist()}}
    atomic_write_json(path / "history.json", history, indent=None)
    metrics = {"train_loss": train_loss, "train_accuracy": train_accuracy, "val_loss": val_loss,
               "val_accuracy": val_accuracy, "num_parameters": _num_parameters(hidden), "steps": steps,
               "epochs_completed": steps / steps_per_epoch, "early_stop_step": early_stop_step,
               "best_val_loss": val_loss, "best_val_loss_step": steps, "best_val_accuracy": val_accuracy,
               "last_epoch_mean_batch_loss": train_loss, "steps_per_epoch": steps_per_epoch,
               "validate_every": every, "wall_time_s": 12.5, "normalization": {"mean": 33.55, "std": 78.87},
               "interrupted": False}
    atomic_write_json(path / "metrics.json", metrics)
    if weights:
        sizes = [785, *hidden, 10]
        arrays = {f"layers.{i}.weight": rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32)
                  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}
        atomic_save_npz(path / "weights.npz", arrays)
    if predictions:
        y_true = rng.integers(0, 10, n_val)
        wrong = rng.random(n_val) > val_accuracy
        y_pred = np.where(wrong, (y_true + rng.integers(1, 10, n_val)) % 10, y_true)
        proba = rng.random((n_val, 10)).astype(np.float32)
        proba[np.arange(n_val), y_pred] += 9.0
        proba /= proba.sum(axis=1, keepdims=True)
        bad = np.flatnonzero(y_pred != y_true)
        order = bad[np.argsort(-proba[bad, y_pred[bad]])][:100]
        atomic_save_npz(path / "predictions.npz", {
            "y_true": y_true.astype(np.int64), "y_pred": y_pred.astype(np.int64), "proba": proba,
            "misclassified_index": order.astype(np.int64),
            "misclassified_images": rng.integers(0, 256, (len(order), 28, 28)).astype(np.uint8)})
    return path


#: What the fake reproduce folder's runs end at: close to the report for most, off for task4a.
FAKE_RESULTS = {
    "task2c": dict(val_accuracy=0.91, val_loss=0.31, train_accuracy=0.93, train_loss=0.25),
    "task2c-noshuffle": dict(val_accuracy=0.90, val_loss=0.33, train_accuracy=0.92, train_loss=0.27),
    "task3a": dict(val_accuracy=0.94, val_loss=0.21, train_accuracy=0.97, train_loss=0.09),
    "task3b": dict(val_accuracy=0.95, val_loss=0.17, train_accuracy=0.99, train_loss=0.03),
    "task3c": dict(val_accuracy=0.9612, val_loss=0.149, train_accuracy=0.9995, train_loss=0.0021),
    "task4a": dict(val_accuracy=0.90, val_loss=0.35, train_accuracy=0.95, train_loss=0.05),
    "task4b": dict(val_accuracy=0.972, val_loss=0.118, train_accuracy=1.0, train_loss=0.0009),
    "task4d": dict(val_accuracy=0.958, val_loss=0.162, train_accuracy=1.0, train_loss=0.0008),
    "task4e": dict(val_accuracy=0.965, val_loss=0.24, train_accuracy=0.95, train_loss=0.07, early_stop_step=2000),
}
REFERENCE = {
    "task3c": dict(val_accuracy=0.96, val_loss=0.15, train_loss=0.002, train_accuracy=1.0),
    "task4a": dict(val_accuracy=0.94, val_loss=0.22, train_loss=0.022, train_accuracy=0.99),
    "task4b": dict(val_accuracy=0.97, val_loss=0.12, train_loss=0.0008, train_accuracy=1.0),
    "task4d": dict(val_accuracy=0.96, val_loss=0.16, train_loss=0.0008, train_accuracy=1.0),
    "task4e": dict(val_accuracy=0.97, val_loss=0.23, train_loss=0.07, train_accuracy=0.94, early_stop_epoch=20),
}


def write_fake_reproduce(root: Path, *, presets=SEED_PRESETS) -> Path:
    """A folder laid out like ``mlpkit reproduce --out DIR`` leaves it (see mlpkit.workflows.reproduce)."""
    root.mkdir(parents=True)
    entries = {}
    for i, name in enumerate(presets):
        res = dict(FAKE_RESULTS[name])
        steps, spe = (2500, 100) if name == "task4e" else (400, 100)
        write_fake_run(root / name, name, steps=steps, steps_per_epoch=spe, seed=i, **res)
        ref = {"val_accuracy": None, "val_loss": None, "train_loss": None, "train_accuracy": None,
               "early_stop_epoch": None, "note": "plot only" if name not in REFERENCE else ""}
        ref.update(REFERENCE.get(name, {}))
        entries[name] = {"run_dir": name, "metrics": json.loads((root / name / "metrics.json").read_text()),
                         "reference": ref}
    (root / "figures").mkdir()
    atomic_write_json(root / "summary.json", {
        "data": {"mean": 33.55274553571429, "std": 78.87550070784695, "n_train": 20000, "n_val": 10000},
        "wall_time_s": 321.0, "presets": entries,
        "comparisons": [{"name": "task2c-3a-3b-3c", "presets": ["task2c", "task3a", "task3b", "task3c"],
                         "figures": ["figures/task2c-3a-3b-3c-loss.png"]}]})
    return root


# ------------------------------------------------------------------ reading the HTML back
class ReportParser(HTMLParser):
    """Sections (id -> text, images) and tables (class -> rows of cell text) of a report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, dict] = {}
        self.open: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.digits: list[dict[str, str]] = []
        self.tags: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._digit: dict[str, str] | None = None
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag in ("img", "meta", "link", "br", "input"):
            pass
        else:
            self._stack.append(tag)
        if tag == "section":
            self.open.append(a["id"])
            self.sections[a["id"]] = {"text": [], "images": [], "tables": []}
        elif tag == "img":
            img = {**a, "sections": list(self.open)}
            self.images.append(img)
            for s in self.open:
                self.sections[s]["images"].append(img)
        elif tag == "table":
            self._table = []
            self.tables.setdefault(a.get("class", ""), []).append(self._table)
            for s in self.open:
                self.sections[s]["tables"].append((a.get("class", ""), self._table))
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "figure" and "digit" in a.get("class", ""):
            self._digit = {**a, "caption": "", "sections": list(self.open)}
            self.digits.append(self._digit)

    def handle_endtag(self, tag):
        while self._stack and self._stack[-1] != tag:
            self._stack.pop()
        if self._stack:
            self._stack.pop()
        if tag == "section":
            self.open.pop()
        elif tag in ("td", "th") and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "figure":
            self._digit = None

    def handle_data(self, data):
        for s in self.open:
            self.sections[s]["text"].append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._digit is not None:
            self._digit["caption"] += data

    def text(self, section: str) -> str:
        return " ".join("".join(self.sections[section]["text"]).split())


def parse(path: Path) -> ReportParser:
    p = ReportParser()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def decode_data_png(src: str) -> np.ndarray:
    """The image of a data: URI, decoded (raises if it is not a valid PNG)."""
    import matplotlib.image as mpimg

    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:60]
    raw = base64.b64decode(src[len(prefix):], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(raw), format="png")


def table_rows(table: list[list[str]]) -> list[list[str]]:
    return [r for r in table[1:] if r]


def num(text: str) -> float:
    return float(text.replace(",", "").replace("%", ""))


def assert_self_contained(html_text: str) -> None:
    assert "<script" not in html_text.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", html_text, re.I)
    assert "Content-Security-Policy" in html_text
    for m in re.finditer(r"""<(?:img|link)[^>]*?(?:src|href)="([^"]*)""", html_text):
        assert m.group(1).startswith("data:"), m.group(1)[:80]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """A short real run on MNIST (2,000 training / 2,000 validation images) and a synthetic
    task4a run folder whose early stopping fired at step 320 (600 validation images)."""
    from mlpkit.workflows.experiment import run_experiment

    if not any(mnist_dir().glob("train-images*")):
        pytest.skip(f"MNIST not found at {mnist_dir()} (set MLPKIT_DATA)")
    root = tmp_path_factory.mktemp("runs")
    cfg = with_overrides(resolve_config("task3c"), ["epochs=2", "n_train=2000", "data.n_val=2000"])
    run_experiment(cfg, root / "task3c", data_dir=mnist_dir(), progress=False, log=lambda *_: None)
    fake = write_fake_run(root / "task4a", "task4a", val_accuracy=0.93, val_loss=0.24, early_stop_step=320)
    return [root / "task3c", fake]


@pytest.fixture(scope="module")
def real_report(real_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert build_report(real_runs, out) == out
    return out


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory):
    root = write_fake_reproduce(tmp_path_factory.mktemp("repro") / "out")
    out = build_seed_report(root, root / "report.html")
    return out


# ------------------------------------------------------------------ run report
def test_report_has_every_section_and_is_self_contained(real_report):
    p = parse(real_report)
    ids = set(p.sections)
    for sid in ("metrics", "config", "curves", "environment"):
        assert sid in ids
    for k in (1, 2):
        for sid in ("run", "confusion", "per-class", "confused-pairs", "gallery", "weights"):
            assert f"{sid}-{k}" in ids
    assert_self_contained(real_report.read_text(encoding="utf-8"))
    assert len(p.images) > 10
    for img in p.images:
        assert decode_data_png(img["src"]).shape[0] > 0
        assert img.get("alt")


def test_metrics_table_equals_metrics_json(real_runs, real_report):
    p = parse(real_report)
    (table,) = p.tables["metrics"]
    header = table[0]
    rows = {r[0]: dict(zip(header, r)) for r in table_rows(table)}
    for d in real_runs:
        m = load_run(d).metrics
        row = rows[load_run(d).name]
        assert row["val accuracy"] == f"{m['val_accuracy']:.4f}"
        assert row["train accuracy"] == f"{m['train_accuracy']:.4f}"
        assert num(row["val loss"]) == pytest.approx(m["val_loss"], rel=1e-3)
        assert num(row["train loss"]) == pytest.approx(m["train_loss"], rel=1e-3)
        assert num(row["parameters"]) == m["num_parameters"]
        assert num(row["steps"]) == m["steps"]
    assert num(rows["task3c"]["parameters"]) == 50_880
    assert num(rows["task4a"]["parameters"]) == 785 * 32 + 32 * 10
    assert rows["task3c"]["early stop at step"] == "\u2013"
    assert rows["task4a"]["early stop at step"] == "320"


def test_confusion_matrix_sums_to_n_val_and_matches_accuracy(real_runs, real_report):
    p = parse(real_report)
    tables = p.tables["confusion"]
    assert len(tables) == 2
    for d, table, n_val in zip(real_runs, tables, (2000, 600)):
        cm = np.array([[int(c) for c in r[1:11]] for r in table_rows(table)[:10]])
        assert cm.sum() == n_val
        assert cm.sum() == len(load_run(d).predictions()["y_true"])
        if n_val == 2000:  # the real run: its predictions agree with metrics.json
            assert np.trace(cm) / cm.sum() == pytest.approx(load_run(d).metrics["val_accuracy"], abs=1e-3)
        per_class = {r[0]: r for r in table_rows(p.tables["per-class"][tables.index(table)])}
        for i in range(10):
            assert num(per_class[str(i)][1]) == cm[i].sum()
            assert num(per_class[str(i)][2]) == cm[i, i]


def test_most_confused_pairs_are_the_largest_off_diagonal_counts(real_report):
    p = parse(real_report)
    cm = np.array([[int(c) for c in r[1:11]] for r in table_rows(p.tables["confusion"][0])[:10]])
    pairs = table_rows(p.tables["pairs"][0])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    counts = [int(num(r[2])) for r in pairs]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == off.max()
    for r in pairs:
        assert cm[int(r[0]), int(r[1])] == int(num(r[2]))


def test_gallery_shows_true_and_predicted_labels_with_confidence(real_runs, real_report):
    p = parse(real_report)
    pred = load_run(real_runs[0]).predictions()
    n = min(48, len(pred["misclassified_index"]))
    first = [d for d in p.digits if "gallery-1" in d["sections"]]
    assert len(first) == n > 0
    for d, idx in zip(first, pred["misclassified_index"][:n]):
        t, y = int(d["data-true"]), int(d["data-pred"])
        assert t != y
        assert t == pred["y_true"][idx] and y == pred["y_pred"][idx]
        assert float(d["data-confidence"]) == pytest.approx(pred["proba"][idx, y], abs=1e-4)
        assert f"true {t}" in d["caption"] and f"\u2192 {y}" in d["caption"] and "%" in d["caption"]
    gallery_imgs = p.sections["gallery-1"]["images"]
    assert len(gallery_imgs) == n
    assert decode_data_png(gallery_imgs[0]["src"]).shape[:2] == (28, 28)


def test_config_side_by_side_highlights_differences(real_report):
    html_text = real_report.read_text(encoding="utf-8")
    p = parse(real_report)
    (table,) = p.tables["config"]
    assert table[0] == ["key", "task3c", "task4a"]
    rows = {r[0]: r[1:] for r in table_rows(table)}
    assert rows["model.hidden"] == ["[64]", "[32]"]
    assert rows["train.momentum"] == ["0.9", "0.9"]
    assert re.search(r'<tr class="differs"><td>model\.hidden</td>', html_text)
    assert not re.search(r'<tr class="differs"><td>train\.momentum</td>', html_text)


def test_figures_saved_as_png_and_svg_next_to_the_report(real_report):
    files = real_report.with_name("report_files")
    names = {f.name for f in files.iterdir()}
    for stem in ("loss", "accuracy", "01-task3c-confusion", "01-task3c-weights", "01-task3c-misclassified",
                 "02-task4a-confusion", "02-task4a-weights", "02-task4a-misclassified"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
        assert ET.parse(files / f"{stem}.svg").getroot().tag.endswith("svg")
        assert (files / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in names if n.startswith(".")]  # no temporary files left behind
    # every embedded figure (not the digit tiles) is one of the saved PNGs
    saved = {base64.b64encode((files / n).read_bytes()).decode() for n in names if n.endswith(".png")}
    embedded = [i["src"].split(",", 1)[1] for i in parse(real_report).images if "digit" not in i.get("alt", "")
                and not i.get("alt", "").startswith("validation image")]
    assert embedded and all(e in saved for e in embedded)


def test_preset_overrides_name_what_a_run_changed(real_runs):
    assert preset_overrides(load_run(real_runs[0])) == ["data.n_train=2000", "data.n_val=2000", "train.epochs=2"]
    assert preset_overrides(load_run(real_runs[1])) == []  # the synthetic run is task4a as shipped


def test_machine_and_wall_time_are_reported(real_runs, real_report):
    p = parse(real_report)
    text = p.text("environment")
    env = load_run(real_runs[0]).environment
    assert env["platform"] in text and env["numpy"] in text
    assert "wall time" in text


def test_report_html_alone_still_shows_every_figure(real_report, tmp_path):
    """Self-contained: copy the HTML without its _files folder; all images are data URIs."""
    alone = tmp_path / "alone.html"
    alone.write_bytes(real_report.read_bytes())
    for img in parse(alone).images:
        decode_data_png(img["src"])


# ------------------------------------------------------------------ synthetic runs: edge cases
def test_early_stopping_point_is_reported(real_report):
    p = parse(real_report)
    assert "Early stopping (dotted line): task4a at step 320." in p.text("curves")
    assert p.sections["weights-2"]["images"]


def test_same_preset_twice_gets_distinct_labels(tmp_path):
    a = load_run(write_fake_run(tmp_path / "a", "task3c"))
    b = load_run(write_fake_run(tmp_path / "b", "task3c", seed=3, predictions=False, weights=False))
    c = load_run(write_fake_run(tmp_path / "c", "task4a", predictions=False, weights=False))
    assert _labels([a, b, c]) == ["task3c (a)", "task3c (b)", "task4a"]


def test_run_without_predictions_or_weights_still_reports(tmp_path):
    a = write_fake_run(tmp_path / "a", predictions=False, weights=False)
    p = parse(build_report([a], tmp_path / "r.html"))
    for sid in ("confusion-1", "per-class-1", "confused-pairs-1", "gallery-1", "weights-1"):
        assert sid in p.sections
    assert "no predictions.npz" in p.text("confusion-1")
    assert "no weights.npz" in p.text("weights-1")


@pytest.mark.parametrize("breakage, message", [
    ("missing", "does not exist"),
    ("no-metrics", "missing metrics.json"),
    ("bad-json", "unreadable"),
])
def test_bad_run_folder_is_a_clear_error(tmp_path, breakage, message):
    run = tmp_path / "run"
    if breakage != "missing":
        write_fake_run(run)
    if breakage == "no-metrics":
        (run / "metrics.json").unlink()
    if breakage == "bad-json":
        (run / "history.json").write_text("{not json")
    out = tmp_path / "r.html"
    with pytest.raises(MlpkitError, match=message):
        build_report([run], out)
    assert not out.exists()


def test_output_must_be_html_and_runs_given(tmp_path):
    a = write_fake_run(tmp_path / "a")
    with pytest.raises(MlpkitError, match=r"\.html"):
        build_report([a], tmp_path / "r.pdf")
    with pytest.raises(MlpkitError, match="at least one"):
        build_report([], tmp_path / "r.html")


# ------------------------------------------------------------------ figures and helpers
def test_pixel_weights_maps_each_hidden_unit_to_its_column():
    w = np.arange(785 * 3, dtype=np.float64).reshape(785, 3)
    images = pixel_weights(w)
    assert images.shape == (3, 28, 28)
    np.testing.assert_array_equal(images[1], w[:784, 1].reshape(28, 28))
    assert pixel_weights(np.zeros((100, 4))) is None


def test_encode_png_gray_round_trips():
    img = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    src = "data:image/png;base64," + base64.b64encode(encode_png_gray(img)).decode()
    back = decode_data_png(src)
    np.testing.assert_allclose(back * 255, img, atol=0.5)


@pytest.mark.parametrize("metric, ours, stated, verdict", [
    ("val_accuracy", 0.962, 0.96, "matches"),
    ("val_accuracy", 0.90, 0.94, "lower"),
    ("val_loss", 0.149, 0.15, "matches"),
    ("val_loss", 0.35, 0.22, "higher"),
    ("train_loss", 0.0015, 0.002, "matches"),
    ("num_parameters", 50880, 50880, "matches"),
    ("num_parameters", 50386, 50880, "lower"),
    ("early_stop_epoch", 21.4, 20, "matches"),
    ("early_stop_epoch", None, 20, "missing"),
    ("std", 78.87550070784695, 78.87550070784701, "matches"),
    ("val_loss", 0.2, None, "not stated"),
])
def test_compare_judges_against_the_reports_rounded_numbers(metric, ours, stated, verdict):
    assert compare(metric, ours, stated).verdict == verdict


# ------------------------------------------------------------------ seed report
def test_seed_report_has_a_section_per_task(seed_report):
    p = parse(seed_report)
    assert seed_task_keys() == ["2a", "2c", "2d", "3a", "3b", "3c", "4a", "4b", "4d", "4e"]
    for key in seed_task_keys():
        assert f"task-{key}" in p.sections
    assert "overview" in p.sections
    assert_self_contained(seed_report.read_text(encoding="utf-8"))
    for img in p.images:
        decode_data_png(img["src"])
    for key in ("2c", "3a", "3b", "3c", "4a", "4b", "4d", "4e"):
        assert len(p.sections[f"task-{key}"]["images"]) == 2, key  # loss and accuracy
    files = seed_report.with_name("report_files")
    assert (files / "task3c-loss.png").exists() and (files / "task3c-loss.svg").exists()


def _numbers(p: ReportParser, key: str) -> dict[str, tuple[str, str, str]]:
    tables = [t for cls, t in p.sections[f"task-{key}"]["tables"] if cls == "seed-numbers"]
    assert len(tables) == 1, key
    return {r[0]: (r[1], r[2], r[3]) for r in table_rows(tables[0])}


def test_seed_report_states_the_reports_numbers_next_to_ours(seed_report):
    p = parse(seed_report)
    n = _numbers(p, "2a")
    assert n["pixel mean"][1] == "33.55274553571429" and n["pixel standard deviation"][1] == "78.87550070784701"
    assert n["pixel mean"][0] == "33.55274553571429" and n["pixel mean"][2].startswith("matches")
    assert _numbers(p, "2d")["parameter count"][:2] == ("50,880", "50,880")
    assert _numbers(p, "4d")["parameter count"][:2] == (f"{_num_parameters([59, 59]):,}", "50,386")
    stated = {"3c": (0.96, 0.15, 0.002, 1.0), "4a": (0.94, 0.22, 0.022, 0.99), "4b": (0.97, 0.12, 0.0008, 1.0),
              "4d": (0.96, 0.16, 0.0008, 1.0), "4e": (0.97, 0.23, 0.07, 0.94)}
    for key, (va, vl, tl, ta) in stated.items():
        n = _numbers(p, key)
        assert num(n["validation accuracy"][1]) == va
        assert num(n["validation loss"][1]) == vl
        assert num(n["training loss"][1]) == tl
        assert num(n["training accuracy"][1]) == ta
        ours = FAKE_RESULTS[f"task{key}"]
        assert num(n["validation accuracy"][0]) == pytest.approx(ours["val_accuracy"], abs=1e-4)
        assert num(n["validation loss"][0]) == pytest.approx(ours["val_loss"], rel=1e-3)
    assert _numbers(p, "4e")["early-stopping epoch"][:2] == ("20", "20")
    assert "(plot only)" in _numbers(p, "2c")["validation accuracy"][1]


def test_seed_report_sentences_say_how_we_compare(seed_report):
    p = parse(seed_report)
    assert "All 4 of our numbers land where the report's do" in p.text("task-3c")
    t4a = p.text("task-4a")
    assert "our validation loss 0.35 is higher than the report's 0.22" in t4a
    assert "our validation accuracy 0.9000 is lower than the report's 0.9400" in t4a
    assert "task3a's final validation loss 0.21 is lower than task2c's 0.31, as the report says" in p.text("task-3a")
    assert "Early stopping fired at step 2,000 (epoch 20" in p.text("task-4e")
    assert "agree" in p.text("task-2a") or "land where" in p.text("task-2a")
    for task in SEED_TASKS:
        assert p.text(f"task-{task.key}").startswith(task.title)
    assert "none: every run is its preset as shipped" in p.text("overview")
    checks = table_rows(p.tables["checks"][0]) if "checks" in p.tables else []
    assert checks == []  # the fake summary has no acceptance checks


def test_seed_report_notes_missing_presets(tmp_path):
    root = write_fake_reproduce(tmp_path / "out", presets=("task3c",))
    p = parse(build_seed_report(root, tmp_path / "seed.html"))
    for key in seed_task_keys():
        assert f"task-{key}" in p.sections
    assert "Not in this reproduce folder: task4a." in p.text("task-4a")
    assert "Not in this reproduce folder: task2c, task2c-noshuffle." in p.text("task-2c")
    assert len(p.sections["task-3c"]["images"]) == 2  # task3c alone: loss and accuracy
    assert len(p.sections["task-2c"]["images"]) == 0
    assert "All 4 of our numbers land where the report's do" in p.text("task-3c")


def test_seed_report_without_summary_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MlpkitError, match="summary.json"):
        build_seed_report(tmp_path / "empty", tmp_path / "r.html")
    with pytest.raises(MlpkitError, match="does not exist"):
        build_seed_report(tmp_path / "nope", tmp_path / "r.html")


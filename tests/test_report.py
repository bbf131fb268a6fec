"""The run report (mlpkit.report) and its figures.

Real runs on a slice of MNIST check the run report against the files it was made from;
synthetic run folders (written by report_fakes, no training) check the edge cases.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mlpkit.core.errors import MlpkitError
from mlpkit.report import build_report
from mlpkit.report.figures import encode_png_gray, pixel_weights
from mlpkit.report.provenance import preset_overrides
from mlpkit.report.sections import labels
from mlpkit.runs.config import with_overrides
from mlpkit.runs.folder import load_run
from mlpkit.seed.presets import preset_config
from mlpkit.workflows.configs import resolve_config
from report_fakes import assert_self_contained, decode_data_png, num, parse, table_rows, write_fake_run

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, mnist_path):
    """A short real run on MNIST (2,000 training / 2,000 validation images) and a synthetic
    task4a run folder whose early stopping fired at step 320 (600 validation images)."""
    from mlpkit.workflows.experiment import run_experiment

    root = tmp_path_factory.mktemp("runs")
    cfg = with_overrides(resolve_config("task3c"), ["epochs=2", "n_train=2000", "data.n_val=2000"])
    run_experiment(cfg, root / "task3c", data_dir=mnist_path, progress=False, log=lambda *_: None)
    fake = write_fake_run(root / "task4a", "task4a", val_accuracy=0.93, val_loss=0.24, early_stop_step=320)
    return [root / "task3c", fake]


@pytest.fixture(scope="module")
def real_report(real_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert build_report(real_runs, out) == out
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
    for stem in (
        "loss",
        "accuracy",
        "01-task3c-confusion",
        "01-task3c-weights",
        "01-task3c-misclassified",
        "02-task4a-confusion",
        "02-task4a-weights",
        "02-task4a-misclassified",
    ):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
        assert ET.parse(files / f"{stem}.svg").getroot().tag.endswith("svg")
        assert (files / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in names if n.startswith(".")]  # no temporary files left behind
    # every embedded figure (not the digit tiles) is one of the saved PNGs
    saved = {base64.b64encode((files / n).read_bytes()).decode() for n in names if n.endswith(".png")}
    embedded = [
        i["src"].split(",", 1)[1]
        for i in parse(real_report).images
        if "digit" not in i.get("alt", "") and not i.get("alt", "").startswith("validation image")
    ]
    assert embedded and all(e in saved for e in embedded)


def test_preset_overrides_name_what_a_run_changed(real_runs):
    assert preset_overrides(load_run(real_runs[0]), preset_config) == [
        "data.n_train=2000",
        "data.n_val=2000",
        "train.epochs=2",
    ]
    assert preset_overrides(load_run(real_runs[1]), preset_config) == []  # the synthetic run is task4a as shipped


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
    assert labels([a, b, c]) == ["task3c (a)", "task3c (b)", "task4a"]


def test_run_without_predictions_or_weights_still_reports(tmp_path):
    a = write_fake_run(tmp_path / "a", predictions=False, weights=False)
    p = parse(build_report([a], tmp_path / "r.html"))
    for sid in ("confusion-1", "per-class-1", "confused-pairs-1", "gallery-1", "weights-1"):
        assert sid in p.sections
    assert "no predictions.npz" in p.text("confusion-1")
    assert "no weights.npz" in p.text("weights-1")


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing", "does not exist"),
        ("no-metrics", "missing metrics.json"),
        ("bad-json", "unreadable"),
    ],
)
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


# ------------------------------------------------------------------ the package's boundaries
SRC = REPO / "src" / "mlpkit"


def test_figures_leave_the_matplotlib_backend_alone_and_never_import_pyplot(tmp_path):
    """A notebook user's backend survives a report: figures are drawn on Figure objects."""
    script = f"""
import sys
import matplotlib
matplotlib.use("svg")  # any backend that is not Agg
sys.path.insert(0, {str(REPO / "tests")!r})
from pathlib import Path
from report_fakes import write_fake_run
from mlpkit.report import build_report
run = write_fake_run(Path({str(tmp_path)!r}) / "run", "task3c", early_stop_step=300)
build_report([run], Path({str(tmp_path)!r}) / "r.html")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"]
    assert len(list((tmp_path / "r_files").glob("*.png"))) == 5  # loss, accuracy, confusion, weights, gallery


def test_importing_report_and_seed_loads_neither_matplotlib_nor_jinja2():
    script = (
        "import sys, mlpkit.report, mlpkit.seed; "
        "print(sorted(m for m in ('matplotlib', 'jinja2', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_report_package_knows_nothing_of_the_assignment():
    """Task keys, the report's numbers and the seed package stay out of mlpkit/report."""
    import tomllib

    reference = tomllib.loads((SRC / "seed" / "reference.toml").read_text(encoding="utf-8"))
    numbers = [repr(v) for v in reference["data"].values()]
    numbers += [str(e["num_parameters"]) for e in reference["presets"].values() if "num_parameters" in e]
    forbidden = re.compile(r"task\d[a-e]?|mlpkit\.seed|SEED_|" + "|".join(re.escape(n) for n in numbers))
    files = [p for p in (SRC / "report").rglob("*") if p.is_file() and p.suffix in (".py", ".j2", ".css")]
    assert {p.name for p in files} >= {"page.py", "run_report.py", "page.html.j2", "report.css"}
    hits = [
        f"{p.relative_to(SRC)}: {m.group(0)}" for p in files for m in forbidden.finditer(p.read_text(encoding="utf-8"))
    ]
    assert hits == []


def test_no_markup_in_python_code():
    """Markup lives in templates: no HTML tags in the Python of report and seed."""
    tag = re.compile(r"</?(?:p|div|span|table|tr|td|th|section|figure|img|a|h[1-6]|blockquote|br|style)[\s>/]")
    files = list((SRC / "report").glob("*.py")) + list((SRC / "seed").glob("*.py"))
    hits = [f"{p.name}: {m.group(0)}" for p in files for m in tag.finditer(p.read_text(encoding="utf-8"))]
    assert hits == []


def test_page_text_is_escaped_and_the_stylesheet_inlined(tmp_path):
    from mlpkit.report.page import stylesheet

    run = write_fake_run(tmp_path / "run", "task3c", predictions=False, weights=False)
    config = (run / "config.toml").read_text(encoding="utf-8")
    (run / "config.toml").write_text(config.replace('name = "task3c"', 'name = "<b>bold</b> & co"'), encoding="utf-8")
    html_text = build_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>" not in html_text and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html_text
    assert f"<style>{stylesheet()}</style>" in html_text and ".gallery" in stylesheet()
    assert_self_contained(html_text)


def test_digit_tiles_are_grayscale_pngs_made_by_pillow():
    from PIL import Image

    img = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    decoded = Image.open(io.BytesIO(encode_png_gray(img)))
    assert decoded.format == "PNG" and decoded.mode == "L" and decoded.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(decoded), img)
    with pytest.raises(ValueError, match="2-D"):
        encode_png_gray(np.zeros((2, 2, 3), dtype=np.uint8))


@pytest.mark.parametrize("package", ["mlpkit.report", "mlpkit.seed"])
def test_public_names_are_listed_and_resolve(package):
    import importlib

    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(module._EXPORTS)
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_a_run_that_changed_its_preset_says_so_beside_the_name(tmp_path):
    """--set momentum=0.8 keeps the preset's description ("momentum 0.9"): the page names the change."""
    a = write_fake_run(tmp_path / "a", "task3c", overrides=["momentum=0.8"], predictions=False, weights=False)
    b = write_fake_run(tmp_path / "b", "task3c", predictions=False, weights=False)
    p = parse(build_report([a, b], tmp_path / "r.html", base_configs=preset_config))
    changed, shipped = p.text("run-1"), p.text("run-2")
    assert (
        "Preset task3c with train.momentum=0.8 (the preset's description: “All tricks: task3b + momentum 0.9" in changed
    )
    assert shipped.startswith("Run 2: task3c (b) All tricks: task3b + momentum 0.9") and "Preset" not in shipped

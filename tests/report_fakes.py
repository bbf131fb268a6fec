"""Synthetic run and reproduce folders (no training) and a reader of report pages, shared by
the report, seed-report and browser tests."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.fileio import atomic_save_npz, atomic_write_json, atomic_write_text
from mlpkit.runs.completion import commit_results
from mlpkit.runs.config import to_toml, with_overrides
from mlpkit.runs.environment import environment_info
from mlpkit.workflows.configs import resolve_config

SEED_PRESETS = ("task2c", "task2c-noshuffle", "task3a", "task3b", "task3c", "task4a", "task4b", "task4d", "task4e")


# ------------------------------------------------------------------ synthetic run folders
def num_parameters_of(hidden: list[int]) -> int:
    sizes = [785, *hidden, 10]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def write_fake_run(
    path: Path,
    preset: str = "task3c",
    *,
    val_accuracy: float = 0.96,
    val_loss: float = 0.15,
    train_accuracy: float = 1.0,
    train_loss: float = 0.002,
    early_stop_step: int | None = None,
    steps: int = 400,
    steps_per_epoch: int = 100,
    n_val: int = 600,
    seed: int = 0,
    overrides: Sequence[str] = (),
    predictions: bool = True,
    weights: bool = True,
) -> Path:
    """A finished run folder with the layout of mlpkit.runs.folder, made of synthetic numbers (no training)."""
    rng = np.random.default_rng(seed)
    cfg = with_overrides(resolve_config(preset), list(overrides))
    hidden = list(cfg.model.hidden)
    path.mkdir(parents=True)
    atomic_write_text(path / "config.toml", to_toml(cfg))
    atomic_write_json(path / "environment.json", environment_info(seed=cfg.seed, threads=None))
    t = np.arange(1, steps + 1)
    loss = train_loss + 2.0 * np.exp(-t / (steps / 8)) + rng.normal(0, 0.05, steps) * np.exp(-t / steps)
    every = steps_per_epoch // 5
    v = np.arange(every, steps + 1, every)
    history = {
        "train": {"step": t.tolist(), "loss": np.abs(loss).tolist()},
        "validation": {
            "step": v.tolist(),
            "epoch": (v / steps_per_epoch).tolist(),
            "val_loss": (val_loss + 1.5 * np.exp(-v / (steps / 6))).tolist(),
            "val_accuracy": (val_accuracy - 0.25 * np.exp(-v / (steps / 6))).tolist(),
            "train_loss": (train_loss + 1.5 * np.exp(-v / (steps / 6))).tolist(),
            "train_accuracy": (train_accuracy - 0.2 * np.exp(-v / (steps / 6))).tolist(),
        },
    }
    atomic_write_json(path / "history.json", history, indent=None)
    metrics = {
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
        "num_parameters": num_parameters_of(hidden),
        "steps": steps,
        "epochs_completed": steps / steps_per_epoch,
        "early_stop_step": early_stop_step,
        "best_val_loss": val_loss,
        "best_val_loss_step": steps,
        "best_val_accuracy": val_accuracy,
        "last_epoch_mean_batch_loss": train_loss,
        "steps_per_epoch": steps_per_epoch,
        "validate_every": every,
        "wall_time_s": 12.5,
        "normalization": {"mean": 33.55, "std": 78.87},
        "interrupted": False,
    }
    if weights:
        sizes = [785, *hidden, 10]
        arrays = {
            f"layers.{i}.weight": rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
        }
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
        atomic_save_npz(
            path / "predictions.npz",
            {
                "y_true": y_true.astype(np.int64),
                "y_pred": y_pred.astype(np.int64),
                "proba": proba,
                "misclassified_index": order.astype(np.int64),
                "misclassified_images": rng.integers(0, 256, (len(order), 28, 28)).astype(np.uint8),
            },
        )
    commit_results(path, metrics, interrupted=False)  # metrics.json last, with the checksums: a finished run
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


def write_fake_reproduce(
    root: Path, *, presets: Sequence[str] = SEED_PRESETS, results: dict[str, dict[str, Any]] | None = None
) -> Path:
    """A folder laid out like ``mlpkit reproduce --out DIR`` leaves it (see mlpkit.workflows.reproduce);
    ``results`` replaces some of FAKE_RESULTS' final numbers per preset."""
    root.mkdir(parents=True)
    entries = {}
    for i, name in enumerate(presets):
        res = {**FAKE_RESULTS[name], **(results or {}).get(name, {})}
        steps, spe = (2500, 100) if name == "task4e" else (400, 100)
        write_fake_run(root / name, name, steps=steps, steps_per_epoch=spe, seed=i, **res)
        ref = {
            "val_accuracy": None,
            "val_loss": None,
            "train_loss": None,
            "train_accuracy": None,
            "early_stop_epoch": None,
            "note": "plot only" if name not in REFERENCE else "",
        }
        ref.update(REFERENCE.get(name, {}))
        entries[name] = {
            "run_dir": name,
            "metrics": json.loads((root / name / "metrics.json").read_text()),
            "reference": ref,
        }
    (root / "figures").mkdir()
    atomic_write_json(
        root / "summary.json",
        {
            "data": {"mean": 33.55274553571429, "std": 78.87550070784695, "n_train": 20000, "n_val": 10000},
            "wall_time_s": 321.0,
            "presets": entries,
            "comparisons": [
                {
                    "name": "task2c-3a-3b-3c",
                    "presets": ["task2c", "task3a", "task3b", "task3c"],
                    "figures": ["figures/task2c-3a-3b-3c-loss.png"],
                }
            ],
        },
    )
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
    raw = base64.b64decode(src[len(prefix) :], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(raw), format="png")


def table_rows(table: list[list[str]]) -> list[list[str]]:
    return [r for r in table[1:] if r]


def num(text: str) -> float:
    return float(text.replace(",", "").replace("%", ""))


def assert_self_contained(html_text: str) -> None:
    assert "<script" not in html_text.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", html_text, re.IGNORECASE)
    assert "Content-Security-Policy" in html_text
    for m in re.finditer(r"""<(?:img|link)[^>]*?(?:src|href)="([^"]*)""", html_text):
        assert m.group(1).startswith("data:"), m.group(1)[:80]

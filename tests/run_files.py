"""Comparing run folders byte for byte: the one helper the resume, determinism and Ctrl-C tests share."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def weights_bytes(run_dir: Path) -> dict[str, bytes]:
    """Every array of the run's weights.npz as raw bytes (equal bytes: the same run)."""
    with np.load(run_dir / "weights.npz", allow_pickle=False) as archive:
        return {k: archive[k].tobytes() for k in archive.files}


def assert_same_run(a: Path, b: Path, *, predictions: bool = True) -> None:
    """Weights, history and metrics (all but the wall time) equal; with ``predictions``, also
    every array of predictions.npz."""
    assert weights_bytes(a) == weights_bytes(b)
    assert (a / "history.json").read_bytes() == (b / "history.json").read_bytes()
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    ma.pop("wall_time_s"), mb.pop("wall_time_s")
    assert ma == mb
    if predictions:
        with np.load(a / "predictions.npz") as pa, np.load(b / "predictions.npz") as pb:
            assert all(np.array_equal(pa[k], pb[k]) for k in pa.files)

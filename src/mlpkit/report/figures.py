"""The figures a report adds to the loss and accuracy curves of :mod:`mlpkit.report.plots`: the
confusion matrix with per-class accuracy, the first layer's weights as images, a gallery of
misclassified digits. Each is written as PNG and SVG; all take plain arrays read from a run
folder, never live objects.

Also a minimal grayscale PNG encoder (stdlib ``zlib``), so one small image per digit can be
embedded in HTML without drawing a matplotlib figure for each.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from mlpkit.report import plots
from mlpkit.report.plots import _pyplot

PNG_DPI = 150


def save_figure(fig, path: str | Path) -> list[Path]:
    """Write ``fig`` as ``path``.png (at PNG_DPI) and ``path``.svg, atomically; close it."""
    return plots.save_figure(fig, path, dpi=PNG_DPI)


def confusion_figure(confusion: np.ndarray, path: str | Path, *, title: str = "") -> list[Path]:
    """C[i, j] (true i, predicted j) as a heat map with every count written in its cell;
    each row is labelled with that class's accuracy (the diagonal over the row sum)."""
    plt = _pyplot()
    confusion = np.asarray(confusion)
    k = confusion.shape[0]
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = confusion / totals[:, None]
        recall = np.diag(confusion) / totals
    fig, ax = plt.subplots(figsize=(6.0, 5.4))
    # colour by row share, on a square-root scale so small confusions stay visible
    ax.imshow(np.sqrt(np.nan_to_num(rates)), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            n = int(confusion[i, j])
            if n == 0:
                continue
            dark = np.sqrt(np.nan_to_num(rates[i, j])) > 0.6
            ax.text(j, i, str(n), ha="center", va="center", fontsize=9,
                    color="white" if dark else ("#b2182b" if i != j else "black"))
    ax.set_xticks(range(k), [str(j) for j in range(k)])
    ax.set_yticks(range(k), [f"{i}  ({r:.1%})" if np.isfinite(r) else f"{i}  (-)" for i, r in enumerate(recall)])
    ax.set_xlabel("predicted digit", fontsize=11)
    ax.set_ylabel("true digit  (per-class accuracy)", fontsize=11)
    ax.set_title(title or f"confusion matrix ({int(confusion.sum()):,} validation images)", fontsize=11)
    ax.tick_params(length=0, labelsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def pixel_weights(weight: np.ndarray, *, side: int = 28) -> np.ndarray | None:
    """First-layer weights (n_inputs, n_hidden) -> (n_hidden, side, side) images of the pixel
    rows (a bias row after them is dropped); None when there are fewer than side^2 rows."""
    weight = np.asarray(weight, dtype=np.float64)
    n_pix = side * side
    if weight.ndim != 2 or weight.shape[0] < n_pix:
        return None
    return weight[:n_pix].T.reshape(-1, side, side)


def mosaic(tiles: np.ndarray, *, cols: int, gap: int = 2, label_space: int = 0) -> np.ndarray:
    """Tiles (n, h, w) laid out in rows of ``cols`` on a NaN background (drawn as white), with
    ``gap`` pixels between tiles and ``label_space`` empty pixels above each for a caption."""
    tiles = np.asarray(tiles, dtype=np.float64)
    n, h, w = tiles.shape
    rows = max(1, math.ceil(n / cols))
    ch, cw = h + gap + label_space, w + gap
    out = np.full((rows * ch + gap, cols * cw + gap), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * ch + gap + label_space, c * cw + gap
        out[top:top + h, left:left + w] = tiles[i]
    return out


def weights_figure(images: np.ndarray, path: str | Path, *, title: str = "", max_units: int = 128) -> list[Path]:
    """One 28x28 image per hidden unit; red positive, blue negative, each unit scaled to its own
    largest |w| so that the pattern (not the magnitude) is what one sees."""
    plt = _pyplot()
    images = np.asarray(images, dtype=np.float64)[:max_units]
    n, side = len(images), images.shape[1]
    lim = np.max(np.abs(images.reshape(n, -1)), axis=1)
    scaled = images / np.where(lim > 0, lim, 1.0)[:, None, None]
    cols = min(16, max(1, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    label, gap = 7, 2
    grid = mosaic(scaled, cols=cols, gap=gap, label_space=label)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(cols * 0.62 + 0.4, rows * 0.74 + 0.8))
    ax.imshow(grid, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, cols)
        ax.text(c * (side + gap) + gap + side / 2, r * (side + gap + label) + gap + label - 1, str(i),
                ha="center", va="bottom", fontsize=6, color="#444")
    ax.set_axis_off()
    ax.set_title(title or f"first-layer weights of {n} hidden units (red +, blue \u2212)", fontsize=11)
    fig.tight_layout(pad=0.4)
    return save_figure(fig, path)


def gallery_figure(images: np.ndarray, y_true: Sequence[int], y_pred: Sequence[int], confidence: Sequence[float],
                   path: str | Path, *, title: str = "", cols: int = 12) -> list[Path]:
    """Misclassified digits, each captioned "true -> predicted" with the predicted class's probability."""
    plt = _pyplot()
    images = np.asarray(images, dtype=np.float64)
    n, side = len(images), images.shape[1]
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    label, gap = 11, 3
    grid = mosaic(images, cols=cols, gap=gap, label_space=label)
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(cols * 0.95 + 0.3, rows * 1.3 + 0.7))
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, cols)
        ax.text(c * (side + gap) + gap + side / 2, r * (side + gap + label) + gap + label - 1.5,
                f"{int(y_true[i])}\u2192{int(y_pred[i])} {float(confidence[i]):.0%}",
                ha="center", va="bottom", fontsize=8, color="#b2182b")
    ax.set_axis_off()
    ax.set_title(title or "misclassified validation digits: true\u2192predicted, confidence", fontsize=11)
    fig.tight_layout(pad=0.4)
    return save_figure(fig, path)


def encode_png_gray(image: np.ndarray) -> bytes:
    """A uint8 (h, w) array as an 8-bit grayscale PNG (no filtering, zlib level 9)."""
    image = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if image.ndim != 2:
        raise ValueError(f"encode_png_gray needs a 2-D image, got shape {image.shape}")
    h, w = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")

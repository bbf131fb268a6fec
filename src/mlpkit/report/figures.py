"""The figures a report adds to the loss and accuracy curves of :mod:`mlpkit.report.plots`: the
confusion matrix with per-class accuracy, the first layer's weights as images, a gallery of
misclassified digits. Each is written as PNG and SVG; all take plain arrays read from a run
folder, never live objects, and draw without pyplot (see :mod:`mlpkit.report.plots`).

Single digits are encoded as small grayscale PNGs with Pillow, so each can be embedded in a
page without drawing a matplotlib figure for it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpkit.report import plots
from mlpkit.report.plots import new_figure

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

PNG_DPI = 150


def save_figure(fig: Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` as ``path``.png (at PNG_DPI) and ``path``.svg, atomically."""
    return plots.save_figure(fig, path, dpi=PNG_DPI)


def confusion_figure(
    confusion: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    labels: Sequence[str] | None = None,
    noun: str = "digit",
    rows: str = "validation images",
) -> list[Path]:
    """C[i, j] (true i, predicted j) as a heat map with every count written in its cell;
    each row is labelled with that class's accuracy (the diagonal over the row sum). ``labels``
    names the classes (default 0..K-1), ``noun`` them on the axes, ``rows`` what was counted."""
    confusion = np.asarray(confusion)
    k = confusion.shape[0]
    names = [str(j) for j in range(k)] if labels is None else [str(lbl) for lbl in labels]
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = confusion / totals[:, None]
        recall = np.diag(confusion) / totals
    longest = max((len(n) for n in names), default=1)
    fig, ax = new_figure(6.0 + min(0.1 * max(longest - 1, 0), 4.0), 5.4)  # room for long class names
    # colour by row share, on a square-root scale so small confusions stay visible
    ax.imshow(np.sqrt(np.nan_to_num(rates)), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            n = int(confusion[i, j])
            if n == 0:
                continue
            dark = np.sqrt(np.nan_to_num(rates[i, j])) > 0.6
            ax.text(
                j,
                i,
                str(n),
                ha="center",
                va="center",
                fontsize=9 if k <= 12 else max(4.0, 108 / k),  # smaller counts in smaller cells
                color="white" if dark else ("#b2182b" if i != j else "black"),
            )
    ax.set_xticks(
        range(k),
        names,
        rotation=0 if max(map(len, names)) <= 2 else 45,
        ha="center" if max(map(len, names)) <= 2 else "right",
    )
    ax.set_yticks(range(k), [f"{c}  ({r:.1%})" if np.isfinite(r) else f"{c}  (-)" for c, r in zip(names, recall)])
    ax.set_xlabel(f"predicted {noun}", fontsize=11)
    ax.set_ylabel(f"true {noun}  (per-class accuracy)", fontsize=11)
    ax.set_title(title or f"confusion matrix ({int(confusion.sum()):,} {rows})", fontsize=11)
    ax.tick_params(length=0, labelsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _colormap(name: str) -> Colormap:
    import matplotlib

    return matplotlib.colormaps[name]


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
        out[top : top + h, left : left + w] = tiles[i]
    return out


def weights_figure(images: np.ndarray, path: str | Path, *, title: str = "", max_units: int = 128) -> list[Path]:
    """One 28x28 image per hidden unit; red positive, blue negative, each unit scaled to its own
    largest |w| so that the pattern (not the magnitude) is what one sees."""
    images = np.asarray(images, dtype=np.float64)[:max_units]
    n, side = len(images), images.shape[1]
    lim = np.max(np.abs(images.reshape(n, -1)), axis=1)
    scaled = images / np.where(lim > 0, lim, 1.0)[:, None, None]
    cols = min(16, max(1, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    label, gap = 7, 2
    grid = mosaic(scaled, cols=cols, gap=gap, label_space=label)
    cmap = _colormap("RdBu_r").with_extremes(bad="white")
    fig, ax = new_figure(cols * 0.62 + 0.4, rows * 0.74 + 0.8)
    ax.imshow(grid, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, cols)
        ax.text(
            c * (side + gap) + gap + side / 2,
            r * (side + gap + label) + gap + label - 1,
            str(i),
            ha="center",
            va="bottom",
            fontsize=6,
            color="#444",
        )
    ax.set_axis_off()
    ax.set_title(title or f"first-layer weights of {n} hidden units (red +, blue \u2212)", fontsize=11)
    fig.tight_layout(pad=0.4)
    return save_figure(fig, path)


def gallery_figure(
    images: np.ndarray,
    y_true: Sequence[int | str],
    y_pred: Sequence[int | str],
    confidence: Sequence[float],
    path: str | Path,
    *,
    title: str = "",
    cols: int = 12,
) -> list[Path]:
    """Misclassified digits, each captioned "true -> predicted" with the predicted class's probability."""
    images = np.asarray(images, dtype=np.float64)
    n, side = len(images), images.shape[1]
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    label, gap = 11, 3
    grid = mosaic(images, cols=cols, gap=gap, label_space=label)
    cmap = _colormap("gray_r").with_extremes(bad="white")
    fig, ax = new_figure(cols * 0.95 + 0.3, rows * 1.3 + 0.7)
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, cols)
        ax.text(
            c * (side + gap) + gap + side / 2,
            r * (side + gap + label) + gap + label - 1.5,
            f"{y_true[i]}\u2192{y_pred[i]} {float(confidence[i]):.0%}",
            ha="center",
            va="bottom",
            fontsize=8,
            color="#b2182b",
        )
    ax.set_axis_off()
    ax.set_title(title or "misclassified validation digits: true\u2192predicted, confidence", fontsize=11)
    fig.tight_layout(pad=0.4)
    return save_figure(fig, path)


def encode_png_gray(image: np.ndarray) -> bytes:
    """A uint8 (h, w) array as an 8-bit grayscale PNG (Pillow)."""
    from PIL import Image

    image = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if image.ndim != 2:
        raise ValueError(f"encode_png_gray needs a 2-D image, got shape {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()

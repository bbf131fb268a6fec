"""Image files as MNIST-style inputs: any size, colour or background in, 28x28 digits out.

MNIST's own recipe (LeCun et al.): the ink is bright on black, fitted into a 20x20 box keeping
its aspect ratio (anti-aliased), then placed in a 28x28 field so that its centre of mass lies
at the field's centre. `mnist_style` applies it to a user's picture, so a model trained on
MNIST sees the kind of input it learned; ``predict`` and the web app share this one function.
Pillow is imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.core.errors import DataError

__all__ = ["MNIST_BOX", "MNIST_SIZE", "decode_image", "load_image", "mnist_style", "resize_gray"]

MNIST_SIZE = 28  # the field
MNIST_BOX = 20  # the longer side of the ink after scaling
#: MNIST's centre of mass, in pixel-index coordinates (the training set averages 13.99, 14.00)
MNIST_CENTRE = 14.0
INK_THRESHOLD = 0.3  # of the brightest pixel: fainter ones (blur, JPEG noise) are outside the bounding box
_MAX_PIXELS = 50_000_000  # a bigger picture is refused before it is decoded (a "decompression bomb")


def load_image(path: str | Path) -> np.ndarray:
    """The grayscale pixels (H, W) of an image file, float64 in 0..255.

    PNG, JPEG, BMP, GIF (the first frame) and whatever else Pillow reads; palette, RGB,
    grayscale and 16-bit images; transparent pixels are composited on white, as a viewer shows
    them.

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    np.ndarray
        (height, width) float64, 0 black .. 255 white.

    Raises
    ------
    DataError
        Naming the file, if it is missing, unreadable, not an image or has no pixels.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.width * img.height > _MAX_PIXELS:
                raise DataError(f"image {path} is {img.width}x{img.height}, over {_MAX_PIXELS} pixels; refused")
            img.seek(0)
            img.load()
            pixels = _gray(img)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"image {path} is unreadable: {exc}") from None
    if pixels.size == 0:
        raise DataError(f"image {path} has no pixels")
    return pixels


def decode_image(data: bytes, *, name: str = "image", max_side: int = 2048) -> np.ndarray:
    """The grayscale pixels (H, W) of an image file's bytes (a drawing a browser sent), as
    `load_image` reads a file: float64 in 0..255, transparency composited on white.

    Parameters
    ----------
    data : bytes
        The encoded image (PNG, JPEG, ... whatever Pillow reads).
    name : str
        What to call the image in errors.
    max_side : int
        Wider or taller images are refused from their header, before any pixel is decoded.

    Raises
    ------
    DataError
        If the bytes are not a readable image, are larger than ``max_side`` either way, or
        have no pixels.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width > max_side or img.height > max_side:
                raise DataError(f"{name} is {img.width}x{img.height}, over {max_side}x{max_side}; refused")
            img.seek(0)
            img.load()
            pixels = _gray(img)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(f"{name} is not a readable image: {exc}") from None
    if pixels.size == 0:
        raise DataError(f"{name} has no pixels")
    return pixels


def _gray(img: Any) -> np.ndarray:
    """Luminance in 0..255 (ITU-R 601-2, Pillow's "L"), alpha composited on white."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.float64) / 257.0
    if img.mode in ("I", "F"):
        x = np.asarray(img, dtype=np.float64)
        top = float(x.max()) if x.size else 0.0
        return x / 257.0 if top > 255 else x
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if has_alpha and img.mode in ("RGBA", "LA") and img.getchannel("A").getextrema() == (255, 255):
        has_alpha = False  # opaque everywhere (a browser canvas's PNG): compositing would change nothing
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float64)


def mnist_style(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """A picture of one digit (H, W), any size or background, as MNIST draws digits.

    Steps: invert when the background is light (the median of the border pixels above
    mid-grey), subtract that background and stretch the ink to 0..255; crop to the bounding
    box of the pixels above `INK_THRESHOLD` of the brightest; scale the longer side to 20 px
    keeping the aspect ratio (Pillow's Lanczos filter on the float image); paste into a 28x28
    field so that the centre of mass lands at `MNIST_CENTRE` (integer shift, as MNIST did),
    kept inside the field.

    Parameters
    ----------
    image : np.ndarray
        (H, W) grayscale pixels in 0..255 (as `load_image` returns).
    name : str
        What to call the image in errors (its file name).

    Returns
    -------
    np.ndarray
        (28, 28) float64 in 0..255, bright ink on black.

    Raises
    ------
    DataError
        If the image is not 2-D, not finite, or holds no ink (a blank picture).
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise DataError(f"{name}: expected a 2-D grayscale image, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{name}: pixels are not all finite")
    border = np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])
    background = float(np.median(border))
    if background > 127.5:
        x, background = 255.0 - x, 255.0 - background
    x = np.clip(x - background, 0.0, None)
    top = float(x.max())
    if top <= 0:
        raise DataError(f"{name}: the image is blank (no ink on its background)")
    x *= 255.0 / top
    rows = np.flatnonzero((x > INK_THRESHOLD * 255.0).any(axis=1))
    cols = np.flatnonzero((x > INK_THRESHOLD * 255.0).any(axis=0))
    x = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = _fit_box(x)
    return _centre(digit)


def resize_gray(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Grayscale pixels resized (Lanczos) to ``shape`` (rows, columns), 0..255: how a model
    trained on a folder of pictures (not MNIST-style digits) reads a new picture."""
    from PIL import Image

    rows, cols = shape
    x = np.asarray(image, dtype=np.float32)
    if x.shape == (rows, cols):
        return x.astype(np.float64)
    resized = Image.fromarray(x).resize((cols, rows), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 255.0)


def _fit_box(x: np.ndarray) -> np.ndarray:
    """Scale so the longer side is `MNIST_BOX` pixels, keeping the aspect ratio; 0..255."""
    from PIL import Image

    h, w = x.shape
    scale = MNIST_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(x.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 255.0)


def _centre(digit: np.ndarray) -> np.ndarray:
    """Paste into the 28x28 field with the centre of mass at `MNIST_CENTRE`, kept inside."""
    h, w = digit.shape
    total = digit.sum()
    if total > 0:
        cy = float((digit.sum(axis=1) * np.arange(h)).sum() / total)
        cx = float((digit.sum(axis=0) * np.arange(w)).sum() / total)
    else:  # ink only below the clip of the resampling: centre the box
        cy, cx = (h - 1) / 2, (w - 1) / 2
    top = min(max(int(round(MNIST_CENTRE - cy)), 0), MNIST_SIZE - h)
    left = min(max(int(round(MNIST_CENTRE - cx)), 0), MNIST_SIZE - w)
    field = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float64)
    field[top : top + h, left : left + w] = digit
    return field

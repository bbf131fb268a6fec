"""A data set as a folder of images with one subfolder per class (torchvision's ImageFolder layout).

Pixels are read with `mlpkit.data.images.load_image`, the function ``predict`` uses, so a model
sees its training images and the files it is later asked about converted alike (grayscale,
transparency on white), then rounded to uint8. Hidden files (a leading dot: ``.DS_Store``) are
skipped; anything else that is not an image of the common size is an error naming it, because
a stray file silently dropped or resized would change what the model learns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpkit.core.errors import DataError
from mlpkit.data.dataset import Dataset
from mlpkit.data.file_checks import one_line, user_dataset

__all__ = ["read_image_folder"]


def read_image_folder(folder: str | Path) -> Dataset:
    """Grayscale uint8 images (n, height, width) labelled by the name of their subfolder; no test part.

    Parameters
    ----------
    folder : str or Path
        Holds one subfolder per class, each holding that class's images (PNG, JPEG, BMP, GIF
        or anything else Pillow reads), all of one size.

    Returns
    -------
    Dataset
        String labels; ``classes`` the subfolder names, sorted; ``input_shape`` (height, width).

    Raises
    ------
    DataError
        Naming the file or folder: no class subfolders, a file beside them, an empty class, a
        nested folder, a file that is not a readable image, an image of another size than the
        first (both sizes given), a single class, or a folder that cannot be listed.
    """
    folder = Path(folder)
    class_dirs = _visible(folder)
    for entry in class_dirs:
        if not entry.is_dir():
            raise DataError(
                f"{entry}: a file beside the class folders of {folder} (each image goes in its class's folder)"
            )
    if not class_dirs:
        raise DataError(f"{folder}: no class subfolders (expected one subfolder of images per class)")
    images: list[np.ndarray] = []
    labels: list[str] = []
    first: tuple[Path, tuple[int, ...]] | None = None
    for class_dir in class_dirs:
        files = _visible(class_dir)
        if not files:
            raise DataError(f"{class_dir}: class folder holds no images")
        for file in files:
            if file.is_dir():
                raise DataError(f"{file}: a folder inside a class folder (class folders hold only images)")
            pixels = _pixels(file)
            if first is None:
                first = (file, pixels.shape)
            elif pixels.shape != first[1]:
                raise DataError(
                    f"{file}: image is {_size(pixels.shape)} but {first[0]} is {_size(first[1])}"
                    " (all images must have one size)"
                )
            images.append(pixels)
            labels.append(class_dir.name)
    classes = tuple(d.name for d in class_dirs)
    x = np.stack(images)
    del images

    def locate(row: int, feature: int | None) -> str:  # pragma: no cover - uint8 pixels and folder names pass
        return f"image {row}"

    return user_dataset(str(folder), x, np.asarray(labels, dtype=str), locate=locate, classes=classes)


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` not hidden (no leading dot), sorted by name."""
    try:
        return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({one_line(exc.strerror or str(exc))})") from None


def _pixels(file: Path) -> np.ndarray:
    from mlpkit.data.images import load_image

    return np.rint(load_image(file)).astype(np.uint8)


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} pixels (width x height)"

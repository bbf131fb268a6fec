"""MNIST-style preprocessing of image files: real MNIST digits written out at other sizes,
positions, colours and formats come back classified as the originals are; drawn digits too."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlpkit.core.errors import DataError
from mlpkit.data.images import MNIST_CENTRE, load_image, mnist_style
from mlpkit.data.mnist import load_mnist
from mlpkit.data.normalize import Normalizer
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.trainer import Trainer

N_IMAGES = 500


@pytest.fixture(scope="module")
def mnist(mnist_path):
    return load_mnist(mnist_path, download=False)


@pytest.fixture(scope="module")
def classifier(mnist):
    """An MLP trained for 2 epochs on 20,000 MNIST images, and its normalizer."""
    norm = Normalizer.fit(mnist.train_images[:20_000])
    model = MLP([64], activation="relu", dtype="float32", bias="input_column")
    rng = np.random.default_rng(0)
    model.init_weights(rng, "he_normal")
    x = norm.apply(mnist.train_images[:20_000], model.dtype, bias_column=True)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.01, momentum=0.9), rng=rng, epochs=2, batch_size=32,
                      engine="numpy")  # fmt: skip
    trainer.fit(x, mnist.train_labels[:20_000].astype(np.intp))
    return lambda images: model.predict(norm.apply(np.asarray(images), model.dtype, bias_column=True), prepared=True)


def _variant(i: int, digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """The MNIST digit (28, 28) uint8 as another picture: size, place, colour, format."""
    img = Image.fromarray(digit)
    kind = i % 5
    if kind == 0:  # bigger
        return img.resize((56, 56), Image.Resampling.BILINEAR), "png"
    if kind == 1:  # padded into a wide canvas, anywhere
        canvas = Image.new("L", (100, 60))
        canvas.paste(
            img.resize((42, 42), Image.Resampling.BILINEAR), (int(rng.integers(0, 58)), int(rng.integers(0, 18)))
        )
        return canvas, "png"
    if kind == 2:  # dark ink on white, scanned bigger
        return Image.fromarray(255 - np.asarray(img.resize((84, 84), Image.Resampling.BICUBIC))), "bmp"
    if kind == 3:  # blue ink on an off-white page, shifted
        canvas = Image.new("RGB", (40, 40), (245, 240, 230))
        ink = Image.new("RGB", (28, 28), (20, 30, 120))
        canvas.paste(ink, (int(rng.integers(0, 12)), int(rng.integers(0, 12))), mask=img)
        return canvas, "png"
    rgba = Image.new("RGBA", (70, 70), (0, 0, 0, 0))  # black ink on a transparent background
    ink = img.resize((70, 70), Image.Resampling.BILINEAR)
    rgba.putalpha(ink)
    return rgba, "png"


def test_mnist_digits_at_other_sizes_positions_and_colours(tmp_path, mnist, classifier):
    rng = np.random.default_rng(7)
    originals = mnist.test_images[:N_IMAGES]
    processed = []
    for i, digit in enumerate(originals):
        img, ext = _variant(i, digit, rng)
        path = tmp_path / f"d{i}.{ext}"
        img.save(path)
        processed.append(mnist_style(load_image(path), name=str(path)))
    processed = np.stack(processed)
    assert processed.shape == (N_IMAGES, 28, 28) and processed.min() >= 0 and processed.max() <= 255
    expected, got = classifier(originals), classifier(processed)
    assert (classifier(originals) == mnist.test_labels[:N_IMAGES]).mean() > 0.95  # a reasonable model
    for kind in range(5):  # every variant on its own
        assert (got[kind::5] == expected[kind::5]).mean() >= 0.95, kind
    assert (got == expected).mean() >= 0.97


def test_drawn_digits_are_classified(tmp_path, classifier):
    one = Image.new("L", (200, 240), 255)
    ImageDraw.Draw(one).line([(100, 30), (96, 210)], fill=0, width=16)
    zero = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(zero).ellipse([(110, 20), (210, 180)], outline="black", width=18)
    images = []
    for name, img in (("one.png", one), ("zero.jpg", zero)):
        img.save(tmp_path / name)
        images.append(mnist_style(load_image(tmp_path / name)))
    assert list(classifier(np.stack(images))) == [1, 0]


def test_centre_of_mass_lands_at_the_centre_and_longer_side_is_20():
    x = np.zeros((90, 50))
    x[10:70, 20:35] = 200.0  # a bar, taller than wide, off centre
    out = mnist_style(x)
    rows, cols = np.flatnonzero(out.sum(axis=1) > 1), np.flatnonzero(out.sum(axis=0) > 1)
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 == 5
    ys, xs = np.mgrid[:28, :28]
    cy, cx = (out * ys).sum() / out.sum(), (out * xs).sum() / out.sum()
    assert abs(cy - MNIST_CENTRE) <= 0.5 and abs(cx - MNIST_CENTRE) <= 0.5
    assert out.max() == pytest.approx(255.0, abs=1.0)


def test_light_background_is_inverted():
    x = np.full((30, 30), 250.0)
    x[5:25, 12:16] = 10.0
    out = mnist_style(x)
    assert out[0, 0] == 0 and out.max() > 200


def test_load_image_composites_transparency_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 0, 255))
    rgba.save(tmp_path / "a.png")
    pal = Image.new("P", (4, 4), 0)  # index 0 (black in the palette) transparent, index 1 black ink
    pal.putpalette([0, 0, 0] * 2)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "a.gif", transparency=0)
    for name in ("a.png", "a.gif"):
        x = load_image(tmp_path / name)
        assert x.shape == (4, 4) and x[0, 0] == 255 and x[1, 1] == 0, name


def test_unreadable_and_blank_images_are_data_errors_naming_them(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    for path in (bad, tmp_path / "missing.png"):
        with pytest.raises(DataError, match="unreadable") as info:
            load_image(path)
        assert str(path) in str(info.value)
    Image.new("L", (20, 20), 255).save(tmp_path / "blank.png")
    with pytest.raises(DataError, match="blank.png.*blank"):
        mnist_style(load_image(tmp_path / "blank.png"), name=str(tmp_path / "blank.png"))
    with pytest.raises(DataError, match="2-D"):
        mnist_style(np.zeros((3, 3, 3)))

"""The user's own data files (issue 12): .npz, .csv, a folder of images, IDX files.

Each kind loads with the right shapes, dtypes, labels and classes; each fault gives ONE
DataError line that names the file and the row (a CSV line as an editor numbers it, an array
row) or column. All files are small and written here (never MNIST).
"""

from __future__ import annotations

import gzip
import os
import pathlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mlpkit.core.errors import ConfigError, DataError
from mlpkit.data.files import load_file_dataset
from mlpkit.data.idx import write_idx
from mlpkit.data.registry import load_dataset


def fails(path: Path, *words: str, **kwargs: Any) -> str:
    """The one-line DataError that loading ``path`` gives; it names the file and every word."""
    with pytest.raises(DataError) as info:
        load_file_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert path.name in message, message
    for word in words:
        assert word in message, message
    return message


def read_only(*arrays: np.ndarray) -> bool:
    return all(not a.flags.writeable for a in arrays)


# ---------------------------------------------------------------- .npz


def test_npz_uint8_images_and_integer_labels(tmp_path: Path) -> None:
    x = np.arange(6 * 3 * 4, dtype=np.uint8).reshape(6, 3, 4)
    y = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_file_dataset(tmp_path / "d.npz")
    assert d.x_train.dtype == np.uint8 and d.input_shape == (3, 4) and d.n_features == 12
    np.testing.assert_array_equal(d.x_train, x)
    assert d.y_train.dtype == np.int64 and d.y_train.tolist() == y.tolist()
    assert d.classes is None and not d.has_test and d.name == str(tmp_path / "d.npz")
    assert read_only(d.x_train, d.y_train)


@pytest.mark.parametrize("labels", [["cat", "dog", "émeu", "cat"], [42, 3, 7, 42]], ids=["strings", "sparse-ints"])
def test_npz_labels_round_trip_and_floats_become_float64(tmp_path: Path, labels: list) -> None:
    x = np.array([[0.5, 1], [2, 3], [4, 5], [6, 7.25]], dtype=np.float32)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.array(labels))
    d = load_file_dataset(tmp_path / "d.npz")
    assert d.x_train.dtype == np.float64 and d.input_shape == (2,)
    np.testing.assert_array_equal(d.x_train, x.astype(np.float64))
    assert d.y_train.tolist() == labels
    assert d.y_train.dtype.kind == ("U" if isinstance(labels[0], str) else "i")


def test_npz_integral_float_labels_become_int64(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([1.0, 5.0, 1.0]))
    assert load_file_dataset(tmp_path / "d.npz").y_train.tolist() == [1, 5, 1]


def npz(tmp_path: Path, name: str = "d.npz", **arrays: Any) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_faults(tmp_path: Path) -> None:
    x = np.zeros((4, 3))
    y = np.array([0, 1, 0, 1])
    fails(npz(tmp_path, x=x, y=np.array([0, "a", None, 1], dtype=object)), "'y'", "Python objects", "dtype=str")
    fails(npz(tmp_path, x=x, labels=y), "no array 'y'", "'labels'", "'x'")
    fails(npz(tmp_path, x=x, y=y[:3]), "4 inputs but 3 labels")
    bad = x.copy()
    bad[2, 1] = np.nan
    fails(npz(tmp_path, x=bad, y=y), "array 'x' row 2, feature 1", "nan is not a finite number")
    cube = np.zeros((4, 2, 2))
    cube[3, 1, 0] = -np.inf
    fails(npz(tmp_path, x=cube, y=y), "row 3, feature (1, 0)", "-inf")
    fails(npz(tmp_path, x=x[:0], y=y[:0]), "no rows")
    fails(npz(tmp_path, x=x, y=np.full(4, 7)), "every row has the label 7", "two classes")
    fails(npz(tmp_path, x=x, y=np.array([0, 1, 0.5, 1])), "array 'y' row 2", "0.5", "not an integer")
    fails(npz(tmp_path, x=x, y=np.array(["a", "b", " ", "a"])), "array 'y' row 2", "empty label")
    fails(npz(tmp_path, x=np.zeros(4), y=y), "inputs have shape (4,)")
    fails(npz(tmp_path, x=np.full((4, 2), "1"), y=y), "inputs are of type <U1", "expected numbers")


def test_npz_label_types(tmp_path: Path) -> None:
    x = np.zeros((3, 2))
    d = load_file_dataset(npz(tmp_path, x=x, y=np.array([b"no", b"yes", b"no"])))
    assert d.y_train.tolist() == ["no", "yes", "no"]
    assert load_file_dataset(npz(tmp_path, x=x, y=np.array([[5], [6], [5]]))).y_train.tolist() == [5, 6, 5]
    assert load_file_dataset(npz(tmp_path, x=x, y=np.array([True, False, True]))).y_train.tolist() == [1, 0, 1]
    fails(npz(tmp_path, x=x, y=np.array([1, 2**63, 1], dtype=np.uint64)), "array 'y' row 1", "too large")
    fails(npz(tmp_path, x=x, y=np.array([1.0, np.inf, 2.0])), "array 'y' row 1", "inf", "not an integer")
    fails(npz(tmp_path, x=x, y=np.array([b"\xff", b"a", b"b"])), "not UTF-8")
    fails(npz(tmp_path, x=x, y=np.zeros((3, 2))), "labels have shape (3, 2)")
    fails(npz(tmp_path, x=x, y=np.array([1 + 1j, 2, 3])), "labels are of type complex128")
    fails(npz(tmp_path, x=np.zeros((3, 0)), y=np.array([1, 2, 3])), "no features")


def test_npz_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "empty.npz").write_bytes(b"")
    fails(tmp_path / "empty.npz", "empty file")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    (tmp_path / "plain.npy").rename(tmp_path / "plain.npz")
    fails(tmp_path / "plain.npz", "not an .npz archive", "np.savez")
    whole = npz(tmp_path, x=np.zeros((4, 3)), y=np.array([0, 1, 0, 1])).read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    fails(tmp_path / "cut.npz", "corrupt or truncated")
    (tmp_path / "folder.npz").mkdir()
    fails(tmp_path / "folder.npz", "is a folder")


# ---------------------------------------------------------------- .csv


def write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_numbers_with_a_label_column_anywhere(tmp_path: Path) -> None:
    d = load_file_dataset(write(tmp_path / "d.csv", "a,label,b\n1,3,2.5\n-4,7,1e3\n0,42,0\n"))
    np.testing.assert_array_equal(d.x_train, [[1, 2.5], [-4, 1000], [0, 0]])
    assert d.x_train.dtype == np.float64 and d.input_shape == (2,)
    assert d.y_train.dtype == np.int64 and d.y_train.tolist() == [3, 7, 42]
    assert read_only(d.x_train, d.y_train)


def test_csv_quotes_bom_crlf_empty_lines_and_string_labels(tmp_path: Path) -> None:
    text = '"x 1",x2,"species"\r\n"1.5",2,"iris, setosa"\r\n\r\n3, 4 , versicolor \r\n5,6,"say ""hi""\nthere"\r\n'
    d = load_file_dataset(write(tmp_path / "d.csv", "\ufeff" + text), label_column="species")
    np.testing.assert_array_equal(d.x_train, [[1.5, 2], [3, 4], [5, 6]])
    assert d.y_train.tolist() == ["iris, setosa", "versicolor", 'say "hi"\nthere']


def test_csv_labels_mixing_integers_and_text_stay_text(tmp_path: Path) -> None:
    d = load_file_dataset(write(tmp_path / "d.csv", "label,v\n1,0\nb,1\n1,2\n"))
    assert d.y_train.tolist() == ["1", "b", "1"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("label,a,b\n1,2,3\n\n2,3\n", ["line 4", "2 values", "3 columns", "ragged"]),
        ("label,a,b\n1,2,3\n2,3,4,5\n", ["line 3", "4 values"]),
        ("label,a,b\n1,2,3\n2,3,x7\n", ["line 3, column 3 'b'", "'x7' is not a number"]),
        ("label,a,b\n1,2,3\n2,,4\n", ["line 3, column 2 'a'", "empty value"]),
        ('label,a,b\n1,2,"multi\nline"\n2,3,4\n', ["line 2, column 3 'b'", "is not a number"]),
        ("label,a,b\n1,2,3\n\n\n2,nan,4\n", ["line 5, column 2 'a'", "nan is not a finite number"]),
        ('label,a,b\n"1\n",2,3\n2,3,inf\n', ["line 4, column 3 'b'", "inf is not a finite number"]),
        ("label,a,b\n1,2,3\n ,3,4\n", ["line 3, column 1 'label'", "empty label"]),
        ("label,a\n5,1\n5,2\n", ["every row has the label 5", "two classes"]),
        ("label,a,b\n", ["no data rows"]),
        ("", ["empty file"]),
        ("\n1,2\n", ["line 1", "empty header"]),
        ("label\n1\n2\n", ["no feature columns"]),
        ("a,label,label\n1,2,3\n", ["'label' appears 2 times"]),
        ("y,a,b,c\n1,2,3,4\n", ["no column 'label'", "'y', 'a', 'b', 'c'"]),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None,
)
def test_csv_faults_name_the_line_and_column(tmp_path: Path, text: str, words: list[str]) -> None:
    fails(write(tmp_path / "bad.csv", text), *words)


def test_csv_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    fails(
        write(tmp_path / "latin.csv", "label,a\n1,2\nzoë,3\n", encoding="latin-1"), "line 3", "not UTF-8", "byte 0xeb"
    )


def test_unreadable_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = write(tmp_path / "locked.csv", "label,a\n1,2\n2,3\n")
    npz_path = npz(tmp_path, "locked.npz", x=np.zeros((2, 2)), y=np.array([0, 1]))
    real_open = pathlib.Path.open

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:  # chmod cannot stop root, who runs CI here
        if self.name.startswith("locked"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", denied)
    fails(csv_path, "cannot be read", "Permission denied")
    fails(npz_path, "cannot be read", "Permission denied")
    (tmp_path / "folder.csv").mkdir()
    fails(tmp_path / "folder.csv", "is a folder, expected a .csv file")


def test_csv_oddities(tmp_path: Path) -> None:
    fails(write(tmp_path / "huge.csv", "label," + "x" * 200_000 + "\n1,2\n"), "line 1", "field limit")
    fails(write(tmp_path / "und.csv", "label,a\n1,1_000\n2,3\n"), "line 2, column 2 'a'", "'1_000' is not a number")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    fails(fifo, "not a regular file")


def test_unlistable_image_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = classes(tmp_path, "a", "b")

    def denied(self: Path) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "iterdir", denied)
    fails(root, "cannot be listed", "Permission denied")


def test_a_large_csv_loads_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20_000, 100))
    y = rng.integers(0, 10, size=20_000)
    rows = "\n".join(f"{label}," + ",".join(map(str, row)) for label, row in zip(y.tolist(), x.tolist()))
    path = write(tmp_path / "big.csv", "label," + ",".join(f"f{i}" for i in range(100)) + "\n" + rows + "\n")
    start = time.perf_counter()
    d = load_file_dataset(path)
    seconds = time.perf_counter() - start
    np.testing.assert_array_equal(d.x_train, x)
    np.testing.assert_array_equal(d.y_train, y)
    assert seconds < 10, f"{seconds:.1f} s for 20,000 x 101 values (NumPy's C parser takes well under one)"


# ---------------------------------------------------------------- image folders


def image(path: Path, pixels: np.ndarray, **save: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, **save)
    return path


def test_image_folder_classes_formats_and_hidden_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    grey = [rng.integers(0, 256, (5, 7)).astype(np.uint8) for _ in range(4)]
    image(tmp_path / "imgs/zebra/a.png", grey[0])
    image(tmp_path / "imgs/zebra/b.bmp", grey[1])
    image(tmp_path / "imgs/ant/c.gif", grey[2])
    rgb = np.stack([grey[3]] * 3, axis=-1)  # grey in colour: the same luminance
    image(tmp_path / "imgs/ant/d.png", rgb)
    image(tmp_path / "imgs/ant/e.jpg", np.full((5, 7), 200), quality=100)
    (tmp_path / "imgs/ant/.DS_Store").write_bytes(b"\0junk")
    (tmp_path / "imgs/.hidden").mkdir()
    d = load_file_dataset(tmp_path / "imgs")
    assert d.classes == ("ant", "zebra") and d.input_shape == (5, 7) and d.x_train.dtype == np.uint8
    assert d.y_train.tolist() == ["ant", "ant", "ant", "zebra", "zebra"]
    np.testing.assert_array_equal(d.x_train[[0, 1, 3, 4]], np.stack([grey[2], grey[3], grey[0], grey[1]]))
    assert np.abs(d.x_train[2].astype(int) - 200).max() <= 2  # JPEG
    assert read_only(d.x_train, d.y_train)


def classes(tmp_path: Path, *names: str, size: tuple[int, int] = (4, 4)) -> Path:
    for name in names:
        image(tmp_path / "imgs" / name / "one.png", np.zeros(size))
    return tmp_path / "imgs"


def test_image_folder_faults_name_the_file(tmp_path: Path) -> None:
    root = classes(tmp_path, "a", "b")
    image(root / "b/wide.png", np.zeros((4, 6)))
    message = fails(root, "wide.png", "6x4 pixels", "4x4 pixels", "one size")
    assert str(root / "a/one.png") in message
    (root / "b/wide.png").unlink()
    (root / "b/notes.txt").write_text("not an image")
    fails(root, "notes.txt", "unreadable")
    (root / "b/notes.txt").unlink()
    whole = image(root / "b/cut.png", np.arange(16).reshape(4, 4)).read_bytes()
    (root / "b/cut.png").write_bytes(whole[: len(whole) // 2])
    fails(root, "cut.png", "unreadable")
    (root / "b/cut.png").unlink()
    (root / "b/deeper").mkdir()
    fails(root, "deeper", "a folder inside a class folder")
    (root / "b/deeper").rmdir()
    (root / "README").write_text("hi")
    fails(root, "README", "beside the class folders")
    (root / "README").unlink()
    (root / "c").mkdir()
    fails(root, "c", "holds no images")


def test_image_folder_needs_two_classes_and_a_subfolder(tmp_path: Path) -> None:
    fails(classes(tmp_path, "only"), "every row has the label 'only'")
    (tmp_path / "void").mkdir()
    fails(tmp_path / "void", "no class subfolders")


# ---------------------------------------------------------------- IDX


def idx_pair(folder: Path, prefix: str, n: int, *, compress: bool = False, labels: np.ndarray | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gz = ".gz" if compress else ""
    x = (np.arange(n * 6) % 256).astype(np.uint8).reshape(n, 2, 3)
    y = np.arange(n, dtype=np.uint8) % 3 if labels is None else labels
    write_idx(folder / f"{prefix}-images-idx3-ubyte{gz}", x, compress=compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{gz}", y, compress=compress)
    return folder / f"{prefix}-images-idx3-ubyte{gz}"


@pytest.mark.parametrize("compress", [False, True])
def test_idx_images_file_finds_its_labels(tmp_path: Path, compress: bool) -> None:
    d = load_file_dataset(idx_pair(tmp_path, "mine", 7, compress=compress))
    assert d.input_shape == (2, 3) and d.x_train.dtype == np.uint8 and len(d.x_train) == 7
    assert d.y_train.dtype == np.int64 and d.y_train.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert not d.has_test and read_only(d.x_train, d.y_train)


def test_idx_labels_given_explicitly(tmp_path: Path) -> None:
    images = idx_pair(tmp_path, "mine", 4)
    write_idx(tmp_path / "tags.idx", np.array([9, 4, 9, 4], dtype=np.uint8), compress=False)
    images.rename(tmp_path / "pictures.bin")
    assert load_file_dataset(tmp_path / "pictures.bin", labels=tmp_path / "tags.idx").y_train.tolist() == [9, 4, 9, 4]
    fails(tmp_path / "pictures.bin", "cannot tell its labels file", "data.labels")


def test_idx_faults(tmp_path: Path) -> None:
    images = idx_pair(tmp_path, "mine", 5)
    write_idx(tmp_path / "mine-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8), compress=False)
    message = fails(images, "5 inputs", "4 labels")
    assert "mine-labels-idx1-ubyte" in message
    (tmp_path / "mine-labels-idx1-ubyte").unlink()
    fails(images, "mine-labels-idx1-ubyte", "no such file")
    (tmp_path / "mine-labels-idx1-ubyte").mkdir()
    fails(images, "mine-labels-idx1-ubyte", "is a folder")
    fails(write(tmp_path / "data.json", '{"x": 1}'), "not an IDX file", ".npz", ".csv")
    one = idx_pair(tmp_path / "single", "one", 3, labels=np.full(3, 2, dtype=np.uint8))
    fails(one, "every row has the label 2")


def test_idx_folder_in_mnist_layout(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    idx_pair(folder, "train", 9, compress=True)
    train_only = load_file_dataset(folder)
    assert len(train_only.x_train) == 9 and not train_only.has_test
    idx_pair(folder, "t10k", 4)
    d = load_file_dataset(folder)
    assert d.has_test and d.x_test is not None and d.y_test is not None
    assert d.x_test.shape == (4, 2, 3) and d.y_test.tolist() == [0, 1, 2, 0] and read_only(d.x_test, d.y_test)
    assert d.name == str(folder) and d.input_shape == (2, 3)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    fails(folder, "t10k-labels-idx1-ubyte", "test file")
    (folder / "t10k-images-idx3-ubyte").unlink()
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((4, 3, 2), dtype=np.uint8), compress=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8), compress=False)
    fails(folder, "t10k-images-idx3-ubyte", "(3, 2)", "(2, 3)")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    fails(folder, "train-labels-idx1-ubyte")


def test_gzip_idx_that_is_cut_short_is_named(tmp_path: Path) -> None:
    images = idx_pair(tmp_path, "mine", 6)
    (tmp_path / "mine-images-idx3-ubyte.gz").write_bytes(gzip.compress(images.read_bytes())[:-12])
    write_idx(tmp_path / "mine-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8) % 2, compress=True)
    fails(tmp_path / "mine-images-idx3-ubyte.gz", "gzip")


# ---------------------------------------------------------------- through the registry


def test_registry_reads_a_path_and_carves_a_test_part(tmp_path: Path) -> None:
    rows = "\n".join(f"{'ab'[i % 2]},{i},{i * i}" for i in range(40))
    path = write(tmp_path / "d.csv", "kind,a,b\n" + rows + "\n")
    d = load_dataset(str(path), label_column="kind")
    assert d.test_carved and d.x_test is not None and d.y_test is not None
    assert len(d.x_train) + len(d.x_test) == 40 and sorted(set(d.y_test.tolist())) == ["a", "b"]
    given = load_dataset(str(path), label_column="kind", test=path)
    assert given.x_test is not None and len(given.x_test) == 40 and not given.test_carved


def test_labels_option_is_only_for_idx(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "label,a\n1,2\n2,3\n")
    with pytest.raises(ConfigError, match="data.labels"):
        load_file_dataset(path, labels=tmp_path / "x")

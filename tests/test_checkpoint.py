"""Checkpoints: exact round trips, a format that never runs code, and corrupt files refused.

Every damaged or hostile file must end in :class:`CheckpointError` (never another exception,
never a pickle executed) without allocating much more memory than the file's own size.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpkit.core.errors import CheckpointError
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.callbacks import Callback, EarlyStopping, History
from mlpkit.train.checkpoint import META_KEY, load_checkpoint, save_checkpoint
from mlpkit.train.trainer import Trainer

# examples per fuzz test; raise for a longer campaign, e.g. MLPKIT_FUZZ_EXAMPLES=5000
FUZZ_BYTES_EXAMPLES = FUZZ_MUTATION_EXAMPLES = int(os.environ.get("MLPKIT_FUZZ_EXAMPLES", "400"))


def nested_state() -> dict:
    rng = np.random.default_rng(7)
    rng.normal(size=3)  # move it off its initial state
    return {
        "weights": [rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(3,))],
        "ints": np.arange(-3, 4, dtype=np.int64),
        "bytes": np.frombuffer(b"\x00\xffabc", dtype=np.uint8),
        "flags": np.array([True, False]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "big_endian": np.arange(4, dtype=">f8"),
        "rng": rng.bit_generator.state,  # 128-bit integers in JSON
        "nested": {"a": [1, 2.5, None, "text \u00e9\u4e2d", True], "b": {"c": {"d": []}}, "e": {}},
        "floats": [0.1, -0.0, 1e308, 5e-324, float("inf"), -float("inf")],
        "np_scalar": np.float64(0.3),
        "none": None,
    }


def assert_same(a, b) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes(order="A") == np.ascontiguousarray(b).tobytes() or np.array_equal(a, b)
        assert np.array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.generic):
        assert a.item() == b and type(b) is type(a.item())
    elif isinstance(a, float) and a == 0.0:
        assert b == 0.0 and str(a) == str(b)  # keeps the sign of zero
    else:
        assert a == b and type(a) is type(b)


def test_nested_state_round_trips_exactly(tmp_path: Path) -> None:
    state = nested_state()
    path = save_checkpoint(tmp_path / "c.npz", state)
    loaded = load_checkpoint(path)
    assert_same(state, loaded)
    assert loaded["weights"][0].flags.writeable  # plain arrays, not views of the file


def test_rng_state_round_trip_continues_the_same_stream(tmp_path: Path) -> None:
    rng = np.random.default_rng(123)
    rng.permutation(100)
    save_checkpoint(tmp_path / "rng.npz", {"rng": rng.bit_generator.state})
    expected = rng.permutation(1000)
    other = np.random.default_rng(999)
    other.bit_generator.state = load_checkpoint(tmp_path / "rng.npz")["rng"]
    assert np.array_equal(other.permutation(1000), expected)


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.npz", {"x": np.ones(3)})
    save_checkpoint(tmp_path / "c.npz", {"x": np.zeros(3)})  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]
    assert np.array_equal(load_checkpoint(tmp_path / "c.npz")["x"], np.zeros(3))


def _trainer(callbacks) -> tuple[Trainer, tuple[np.ndarray, ...]]:
    data_rng = np.random.default_rng(0)
    model = MLP([8], n_features=6, n_classes=3, activation="tanh", dtype="float64")
    x = model.prepare_inputs(data_rng.normal(size=(60, 6)))
    y = data_rng.integers(0, 3, size=60)
    rng = np.random.default_rng(5)
    model.init_weights(rng, "fan_in_normal")
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.05, momentum=0.9),
        rng=rng,
        epochs=4,
        batch_size=7,
        validations_per_epoch=3,
        callbacks=callbacks,
    )
    return trainer, (x, y, x[:20], y[:20])


class SaveAt(Callback):
    """Saves the trainer's state at the end of one step, as a kill right after it would find it."""

    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        if step == self.step:
            save_checkpoint(self.path, trainer.state_dict())


def test_trainer_state_saved_mid_epoch_resumes_bit_identically(tmp_path: Path) -> None:
    """Weights, momentum buffers, RNG, position in the epoch, history and early stopping."""
    path = tmp_path / "mid.npz"
    full, data = _trainer([History(), EarlyStopping(patience=100, restore_best_weights=True), SaveAt(13, path)])
    full.fit(*data)  # 8 steps per epoch: step 13 is in the middle of the second epoch

    hist, stop = History(), EarlyStopping(patience=100, restore_best_weights=True)
    resumed, data = _trainer([hist, stop])
    resumed.load_state_dict(load_checkpoint(path), resumed.geometry(len(data[0])))
    assert (resumed.state.step, resumed.state.step_in_epoch, resumed.state.epoch) == (13, 5, 1)
    resumed.fit(*data)
    assert resumed.state.step == full.state.step == 32
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(full.optimizer.velocity, resumed.optimizer.velocity):
        assert a.tobytes() == b.tobytes()
    assert full.callbacks[0].to_dict() == hist.to_dict()
    assert full.callbacks[1].state_dict()["best"] == stop.state_dict()["best"]
    assert full.rng.bit_generator.state == resumed.rng.bit_generator.state


# ------------------------------------------------------------------ code never runs
class _Evil:
    """Unpickling this creates the marker directory: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _write_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _meta(state: dict) -> bytes:
    doc = {"format": "mlpkit-checkpoint", "version": 1, "state": state}
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))
    return buf.getvalue()


def test_npz_with_an_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(
        path,
        a0=np.array([_Evil(marker)], dtype=object),
        **{
            META_KEY: np.frombuffer(
                json.dumps({"format": "mlpkit-checkpoint", "version": 1, "state": {"x": {"__array__": "a0"}}}).encode(),
                np.uint8,
            )
        },
    )
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(path)
    assert not marker.exists()


def test_object_dtype_inside_a_structured_dtype_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    arr = np.zeros(1, dtype=[("a", "f8"), ("b", "O")])
    arr["b"][0] = _Evil(marker)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    path = _write_zip(tmp_path / "evil.npz", {"a0.npy": buf.getvalue(), "__meta__.npy": _meta({})})
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("member", ["a0.npy", "__meta__.npy", "evil.pkl", "data.pickle"])
def test_zip_member_that_is_a_raw_pickle_is_refused(tmp_path: Path, member: str) -> None:
    marker = tmp_path / "pwned"
    members = {"__meta__.npy": _meta({"x": {"__array__": "a0"}})}
    members[member] = pickle.dumps(_Evil(marker))
    path = _write_zip(tmp_path / "evil.npz", members)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_compressed_members_are_refused(tmp_path: Path) -> None:
    """Deflate could expand a small file a thousandfold; checkpoints are stored uncompressed."""
    members = {"__meta__.npy": _meta({}), "a0.npy": _meta({})}
    path = _write_zip(tmp_path / "deflated.npz", members, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="compressed"):
        load_checkpoint(path)


# ------------------------------------------------------------- damaged files
@pytest.fixture
def valid(tmp_path: Path) -> bytes:
    return save_checkpoint(tmp_path / "valid.npz", nested_state()).read_bytes()


def test_every_truncation_is_refused(tmp_path: Path, valid: bytes) -> None:
    path = tmp_path / "t.npz"
    lengths = sorted(set(range(0, len(valid), max(1, len(valid) // 300))) | {len(valid) - 1, len(valid) - 22})
    for n in lengths:
        path.write_bytes(valid[:n])
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
    assert len(lengths) > 250


def _member_data_ranges(blob: bytes) -> list[tuple[int, int]]:
    """Byte ranges of every member's stored data inside the zip ``blob``."""
    ranges = []
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26 : info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            ranges.append((start, start + info.compress_size))
    return ranges


def test_every_bit_flip_in_member_data_is_refused(tmp_path: Path, valid: bytes) -> None:
    """The zip CRC-32 of each member is verified, so flipped bits never load silently."""
    path = tmp_path / "f.npz"
    rng = np.random.default_rng(3)
    positions = [p for lo, hi in _member_data_ranges(valid) for p in range(lo, hi)]
    chosen = rng.choice(positions, size=300, replace=False)
    for pos in chosen:
        damaged = bytearray(valid)
        damaged[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError):
            load_checkpoint(path)


@pytest.mark.parametrize(
    "blob",
    [b"", b"PK\x05\x06" + b"\x00" * 18, b"not a zip at all", b"\x93NUMPY\x01\x00" + b"\x00" * 100],
    ids=["empty", "empty-zip", "text", "bare-npy"],
)
def test_files_that_are_not_checkpoints_are_refused(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(blob)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "meta, match",
    [
        (b"\xff\xfe", "metadata"),
        (b"{not json", "metadata"),
        (b"[1, 2]", "not an mlpkit checkpoint"),
        (json.dumps({"format": "other", "version": 1, "state": {}}).encode(), "not an mlpkit checkpoint"),
        (json.dumps({"format": "mlpkit-checkpoint", "version": 99, "state": {}}).encode(), "version"),
        (json.dumps({"format": "mlpkit-checkpoint", "version": 1}).encode(), "no state"),
        (
            json.dumps({"format": "mlpkit-checkpoint", "version": 1, "state": {"w": {"__array__": "a9"}}}).encode(),
            "missing array",
        ),
        (
            json.dumps({"format": "mlpkit-checkpoint", "version": 1, "state": {"w": {"__array__": [1]}}}).encode(),
            "missing array",
        ),
        (
            b'{"format": "mlpkit-checkpoint", "version": 1, "state": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "nested too deeply|metadata",
        ),
    ],
    ids=["utf8", "json", "list", "format", "version", "no-state", "missing-array", "unhashable-ref", "deep"],
)
def test_bad_metadata_is_refused(tmp_path: Path, meta: bytes, match: str) -> None:
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(meta, dtype=np.uint8))
    path = _write_zip(tmp_path / "m.npz", {"__meta__.npy": buf.getvalue()})
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_missing_or_malformed_meta_entry_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    with pytest.raises(CheckpointError, match="no __meta__"):
        load_checkpoint(_write_zip(tmp_path / "a.npz", {"a0.npy": buf.getvalue()}))
    with pytest.raises(CheckpointError, match="malformed"):
        load_checkpoint(_write_zip(tmp_path / "b.npz", {"__meta__.npy": buf.getvalue()}))


def _npy_claiming(shape: tuple[int, ...], payload: bytes, dtype: str = "<f8") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("shape", [(2**28,), (10**12,), (2**31, 2**31), (10**6, 10**6, 10**6), (3,)])
def test_header_declaring_more_data_than_the_member_holds_is_refused_before_allocating(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    path = _write_zip(tmp_path / "big.npz", {"__meta__.npy": _meta({}), "a0.npy": _npy_claiming(shape, b"\0" * 16)})

    def load():
        with pytest.raises(CheckpointError, match="declares"):
            load_checkpoint(path)

    assert _peak_bytes(load) < 256 * 1024


def test_member_claiming_to_be_larger_than_the_file_is_refused(tmp_path: Path, valid: bytes) -> None:
    blob = bytearray(valid)
    first_cd = blob.find(b"PK\x01\x02")  # the central directory entry of the first member
    blob[first_cd + 24 : first_cd + 28] = struct.pack("<I", 2**31)  # its uncompressed size
    path = tmp_path / "liar.npz"
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="more than the whole file"):
        load_checkpoint(path)


# ------------------------------------------------------------------- fuzzing
MEMORY_SLACK = 256 * 1024  # interpreter noise: exception objects, zipfile bookkeeping (seen: < 64 KiB)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def small_valid(fuzz_dir: Path) -> bytes:
    state = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "step": 3,
        "h": {"loss": [0.5, 0.25]},
        "rng": np.random.default_rng(1).bit_generator.state,
    }
    return save_checkpoint(fuzz_dir / "small-valid.npz", state).read_bytes()


def _load_only_checkpoint_error(path: Path, size: int) -> None:
    outcome: list[object] = []

    def load():
        try:
            outcome.append(load_checkpoint(path))
        except CheckpointError as exc:
            outcome.append(exc)

    peak = _peak_bytes(load)
    assert peak <= MEMORY_SLACK + 4 * size, f"loading {size} bytes allocated {peak} bytes"
    assert isinstance(outcome[0], (dict, CheckpointError))


@settings(max_examples=FUZZ_BYTES_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    blob=st.one_of(
        st.binary(max_size=2048),
        st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=512).map(lambda b: b + b"PK\x05\x06" + b"\x00" * 18),
    )
)
def test_fuzz_arbitrary_bytes_only_raise_checkpoint_error(fuzz_dir: Path, blob: bytes) -> None:
    path = fuzz_dir / "arbitrary.npz"
    path.write_bytes(blob)
    _load_only_checkpoint_error(path, len(blob))


@st.composite
def mutations(draw, valid_len: int):
    edits = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                st.integers(0, valid_len - 1),
                st.integers(0, 255),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return edits


def _mutate(blob: bytes, edits) -> bytes:
    out = bytearray(blob)
    for kind, pos, value in edits:
        pos = pos % max(1, len(out))
        if kind == "flip" and out:
            out[pos] ^= 1 << (value % 8)
        elif kind == "set" and out:
            out[pos] = value
        elif kind == "insert":
            out[pos:pos] = bytes([value]) * (1 + value % 7)
        elif kind == "delete":
            del out[pos : pos + 1 + value % 7]
        elif kind == "truncate":
            del out[pos:]
    return bytes(out)


@settings(
    max_examples=FUZZ_MUTATION_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_mutated_valid_checkpoints_only_raise_checkpoint_error(fuzz_dir: Path, small_valid: bytes, data) -> None:
    edits = data.draw(mutations(len(small_valid)))
    blob = _mutate(small_valid, edits)
    path = fuzz_dir / "mutated.npz"
    path.write_bytes(blob)
    _load_only_checkpoint_error(path, len(blob))


def test_fuzz_memory_bound_holds_for_a_valid_checkpoint(fuzz_dir: Path, small_valid: bytes) -> None:
    """The bound the fuzzers use is not vacuous: a valid file loads within it."""
    path = fuzz_dir / "bound.npz"
    path.write_bytes(small_valid)
    _load_only_checkpoint_error(path, len(small_valid))
    assert isinstance(load_checkpoint(path), dict)

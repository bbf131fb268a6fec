"""Sparse inputs (mlpkit.engine.sparse) and their kernels (mlpkit.engine.simd via mlpkit.engine.kernels) compute
exactly what the dense products compute, to rounding.

The decomposition X = V + 1 base^T: what the builder picks as base, the blocks, the
threshold. The two kernels against NumPy for every tile kind (four vectors, one vector, the
columns left over), both dtypes, several feature blocks, rows given as a list or a range.
Then whole runs: the compiled engine on sparse inputs against the NumPy engine in float64
(to a bound from the sums involved, tests/tolerances.py), validation numbers, cut runs of steps,
and when the trainer uses the sparse form.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from mlpkit.engine import cblas, dense_kernels, memory, planner, simd, sparse_kernels, sparse_reference, threads
from mlpkit.engine.compiled import CompiledEvaluation, CompiledSteps, sparse_arguments
from mlpkit.engine.evaluator import Evaluator
from mlpkit.engine.selection import compiled_steps
from mlpkit.engine.sparse import (
    FEATURE_BLOCK,
    MAX_DENSITY,
    SparseRows,
    index_dtype,
    sparse_rows,
)
from mlpkit.nn.mlp import MLP
from mlpkit.optim.sgd import SGD
from mlpkit.train.augment_feed import AugmentFeed
from mlpkit.train.callbacks import History
from mlpkit.train.trainer import Trainer
from tolerances import assert_within, float64_run_tolerance, float64_sum_tolerance, sum_error_bound

ACTIVATIONS = ["sigmoid", "improved_sigmoid", "tanh", "relu"]
#: Columns per block in the kernel tests: small, so that their few hundred features make several
#: blocks (the default, FEATURE_BLOCK, is one or two blocks of MNIST's 785).
SMALL_BLOCK = 128


def _mostly_blank(rng, n, features, blank=0.8, value=-1.5):
    """Raw inputs where each entry is ``value`` with probability ``blank`` (like MNIST's 0 pixels)."""
    raw = rng.normal(size=(n, features))
    raw[rng.random((n, features)) < blank] = value
    return raw


# --------------------------------------------------------------------------- the form
@pytest.mark.parametrize("block", [FEATURE_BLOCK, SMALL_BLOCK, 7])
def test_sparse_form_holds_every_entry_that_is_not_its_columns_base(block):
    rng = np.random.default_rng(0)
    model = MLP([8], n_features=300, dtype="float64", bias="input_column")
    x = model.prepare_inputs(_mostly_blank(rng, 97, 300))
    sp = sparse_rows(x, block=block)
    assert isinstance(sp, SparseRows) and sp.shape == x.shape
    assert sp.base[-1] == 1.0 and np.all(sp.base[:-1] == -1.5)  # the blank value; the bias column's 1
    assert sp.indices.dtype == np.uint16 and sp.values.dtype == np.float64
    assert sp.density == pytest.approx(np.mean(x != sp.base), abs=0)
    np.testing.assert_allclose(sp.dense(), x, rtol=0, atol=1e-15)
    assert not np.any(sp.values == 0)
    # blocks: ``block`` columns each, entries ascending and inside their block
    assert sp.block == block
    n_blocks = -(-x.shape[1] // block)
    assert sp.blocks.shape == (97, n_blocks + 1)
    assert np.all(np.diff(sp.blocks, axis=1) >= 0) and sp.blocks[0, 0] == 0 and sp.blocks[-1, -1] == len(sp.values)
    assert np.all(sp.blocks[1:, 0] == sp.blocks[:-1, -1])  # row after row, nothing between
    for r in (0, 50, 96):
        for b in range(n_blocks):
            cols = sp.indices[sp.blocks[r, b] : sp.blocks[r, b + 1]]
            assert np.all(np.diff(cols.astype(int)) > 0)
            assert np.all((cols >= b * block) & (cols < (b + 1) * block))


def test_base_is_the_majority_value_when_it_is_not_the_minimum():
    x = np.full((10, 3), 5.0)
    x[:3, 0] = -1.0  # column 0: 5 is the majority, -1 the minimum
    x[:, 1] = np.arange(10)  # no repeated value: the minimum will do
    x[4:, 2] = 7.0  # column 2: 7 fills 6 of 10
    sp = sparse_rows(x, max_density=1.0)
    assert list(sp.base) == [5.0, 0.0, 7.0]
    np.testing.assert_array_equal(sp.dense(), x)


def test_dense_or_odd_inputs_have_no_sparse_form():
    rng = np.random.default_rng(1)
    assert sparse_rows(rng.normal(size=(50, 20))) is None  # every entry differs
    x = _mostly_blank(rng, 50, 20, blank=0.3)
    assert sparse_rows(x) is None and sparse_rows(x, max_density=1.0) is not None
    assert MAX_DENSITY <= 0.5
    x = _mostly_blank(rng, 50, 20)
    x[0, 3] = np.nan
    x[:, 4] = np.nan  # a column whose base would be NaN
    assert sparse_rows(x) is None
    assert sparse_rows(np.zeros((0, 5))) is None and sparse_rows(np.zeros((5, 5), dtype=np.int64)) is None
    assert sparse_rows(np.asfortranarray(_mostly_blank(rng, 50, 20))) is None


def test_a_nan_entry_that_is_not_the_base_stays_in_its_row():
    x = _mostly_blank(np.random.default_rng(2), 40, 10)
    x[7, 2] = np.nan
    sp = sparse_rows(x)
    got = sp.dense()
    assert np.isnan(got[7, 2]) and np.isnan(got).sum() == 1


def test_index_dtype_widens_past_65536_columns():
    assert index_dtype(785) == np.uint16 and index_dtype(2**16) == np.uint16 and index_dtype(2**16 + 1) == np.int32


# -------------------------------------------------------------------------- kernels
def test_the_kernels_take_first_layers_of_at_least_one_vector():
    assert sparse_kernels.fits(16, "float32") and not sparse_kernels.fits(15, "float32")
    assert sparse_kernels.fits(8, "float64") and not sparse_kernels.fits(7, "float64")


@njit
def _product(gemm, sp, rows, row0, m, params, w_off, fan_in, n, out, consts):
    sparse_kernels.sparse_product(gemm, sp, rows, row0, m, params, w_off, fan_in, n, out, consts)


@njit
def _gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts, by_columns=False):
    if by_columns:
        sparse_kernels.wide_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts)
    else:
        sparse_kernels.sparse_weight_gradient(sp, rows, m, delta, dst, w_off, fan_in, n, alpha, beta, consts)


def _widths(*ns):
    """(dtype, n) for both dtypes and every n at least one vector wide (16 / 8 columns): the
    kernels take no narrower row (``sparse_kernels.fits``)."""
    return [(d, n) for d in ("float32", "float64") for n in ns if sparse_kernels.fits(n, d)]


@pytest.mark.parametrize("dtype, n", _widths(8, 12, 16, 21, 32, 40, 59, 64, 70, 100, 136, 137, 150, 200, 256))
def test_sparse_product_equals_the_dense_product(dtype, n):
    """n covers every tile kind: four vectors (64 float32 / 32 float64 columns), fewer, a
    last vector that overlaps the one before or the tile before, each also with rows wide
    enough to be packed (>= 128 columns); 300 features are three feature blocks."""
    rng = np.random.default_rng(n)
    x = _mostly_blank(rng, 45, 300).astype(dtype)
    sp = sparse_rows(x, block=SMALL_BLOCK)
    fan_in, w_off = x.shape[1], 5
    params = rng.normal(size=w_off + fan_in * n + 3).astype(dtype)
    w = params[w_off : w_off + fan_in * n].reshape(fan_in, n)
    consts = dense_kernels.constants(np.dtype(dtype))
    gemm = cblas.gemm(dtype)
    # X W = base W + V W: two sums of fan_in terms each, bounded by (|base| + |V|) |W|
    abs_x = (np.abs(sp.base) + np.abs(x - sp.base)).astype(np.float64)
    abs_w = np.abs(w).astype(np.float64)
    rows = np.array([44, 0, 7, 7, 30], dtype=np.intp)
    out = np.full((len(rows), n), np.nan, dtype=dtype)
    _product(gemm, sparse_arguments(sp, np.dtype(dtype)), rows, 0, len(rows), params, w_off, fan_in, n, out, consts)
    assert_within(out, x[rows].astype(np.float64) @ w, sum_error_bound(abs_x[rows] @ abs_w, 2 * fan_in, dtype))
    out = np.full((20, n), np.nan, dtype=dtype)
    _product(
        gemm, sparse_arguments(sp, np.dtype(dtype)), np.empty(0, np.intp), 13, 20, params, w_off, fan_in, n, out, consts
    )
    assert_within(out, x[13:33].astype(np.float64) @ w, sum_error_bound(abs_x[13:33] @ abs_w, 2 * fan_in, dtype))


@pytest.mark.parametrize(
    "dtype, n, by_columns",
    [(d, n, False) for d, n in _widths(10, 16, 40, 59, 64, 77, 130, 137, 150, 200, 256)]
    + [(d, n, True) for d, n in _widths(16, 40, 77, 130, 256)],
)
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.9), (-0.05, 1.0), (1.0, 0.0)])
def test_sparse_weight_gradient_equals_beta_w_plus_alpha_xt_delta(dtype, n, by_columns, alpha, beta):
    rng = np.random.default_rng(n + 1)
    x = _mostly_blank(rng, 60, 290).astype(dtype)
    sp = sparse_rows(x, block=SMALL_BLOCK)
    fan_in, w_off = x.shape[1], 3
    rows = np.array([59, 2, 2, 31, 0, 18, 44], dtype=np.intp)
    delta = rng.normal(size=(len(rows), n)).astype(dtype)
    dst = rng.normal(size=w_off + fan_in * n + 4).astype(dtype)
    layer = slice(w_off, w_off + fan_in * n)
    if beta == 0:  # W' is overwritten: what was there is never read, NaN included
        dst[layer] = np.nan
    want = dst.astype(np.float64).copy()
    w = want[layer].reshape(fan_in, n)
    w[...] = (beta * w if beta else 0) + alpha * (x[rows].astype(np.float64).T @ delta)
    # beta W + alpha (base 1^T delta + V^T delta): sums of len(rows) + 2 terms per entry
    abs_x = (np.abs(sp.base) + np.abs(x - sp.base)).astype(np.float64)[rows]
    abs_sum = np.abs(dst.astype(np.float64)).copy()
    abs_sum[layer] = (
        (abs(beta) * abs_sum[layer].reshape(fan_in, n) if beta else 0)
        + abs(alpha) * (abs_x.T @ np.abs(delta.astype(np.float64)))
    ).ravel()
    consts = dense_kernels.constants(np.dtype(dtype))
    _gradient(
        sparse_arguments(sp, np.dtype(dtype)),
        rows,
        len(rows),
        delta,
        dst,
        w_off,
        fan_in,
        n,
        dst.dtype.type(alpha),
        dst.dtype.type(beta),
        consts,
        by_columns,
    )
    assert_within(dst, want, sum_error_bound(abs_sum, len(rows) + 2, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [128, 130, 137, 150, 200, 1030])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.9), (-0.05, 1.0), (1.0, 0.0)])
def test_wide_gradient_by_columns_gives_the_bits_of_the_row_scatter(dtype, n, alpha, beta):
    """Rows of PACK_COLUMNS or more take the column-wise sums (``wide_weight_gradient``); they
    add the same terms in the same order as the row-wise scatter (``sparse_weight_gradient``), so
    the results are equal, not only close (n: full tiles, a last vector overlapping the one
    before, or reaching back into the tile before)."""
    rng = np.random.default_rng(n)
    x = _mostly_blank(rng, 40, 290).astype(dtype)
    sp = sparse_arguments(sparse_rows(x, block=SMALL_BLOCK), np.dtype(dtype))
    rows = np.array([39, 3, 3, 17, 0, 25, 8, 11], dtype=np.intp)
    delta = rng.normal(size=(len(rows), n)).astype(dtype)
    dst = rng.normal(size=2 + 290 * n + 2).astype(dtype)
    consts = dense_kernels.constants(np.dtype(dtype))
    want, got = dst.copy(), dst.copy()
    a, b = dst.dtype.type(alpha), dst.dtype.type(beta)
    sparse_kernels.sparse_weight_gradient(sp, rows, len(rows), delta, want, 2, 290, n, a, b, consts)
    sparse_kernels.wide_weight_gradient(sp, rows, len(rows), delta, got, 2, 290, n, a, b, consts)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, dst)


def test_batch_columns_lists_each_columns_nonzeros_by_batch_row():
    rng = np.random.default_rng(5)
    x = _mostly_blank(rng, 30, 300)
    form = sparse_rows(x, block=SMALL_BLOCK)
    rows = np.array([29, 4, 4, 0, 17], dtype=np.intp)
    starts, members, values = sparse_kernels.batch_columns(
        sparse_arguments(form, np.dtype("float64")), rows, len(rows), 300
    )
    v = x[rows] - form.base  # the nonzeros of V (X = V + 1 base^T)
    for j in range(300):
        want_rows = np.flatnonzero(v[:, j])
        assert list(members[starts[j] : starts[j + 1]]) == list(want_rows)  # increasing batch rows
        assert np.array_equal(values[starts[j] : starts[j + 1]], v[want_rows, j])
    assert starts[-1] == np.count_nonzero(v)


@njit
def _simd_gather(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last):
    simd.gather(indices, values, p0, p1, src, src_off, ld, init, init_off, out, out_off, last)


@njit
def _simd_scatter(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip):
    simd.scatter(indices, values, p0, p1, dst, dst_off, ld, d, d_off, alpha, last, skip)


def _tile_cases(width):
    """(vectors, last, skip): full tiles, a last vector overlapping the one before, and a
    single vector reaching back into the tile before (last < 0)."""
    for vectors in range(1, simd.TILE_VECTORS + 1):
        yield vectors, (vectors - 1) * width, 0
        if vectors > 1:
            yield vectors, (vectors - 1) * width - 5, 5
    yield 1, -3, 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_simd_loops_equal_their_numpy_reference(dtype):
    """gather/scatter against mlpkit.engine.sparse_reference for every tile shape: the
    tile's columns get the reference's numbers (to a bound from the sums), others stay untouched."""
    rng = np.random.default_rng(11)
    width, ld, src_rows, src_off = simd.lanes(np.dtype(dtype).itemsize), 90, 40, 7
    indices = np.sort(rng.choice(src_rows, size=23, replace=False)).astype(np.uint16)
    values = rng.normal(size=23).astype(dtype)
    p0, p1 = 2, 21
    src = rng.normal(size=src_off + src_rows * ld + 8).astype(dtype)
    for vectors, last, skip in _tile_cases(width):
        columns = sparse_reference.tile_columns(vectors, width, last)
        init, out0 = rng.normal(size=ld + 30).astype(dtype), np.full(ld + 30, np.nan, dtype)
        got, want = out0.copy(), out0.copy().astype(np.float64)
        _simd_gather(indices, values, p0, p1, src, src_off, ld, init, 10, got, 10, last)  # (last: the tile's shape)
        sparse_reference.gather(
            indices, values, p0, p1, src, src_off, ld, init, 10, want, 10, last, vectors=vectors, width=width
        )
        abs_sum = np.abs(init[10 + columns]).astype(np.float64)
        for p in range(p0, p1):
            abs_sum += abs(float(values[p])) * np.abs(src[src_off + int(indices[p]) * ld + columns])
        assert_within(got[10 + columns], want[10 + columns], sum_error_bound(abs_sum, p1 - p0 + 1, dtype))
        untouched = np.setdiff1d(np.arange(len(got)), 10 + columns)
        assert np.isnan(got[untouched]).all()

        d = rng.normal(size=ld + 30).astype(dtype)
        dst = rng.normal(size=src_off + src_rows * ld + 8).astype(dtype)
        got, want = dst.copy(), dst.astype(np.float64)
        _simd_scatter(indices, values, p0, p1, got, src_off, ld, d, 12, dst.dtype.type(-0.5), last, skip)
        sparse_reference.scatter(
            indices, values, p0, p1, want, src_off, ld, d, 12, -0.5, last, skip, vectors=vectors, width=width
        )
        abs_sum = np.abs(dst).astype(np.float64) + 0.5 * np.abs(values).max() * np.abs(d).max()
        assert_within(got, want, sum_error_bound(abs_sum, 2, dtype))
        written = sparse_reference.tile_columns(vectors, width, last, skip)
        rows_hit = src_off + indices[p0:p1].astype(int)[:, None] * ld + written
        untouched = np.setdiff1d(np.arange(len(got)), rows_hit.ravel())
        assert np.array_equal(got[untouched], dst[untouched])  # masked lanes and other rows: not a bit changed


def test_simd_loops_refuse_mixed_dtypes():
    @njit
    def mixed(indices, values, src, init, out):
        simd.gather(indices, values, 0, 1, src, 0, 1, init, 0, out, 0, 48)

    a32, a64 = np.zeros(64, np.float32), np.zeros(64, np.float64)
    with pytest.raises((TypingError, TypeError), match="share one float dtype"):
        mixed(np.zeros(1, np.uint16), a32, a64, a32, a32)
    assert simd.lanes(4) == 16 and simd.lanes(8) == 8


def test_prefetching_rows_changes_nothing_and_takes_empty_rows():
    x = np.zeros((6, 300), np.float32)
    x[1, 5] = x[3, 299] = 2.0  # rows 0, 2, 4 and 5 hold no entries; row 3's is the set's last
    sp = sparse_arguments(sparse_rows(x, block=SMALL_BLOCK), np.dtype(np.float32))
    before = [np.copy(a) for a in sp[:4]]
    sparse_kernels.prefetch_rows(sp, np.array([5, 3, 0, 1, 3], dtype=np.intp))
    sparse_kernels.prefetch_rows(sp, np.empty(0, dtype=np.intp))
    assert all(np.array_equal(a, b) for a, b in zip(sp[:4], before))

    @njit
    def wrong(values):
        simd.prefetch(values, 1.5)

    with pytest.raises((TypingError, TypeError), match="an array and an integer index"):
        wrong(np.zeros(4, np.float32))


# ---------------------------------------------------------------------- whole runs
def _fit(
    sparse,
    activation="tanh",
    bias="input_column",
    momentum=0.9,
    hidden=(70,),
    dtype="float64",
    engine="compiled",
    epochs=2,
    n=331,
    features=200,
    segment_steps=None,
    augment=None,
):
    rng = np.random.default_rng(5)
    model = MLP(list(hidden), n_features=features, activation=activation, bias=bias, dtype=dtype)
    model.init_weights(rng, "fan_in_normal")
    data = np.random.default_rng(2)
    x = model.prepare_inputs(_mostly_blank(data, n, features))
    y = data.integers(0, 10, n)
    history = History()
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.05, momentum=momentum),
        rng=rng,
        epochs=epochs,
        batch_size=16,
        drop_last=False,
        validations_per_epoch=2,
        callbacks=[history],
        engine=engine,
    )
    trainer.sparse_inputs = sparse
    if segment_steps:
        trainer.segment_steps = segment_steps
    if augment is not None:
        feed = AugmentFeed(lambda epoch, out, stop: augment(x, epoch, out), n, features, dtype=model.dtype)
        trainer.augment = feed
    try:
        trainer.fit(x, y, x[:120], y[:120])
    finally:
        if augment is not None:
            feed.close()
    return trainer, history


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias", ["input_column", "per_layer"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("hidden", [(70,), (9, 7)])
def test_sparse_compiled_engine_equals_numpy_engine_in_float64(activation, bias, momentum, hidden):
    ts, hs = _fit(True, activation, bias, momentum, hidden)
    tn, hn = _fit(False, activation, bias, momentum, hidden, engine="numpy")
    assert ts.sparse_used and ts.engine_used == "compiled" and tn.engine_used == "numpy"
    assert ts.state.step == tn.state.step == 2 * 21  # 331 rows, batch 16, short last batch kept
    # the sums differ in order (V W + base W against X W): a bound from their size, not one draw
    params, velocity = _flat(tn.model.parameters()), _flat(tn.optimizer.velocity)
    atol = float64_run_tolerance(
        steps=tn.state.step,
        n_terms=ts.model.input_width,
        momentum=momentum,
        scale=max(np.abs(params).max(), np.abs(velocity).max()),
    )
    np.testing.assert_allclose(_flat(ts.model.parameters()), params, rtol=0, atol=atol)
    np.testing.assert_allclose(_flat(ts.optimizer.velocity), velocity, rtol=0, atol=atol)
    np.testing.assert_allclose(hs.train_loss, hn.train_loss, rtol=0, atol=atol)
    for key in History.VALIDATION_KEYS:
        np.testing.assert_allclose(hs.validation[key], hn.validation[key], rtol=0, atol=atol)


def test_sparse_float32_run_stays_within_float32_tolerance_of_dense():
    (t32, h32), (td, hd) = _fit(True, dtype="float32", epochs=1), _fit(False, dtype="float64", epochs=1)
    assert t32.sparse_used and not td.sparse_used
    np.testing.assert_allclose(h32.train_loss, hd.train_loss, rtol=3e-5)
    np.testing.assert_allclose(_flat(t32.model.parameters()), _flat(td.model.parameters()), rtol=0, atol=3e-5)


def test_sparse_runs_of_steps_cut_differently_give_identical_bits():
    a, ha = _fit(True, dtype="float32")
    b, hb = _fit(True, dtype="float32", segment_steps=4)
    assert a.sparse_used and b.sparse_used
    assert _flat(a.model.parameters()).tobytes() == _flat(b.model.parameters()).tobytes()
    assert ha.to_dict() == hb.to_dict()


@pytest.mark.parametrize("hidden", [(70,), (130, 20)])  # row-wise loops; the packed product and column-wise gradient
def test_the_feature_block_changes_no_bit_of_a_run_or_of_its_validation(hidden):
    """A block decides only the loops' order over W's rows, never the order of any sum: steps and
    validation give the same bits with blocks of 7, SMALL_BLOCK and FEATURE_BLOCK columns."""
    from mlpkit.engine.compiled import CompiledSteps

    results = []
    for block in (7, SMALL_BLOCK, FEATURE_BLOCK):
        rng = np.random.default_rng(11)
        model = MLP(list(hidden), n_features=300, activation="sigmoid", bias="input_column", dtype="float32")
        model.init_weights(rng, "fan_in_normal")
        data = np.random.default_rng(12)
        x = model.prepare_inputs(_mostly_blank(data, 200, 300))
        y = data.integers(0, 10, 200).astype(np.intp)
        sp = sparse_rows(x, block=block)
        assert sp is not None and sp.blocks.shape[1] == -(-301 // block) + 1
        runner = CompiledSteps(model, SGD(model.parameters(), lr=0.05, momentum=0.9), 16, x, y, sp)
        assert runner.run(data.permutation(200).astype(np.int64), 0, 12) == 12
        ev = CompiledEvaluation(model)
        validation = ev(x, y, ev.scratch(), sp, 0)
        results.append((model.flat_parameters.tobytes(), runner.losses[:12].tobytes(), validation))
    assert results[0] == results[1] == results[2]


def test_a_block_of_no_columns_is_refused():
    with pytest.raises(ValueError, match="a block of 0 columns"):
        sparse_rows(_mostly_blank(np.random.default_rng(0), 10, 20), block=0)


def test_evaluator_on_the_sparse_form_equals_the_dense_evaluation():
    rng = np.random.default_rng(3)
    model = MLP([40, 12], n_features=300, activation="relu", dtype="float64", bias="input_column").init_weights(
        rng, "fan_in_normal"
    )
    x = model.prepare_inputs(_mostly_blank(rng, 5000, 300))
    y = rng.integers(0, 10, 5000)
    with Evaluator(model, max_rows=5000, chunk=700) as ev:
        dense = ev.evaluate_many([(x, y), (x[:900], y[:900])])
        ev.use_sparse(x, sparse_rows(x, block=SMALL_BLOCK))
        assert ev.sparse_of(x) is not None and ev.sparse_of(x.copy()) is None  # this very array only
        sparse = ev.evaluate_many([(x, y), (x[:900], y[:900])])
        with pytest.raises(ValueError, match="sparse inputs of shape"):
            ev.use_sparse(x[:10], sparse_rows(x))
    rel = float64_sum_tolerance(x.shape[1])  # the first layer's sums are the longest
    for (ld, ad), (ls, as_) in zip(dense, sparse):
        assert ls == pytest.approx(ld, rel=rel) and as_ == ad
    assert dense[0] == pytest.approx(model.evaluate(x, y), rel=rel)
    ev = CompiledEvaluation(model)
    loss_sum, hits = ev(x[100:400], y[100:400], ev.scratch(), sparse_rows(x, block=SMALL_BLOCK), 100)
    assert hits == round(model.evaluate(x[100:400], y[100:400])[1] * 300)
    assert loss_sum / 300 == pytest.approx(model.evaluate(x[100:400], y[100:400])[0], rel=rel)


def test_when_the_trainer_uses_the_sparse_form(monkeypatch):
    assert _fit(True, epochs=1)[0].sparse_used
    assert not _fit(False, epochs=1)[0].sparse_used  # turned off
    assert not _fit(True, epochs=1, engine="numpy")[0].sparse_used

    # dense data: no sparse form
    rng = np.random.default_rng(0)
    model = MLP([8], n_features=30, dtype="float64", bias="input_column").init_weights(rng)
    x, y = model.prepare_inputs(rng.normal(size=(64, 30))), rng.integers(0, 10, 64)
    t = Trainer(model, SGD(model.parameters(), lr=0.1), rng=rng, epochs=1, batch_size=16)
    t.fit(x, y, x, y)
    assert t.engine_used == "compiled" and not t.sparse_used

    # large steps with BLAS on two threads: the steps stay dense (the sparse kernels use one thread)
    monkeypatch.setattr(planner, "SMALL_STEP_MACS", 0)
    monkeypatch.setattr(threads.BlasThreads, "threads", lambda self: 2)
    monkeypatch.setattr(threads.BlasThreads, "limit", lambda self, n: __import__("contextlib").nullcontext())
    t, _ = _fit(True, epochs=1)
    assert t.engine_used == "compiled" and not t.sparse_used


def test_augmented_steps_train_on_the_feed_while_validation_reads_the_sparse_form(monkeypatch):
    """With augmentation the steps read each epoch's inputs from the feed, through the sparse form
    the feed makes of them (never the unaugmented x_train's); validation of x_train and x_val
    uses their own sparse forms."""

    def shifted(x, epoch, out):  # each epoch's inputs: the images' columns rolled by the epoch
        out[:, :-1] = np.roll(x[:, :-1], epoch + 1, axis=1)
        out[:, -1] = 1.0

    registered = []
    use_sparse = Evaluator.use_sparse

    def recording(self, x, sparse):
        registered.append(sparse is not None)
        use_sparse(self, x, sparse)

    monkeypatch.setattr(Evaluator, "use_sparse", recording)
    sparse, sparse_history = _fit(True, augment=shifted)
    assert registered == [True, True]  # x_train's and x_val's sparse forms, for validation
    dense, dense_history = _fit(False, augment=shifted)
    assert sparse.sparse_used and sparse.engine_used == "compiled" and not dense.sparse_used
    params = _flat(dense.model.parameters())
    atol = float64_run_tolerance(steps=dense.state.step, n_terms=201, momentum=0.9, scale=np.abs(params).max())
    np.testing.assert_allclose(_flat(sparse.model.parameters()), params, rtol=0, atol=atol)
    plain, _ = _fit(True)  # without the feed the weights differ: the feed's inputs were trained on
    assert np.abs(_flat(plain.model.parameters()) - _flat(sparse.model.parameters())).max() > 1e3 * atol
    for key in ("val_loss", "train_loss"):
        assert len(sparse_history.validation[key]) == 4
        np.testing.assert_allclose(sparse_history.validation[key], dense_history.validation[key], rtol=1e-9)


def test_compiled_steps_check_the_sparse_form_fits():
    rng = np.random.default_rng(0)
    model = MLP([8], n_features=50, dtype="float64", bias="input_column").init_weights(rng)
    x = model.prepare_inputs(_mostly_blank(rng, 40, 50))
    y = rng.integers(0, 10, 40)
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="sparse inputs of shape"):
        compiled_steps("compiled", model, opt, 8, x, y, sparse_rows(x[:20]))
    with pytest.raises(ValueError, match="sparse inputs are float32"):
        compiled_steps("compiled", model, opt, 8, x, y, sparse_rows(x.astype(np.float32)))


def test_memory_trim_can_be_called_any_time():
    assert memory.trim() in (True, False)


def test_real_mnist_is_sparse_and_trains_the_same_sparse_or_dense(mnist_path):
    from mlpkit.data import Normalizer, load_mnist, make_split

    split = make_split(load_mnist(mnist_path), "seed")
    x = Normalizer.fit(split.x_train).apply(split.x_train[:2000], bias_column=True)
    sp = sparse_rows(x)
    assert sp is not None and 0.15 < sp.density < 0.25  # MNIST: about 19% of pixels are ink
    assert sp.indices.dtype == np.uint16 and sp.nbytes < 0.4 * x.nbytes
    runs = []
    for sparse, dtype in ((True, "float32"), (False, "float32"), (False, "float64")):
        rng = np.random.default_rng(0)
        model = MLP([64], activation="improved_sigmoid", dtype=dtype, bias="input_column").init_weights(
            rng, "fan_in_normal"
        )
        history = History()
        t = Trainer(
            model, SGD(model.parameters(), lr=0.1, momentum=0.9), rng=rng, epochs=1, batch_size=32, callbacks=[history]
        )
        t.sparse_inputs = sparse
        xd = x.astype(dtype)
        t.fit(xd, split.y_train[:2000], xd[:500], split.y_train[:500])
        assert t.sparse_used == sparse
        runs.append((history, _flat(model.parameters())))
    (hs, ps), (hd, pd), (h64, p64) = runs
    # float32 drifts from float64 over 62 momentum steps; the sparse run no more than the dense one
    assert np.abs(ps - p64).max() < 2 * np.abs(pd - p64).max() + 1e-6
    assert np.abs(hs.train_loss - h64.train_loss).max() < 2 * np.abs(hd.train_loss - h64.train_loss).max() + 1e-6
    np.testing.assert_allclose(hs.train_loss, h64.train_loss, rtol=1e-3)
    np.testing.assert_allclose(hs.validation["val_accuracy"], h64.validation["val_accuracy"], atol=4e-3)


def test_config_turns_sparse_inputs_off_and_metrics_say_so(mnist_path, tmp_path):
    import json

    from mlpkit.runs.config import with_overrides
    from mlpkit.workflows.configs import resolve_config
    from mlpkit.workflows.experiment import run_experiment

    for flag in (False, True):
        cfg = with_overrides(
            resolve_config("task3c"),
            ["epochs=1", "n_train=640", "data.n_val=200", f"train.sparse_inputs={str(flag).lower()}"],
        )
        out = tmp_path / f"run-{flag}"
        run_experiment(cfg, out, data_dir=mnist_path, progress=False, log=lambda *a: None)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["engine"] == "compiled" and metrics["sparse_inputs"] is flag


@njit
def _aligned_buffer_address(n, dtype):
    buffer = sparse_kernels.aligned_buffer(n, dtype)
    buffer[:] = 1  # the whole buffer is writable
    return buffer.ctypes.data, buffer.shape[0]


@pytest.mark.parametrize("n", [0, 1, 17, 4096, 70_001])
def test_the_kernels_scratch_buffers_start_on_a_cache_line(n):
    """The packed weight tiles and scaled deltas the vector loops read start on 64 bytes (Numba's
    np.empty gives 32: a 512-bit load across two cache lines costs ~1.7x), and so do the
    steps' and the evaluation's scratch (numpy.empty gives 16 for large buffers)."""
    for dtype in (np.float32, np.float64):
        address, size = _aligned_buffer_address(n, dtype)
        assert address % 64 == 0 and size == n
    model = MLP([64], n_features=30, n_classes=3, activation="relu")
    assert CompiledEvaluation(model).scratch().ctypes.data % 64 == 0
    x = model.prepare_inputs(np.zeros((40, 30)))
    steps = CompiledSteps(model, SGD(model.parameters(), lr=0.1), 8, x, np.zeros(40, np.intp))
    assert steps._scratch.ctypes.data % 64 == 0

"""Inputs as "one common value per column, plus a few exceptions": X = V + 1 base^T.

Why: an MNIST image is 81% blank pixels, and after normalization every blank pixel of a
column holds the same number. So X @ W = V @ W + base @ W, where ``base @ W`` is one row
(computed once per weight update) and V is sparse: only 19% of a row's entries are not zero.
The first layer's products (forward, and the weight gradient X^T delta = V^T delta +
base sum(delta)) then cost about a fifth of the dense ones; the compiled engine runs them
with :mod:`mlpkit.engine.simd`'s loops (:mod:`mlpkit.engine.sparse_kernels`). Nothing is
approximated: V holds ``x - base`` for every
entry that is not exactly ``base``.

``base`` is each column's most common value, as far as two candidates tell: its smallest
value (the blank pixel of images with a dark background) and its majority vote (Boyer-Moore:
the value that fills more than half the column, if one does); a bias column of ones has V
all zero. When fewer than ``1 - MAX_DENSITY``
of the entries equal their column's base, the dense products are faster and
:func:`sparse_rows` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpkit.engine.kernel_cache import kernel_jit

#: Above this fraction of entries that differ from their column's base, dense BLAS wins
#: (measured: at MNIST's 19% the sparse first layer is 2-5x faster than dense).
MAX_DENSITY = 0.5
#: Columns per block: the kernels take a block of W's rows at a time, and every row of a batch
#: visits the block before the next. Each (row, block) pair costs a loop's set-up and its
#: mispredicted exit, so fewer blocks are faster as long as the visited rows of W stay in the L2
#: cache. Measured on MNIST (785 columns, 2-core EPYC): a seed-base validation pass 17.0 ms on
#: one thread with 128 (7 blocks), 15.6 with 256, 13.8 with 512, 15.5 with one block of 785;
#: whole seed-base epochs 0.076-0.082 s -> 0.067 s, validation 0.047-0.051 -> 0.035-0.036;
#: 1024-wide products unchanged (split 0.47-0.50 ms at 512 against 0.50-0.51 at 128).
#: Any block gives the same sums, in the same order.
FEATURE_BLOCK = 512


@dataclass(frozen=True, eq=False)
class SparseRows:
    """Row-compressed form of V = X - 1 base^T for the rows of one prepared input array."""

    blocks: np.ndarray  # int64 (n, blocks + 1): row r's entries in columns
    #                     [b * block, (b + 1) * block) are blocks[r, b]:blocks[r, b + 1]
    indices: np.ndarray  # column of each entry (``index_dtype``), ascending within a row
    values: np.ndarray  # x - base of each entry, in the inputs' dtype
    base: np.ndarray  # (features,) the common value of each column
    block: int = FEATURE_BLOCK  # columns per block of ``blocks``

    @property
    def shape(self) -> tuple[int, int]:
        return self.blocks.shape[0], len(self.base)

    @property
    def density(self) -> float:
        rows, cols = self.shape
        return len(self.values) / max(1, rows * cols)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.blocks, self.indices, self.values, self.base))

    def dense(self) -> np.ndarray:
        """X back (for tests): base in every entry, plus V."""
        x = np.repeat(self.base[None, :], self.shape[0], axis=0)
        for r in range(self.shape[0]):
            s = slice(self.blocks[r, 0], self.blocks[r, -1])
            x[r, self.indices[s]] += self.values[s]
        return x


def index_dtype(features: int) -> np.dtype:
    """uint16 column numbers where they fit (MNIST's 785 do): a third less memory than int32."""
    return np.dtype(np.uint16 if features <= 2**16 else np.int32)


def sparse_rows(x: np.ndarray, max_density: float = MAX_DENSITY, block: int = FEATURE_BLOCK) -> SparseRows | None:
    """The sparse form of C-ordered float ``x`` (n, features), or None if it is too dense
    (or empty). Two passes over ``x`` and no temporary of its size. ``block``: columns per block
    (any positive number gives the kernels the same results; tests use small ones)."""
    if block < 1:
        raise ValueError(f"a block of {block} columns: it must be at least 1")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0 or x.dtype not in (np.float32, np.float64):
        return None
    if not x.flags.c_contiguous or x.shape[1] >= 2**31:
        return None
    base = np.empty(x.shape[1], dtype=x.dtype)
    counts = np.empty(x.shape[0] + 1, dtype=np.int64)
    votes = np.zeros((3, x.shape[1]), dtype=np.int64)  # work arrays made here: no allocation compiled in
    votes[0] = 1
    _choose_base(x, base, x[0].copy(), x[0].copy(), votes)
    if not np.isfinite(base).all():
        return None
    _count_differing(x, base, counts)
    total = int(counts.sum())
    if total > max_density * x.size:
        return None
    starts = counts  # reused: prefix sums of the counts, in place
    starts[1:] = np.cumsum(counts[:-1])
    starts[0] = 0
    blocks = np.empty((x.shape[0], -(-x.shape[1] // block) + 1), dtype=np.int64)
    indices = np.empty(total, dtype=index_dtype(x.shape[1]))
    values = np.empty(total, dtype=x.dtype)
    _fill(x, base, starts, block, blocks, indices, values)
    return SparseRows(blocks=blocks, indices=indices, values=values, base=base, block=block)


@kernel_jit(nogil=True)
def _choose_base(x, base, low, vote, counts):
    """base[c] = whichever of column c's minimum and majority-vote candidate occurs more often.

    ``low`` and ``vote`` start as copies of row 0; ``counts`` (3, columns) int64 as ones, zeros, zeros.
    """
    n = x.shape[1]
    votes, n_low, n_vote = counts[0], counts[1], counts[2]
    for r in range(1, x.shape[0]):
        row = x[r]
        for c in range(n):
            v = row[c]
            if v < low[c]:
                low[c] = v
            if votes[c] == 0:
                vote[c] = v
                votes[c] = 1
            elif v == vote[c]:
                votes[c] += 1
            else:
                votes[c] -= 1
    for r in range(x.shape[0]):
        row = x[r]
        for c in range(n):
            n_low[c] += row[c] == low[c]
            n_vote[c] += row[c] == vote[c]
    for c in range(n):
        base[c] = low[c] if n_low[c] >= n_vote[c] else vote[c]


@kernel_jit(nogil=True)
def _count_differing(x, base, counts):
    """counts[r] = entries of row r that differ from base (NaN differs); counts[-1] = 0."""
    for r in range(x.shape[0]):
        row = x[r]
        differing = 0
        for c in range(x.shape[1]):
            if row[c] != base[c]:
                differing += 1
        counts[r] = differing
    counts[x.shape[0]] = 0


@kernel_jit(nogil=True)
def _fill(x, base, starts, block, blocks, indices, values):
    n_blocks = blocks.shape[1] - 1
    for r in range(x.shape[0]):
        row = x[r]
        p = starts[r]
        for b in range(n_blocks):
            blocks[r, b] = p
            for c in range(b * block, min(x.shape[1], (b + 1) * block)):
                if row[c] != base[c]:
                    indices[p] = c
                    values[p] = row[c] - base[c]
                    p += 1
        blocks[r, n_blocks] = p

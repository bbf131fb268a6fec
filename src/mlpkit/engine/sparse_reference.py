"""Plain NumPy versions of simd.py's two loops: what ``gather<k>`` and ``scatter<k>`` compute.

They take the same arguments (plus the tile's vector count and width, which the SIMD loops
have compiled in) and state the contract in the obvious way, one nonzero at a time;
tests/test_sparse.py checks the SIMD loops against them for every tile shape. Not used in
training.
"""

from __future__ import annotations

import numpy as np


def tile_columns(vectors: int, width: int, last: int, skip: int = 0) -> np.ndarray:
    """Column offsets a tile of ``vectors`` vectors of ``width`` lanes covers: vector v at
    ``v * width`` and the last one at ``last``, without its first ``skip`` lanes, each column once."""
    columns = [np.arange(v * width, (v + 1) * width) for v in range(vectors - 1)]
    columns.append(np.arange(last + skip, last + width))
    return np.unique(np.concatenate(columns))


def gather(
    indices: np.ndarray,
    values: np.ndarray,
    p0: int,
    p1: int,
    src: np.ndarray,
    src_off: int,
    ld: int,
    init: np.ndarray,
    init_off: int,
    out: np.ndarray,
    out_off: int,
    last: int,
    *,
    vectors: int,
    width: int,
) -> None:
    """``out[out_off + c] = init[init_off + c] + sum_p values[p] * src[src_off + indices[p] * ld + c]``
    for p in ``p0 .. p1 - 1`` and every column c of the tile (a sparse row times a dense matrix)."""
    c = tile_columns(vectors, width, last)
    acc = init[init_off + c].astype(np.float64)
    for p in range(p0, p1):
        acc += float(values[p]) * src[src_off + int(indices[p]) * ld + c].astype(np.float64)
    out[out_off + c] = acc


def scatter(
    indices: np.ndarray,
    values: np.ndarray,
    p0: int,
    p1: int,
    dst: np.ndarray,
    dst_off: int,
    ld: int,
    d: np.ndarray,
    d_off: int,
    alpha: float,
    last: int,
    skip: int,
    *,
    vectors: int,
    width: int,
) -> None:
    """``dst[dst_off + indices[p] * ld + c] += alpha * values[p] * d[d_off + c]`` for p in
    ``p0 .. p1 - 1`` and every column c of the tile, the last vector's first ``skip`` lanes
    left out (a sparse row transposed times a row of deltas, added into a gradient)."""
    c = tile_columns(vectors, width, last, skip)
    row = d[d_off + c].astype(np.float64)
    for p in range(p0, p1):
        at = dst_off + int(indices[p]) * ld + c
        dst[at] = dst[at] + alpha * float(values[p]) * row

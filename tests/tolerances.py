"""Tolerances for comparing two float64 engines, derived from the sums they compute.

Two engines that add the same terms in a different order (BLAS blocking, the sparse first
layer's V W + base W) differ by rounding: a sum of n terms is off by at most about
n * eps * max|term| (recursive summation). A training step's longest sums have
``n_terms`` terms (a layer's fan_in, or the batch), and what differs after one step is
passed on by the next ones: over ``steps`` steps the differences add up, and momentum keeps
each one in the velocity for about 1 / (1 - momentum) steps. So after a run

    |w_a - w_b| <= c * eps * n_terms * scale * steps / (1 - momentum)

with ``scale`` the size of the parameters and velocities. c = 4 leaves a margin of about
7x over the largest difference measured on 480 runs of tests/test_sparse.py's float64
comparison (every activation, bias mode, momentum and depth, 15 batch orders each), where
the largest was 1.1e-11 after 42 steps, and more on the dense comparison of
tests/test_kernels.py. The losses and validation numbers that follow from those weights
stayed within the same bound.
"""

from __future__ import annotations

import numpy as np

EPS64 = float(np.finfo(np.float64).eps)


def float64_run_tolerance(*, steps: int, n_terms: int, scale: float, momentum: float, c: float = 4.0) -> float:
    """The bound above: how far two float64 engines' weights may drift apart over a run."""
    return c * EPS64 * n_terms * max(scale, 1e-300) * steps / (1.0 - momentum)


def float64_sum_tolerance(n_terms: int, c: float = 16.0) -> float:
    """Relative difference of two float64 evaluations whose longest sums have ``n_terms`` terms."""
    return c * EPS64 * n_terms


def sum_error_bound(abs_sum: np.ndarray, n_terms: int, dtype: np.dtype | str, c: float = 2.0) -> np.ndarray:
    """Elementwise bound on the rounding of sums of ``n_terms`` terms in ``dtype`` whose absolute
    values add up to ``abs_sum``: c * n * eps * abs_sum (plus the smallest normal, for zeros)."""
    info = np.finfo(np.dtype(dtype))
    return c * n_terms * float(info.eps) * np.asarray(abs_sum, dtype=np.float64) + float(info.tiny)


def assert_within(actual: np.ndarray, expected: np.ndarray, bound: np.ndarray) -> None:
    """|actual - expected| <= bound everywhere (NaNs fail), with the worst entry in the message."""
    diff = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(expected, dtype=np.float64))
    ok = diff <= bound
    if not ok.all():
        worst = np.unravel_index(np.argmax(np.where(ok, 0, np.nan_to_num(diff / bound, nan=np.inf))), diff.shape)
        raise AssertionError(
            f"{np.count_nonzero(~ok)} entries off by more than their bound; worst at {worst}:"
            f" {diff[worst]:.3g} > {np.broadcast_to(bound, diff.shape)[worst]:.3g}"
        )

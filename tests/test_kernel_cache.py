"""The kernels' on-disk cache is keyed on all of their sources (mlpkit.engine.kernel_cache).

Numba alone keys a cached function on its own file, so an edit of simd.py (compiled into
kernels.py's functions) used to load stale machine code. Here: any change of any kernel
source gives another cache folder, every module with compiled code is among the sources,
the real kernels are cached there, and leftovers of killed writes and old digests go.
"""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import numpy as np
import pytest

from mlpkit.engine import kernel_cache

ENGINE = Path(kernel_cache.__file__).parent


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """kernel_cache with its per-process memos cleared and its root in tmp_path; restored after."""
    monkeypatch.setattr(kernel_cache, "cache_root", lambda: tmp_path)
    kernel_cache.current_digest.cache_clear()
    kernel_cache._prepared_directory.cache_clear()
    yield tmp_path
    kernel_cache.current_digest.cache_clear()
    kernel_cache._prepared_directory.cache_clear()


def test_any_edit_of_any_kernel_source_moves_the_cache():
    sources = kernel_cache._read_sources()
    assert set(sources) == set(kernel_cache.KERNEL_SOURCES)
    digest = kernel_cache.source_digest(sources)
    assert digest == kernel_cache.current_digest()
    seen = {digest}
    for name in sources:
        edited = dict(sources, **{name: sources[name] + b"\n# edited\n"})
        seen.add(kernel_cache.source_digest(edited))
    assert len(seen) == len(sources) + 1  # each edit: a digest of its own
    assert kernel_cache.cache_directory(digest) != kernel_cache.cache_directory(
        kernel_cache.source_digest(
            dict(
                sources,
                **{"engine/simd.py": sources["engine/simd.py"].replace(b"TILE_VECTORS = 4", b"TILE_VECTORS = 3")},
            )
        )
    )


def test_a_changed_source_text_gives_a_kernel_another_cache_folder(fresh_cache, monkeypatch):
    def jitted():
        @kernel_cache.kernel_jit(nogil=True)
        def twice(x):
            return 2 * x

        return twice

    before = jitted()
    assert before(np.float64(3)) == 6.0
    first = Path(before._cache.cache_path)
    assert first.parent == fresh_cache and first.name == f"kernels-{kernel_cache.current_digest()}"
    assert any(first.glob("*.nbi")), "the compiled function was written to its cache folder"

    real = kernel_cache._read_sources

    def edited():
        sources = real()
        sources["engine/simd.py"] += b"\n# a change Numba alone would not notice\n"
        return sources

    monkeypatch.setattr(kernel_cache, "_read_sources", edited)
    kernel_cache.current_digest.cache_clear()
    kernel_cache._prepared_directory.cache_clear()
    after = jitted()
    second = Path(after._cache.cache_path)
    assert second != first and second.parent == fresh_cache
    assert after(np.float64(4)) == 8.0
    assert not first.exists()  # the old digest's folder was pruned


def test_stale_temporaries_and_other_digests_are_pruned(tmp_path):
    current = tmp_path / "kernels-new"
    current.mkdir()
    old_tmp = current / "kernels.train_steps-70.py311.nbi.tmp.0123456789abcdef"
    fresh_tmp = current / "kernels.forward-40.py311.1.nbc.tmp.fedcba9876543210"
    entry = current / "kernels.forward-40.py311.nbi"
    for f in (old_tmp, fresh_tmp, entry):
        f.write_bytes(b"x")
    hour_ago = time.time() - kernel_cache.STALE_TMP_AGE_S - 60
    os.utime(old_tmp, (hour_ago, hour_ago))
    other = tmp_path / "kernels-old"
    other.mkdir()
    (other / "kernels.forward-40.py311.nbi").write_bytes(b"x")
    kernel_cache.prune(current)
    assert not old_tmp.exists() and not other.exists()
    assert fresh_tmp.exists() and entry.exists()  # a write in progress elsewhere, and a good entry


def _has_compiled_code(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    names = {"njit", "jit", "kernel_jit", "intrinsic", "register_jitable"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                if name in names:
                    return True
    return False


def test_every_engine_module_with_compiled_code_is_a_kernel_source():
    compiled = {f"engine/{p.name}" for p in ENGINE.glob("*.py") if _has_compiled_code(p)}
    assert compiled >= {"engine/kernels.py", "engine/simd.py", "engine/sparse.py"}
    assert compiled <= set(kernel_cache.KERNEL_SOURCES), compiled - set(kernel_cache.KERNEL_SOURCES)


def test_the_real_kernels_are_cached_in_the_digest_folder():
    from mlpkit.engine import dense_kernels, kernels, sparse, sparse_kernels

    want = str(kernel_cache.cache_directory())
    for fn in (
        kernels.train_steps,
        kernels.evaluate_rows,
        sparse_kernels.sparse_product,
        dense_kernels.tanh32,
        sparse._fill,
    ):
        assert fn._cache.cache_path == want


def test_a_kernel_called_with_constants_compiles_once_for_their_types(fresh_cache):
    @kernel_cache.kernel_jit(nogil=True)
    def scaled(x, k, flip):
        return -x * k if flip else x * k

    @kernel_cache.kernel_jit(nogil=True)
    def caller(x, k):
        return scaled(x, 2, False) + scaled(x, k, k > 2) + scaled(x, 0, True)

    assert caller(1.5, 3) == 3.0 - 4.5 - 0.0
    # constants 2, 0 and False typed as int64 and bool, not Literal[int](2) etc.: one compilation
    assert [str(t) for t in scaled.signatures] == ["(float64, int64, bool)"]


def test_kernel_jit_refuses_numbas_own_cache_flag():
    with pytest.raises(TypeError, match="caches by itself"):
        kernel_cache.kernel_jit(cache=True)

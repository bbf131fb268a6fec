"""Numba's on-disk cache for the engine's kernels, keyed on all of their sources at once.

Why: Numba keys a cached function on its own file only, but a kernel compiles in code from
other files (simd.py's vector loops, the dense and sparse pieces, the activation codes of
nn/activations.py). After an edit of one of those, Numba would load the old machine code.
Here every kernel is cached in a folder named after a digest of all of ``KERNEL_SOURCES``,
and the digest is also each entry's source stamp: any edit means a new, empty folder, so
stale machine code cannot load. (tests/test_kernel_cache.py checks that every engine module
with compiled code is in ``KERNEL_SOURCES``.)

Where: beside the sources (``engine/__pycache__/kernels-<digest>``), or under
``NUMBA_CACHE_DIR`` when that is set, or in the user's cache folder when the package folder
is read-only. Leftovers are pruned once per process when the folder is first used: the
folders of other digests, the entries Numba itself wrote beside the sources before this
module existed, and ``*.tmp.*`` files older than an hour (Numba writes an entry to a
temporary name, then renames it; a process killed in between leaves the temporary behind,
which is never read). A process still running older sources that needs a new entry makes
its folder again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

#: The files whose text decides what the kernels compile to, relative to the mlpkit package.
KERNEL_SOURCES = (
    "engine/simd.py",
    "engine/dense_kernels.py",
    "engine/sparse_kernels.py",
    "engine/split_kernels.py",
    "engine/kernels.py",
    "engine/update_kernels.py",
    "engine/option_kernels.py",
    "engine/sparse.py",
    "nn/activations.py",
)
#: The lock file in each cache folder (see ``_locked``).
LOCK_NAME = ".lock"
#: Temporary files of an interrupted write older than this (seconds) are deleted.
STALE_TMP_AGE_S = 3600.0

_PACKAGE = Path(__file__).resolve().parents[1]
_PREFIX = "kernels-"


def source_digest(sources: Mapping[str, bytes]) -> str:
    """A short hex digest of the named source texts (names and contents, in name order)."""
    h = hashlib.sha256()
    for name in sorted(sources):
        text = sources[name]
        h.update(name.encode() + b"\0" + str(len(text)).encode() + b"\0" + text)
    return h.hexdigest()[:20]


def _read_sources() -> dict[str, bytes]:
    return {name: (_PACKAGE / name).read_bytes() for name in KERNEL_SOURCES}


@functools.cache
def current_digest() -> str:
    """The digest of ``KERNEL_SOURCES`` as they are on disk (read once per process)."""
    return source_digest(_read_sources())


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def cache_root() -> Path:
    """The folder that holds one ``kernels-<digest>`` folder per version of the sources."""
    from numba.core import config
    from numba.core.caching import _CacheLocator
    from numba.misc.appdirs import AppDirs

    engine = _PACKAGE / "engine"
    subpath = "mlpkit-" + _CacheLocator.get_suitable_cache_subpath(str(engine / "kernels.py"))
    user_dir = getattr(config, "CACHE_DIR", "")  # NUMBA_CACHE_DIR
    if user_dir:
        return Path(user_dir) / subpath
    in_tree = engine / "__pycache__"
    if _writable(in_tree):
        return in_tree
    return Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / subpath


def cache_directory(digest: str | None = None) -> Path:
    """Where kernels compiled from sources of ``digest`` (default: today's) are cached."""
    return cache_root() / f"{_PREFIX}{digest or current_digest()}"


def prune(directory: Path, now: float | None = None) -> None:
    """Delete what can no longer be loaded: other digests' folders beside ``directory``,
    Numba's own entries at their root, and stale temporary files inside ``directory``."""
    now = time.time() if now is None else now
    root = directory.parent
    for other in root.glob(f"{_PREFIX}*"):
        if other != directory and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
    if root.name == "__pycache__":  # entries of Numba's own locator, from before this module
        for old in [*root.glob("*.nbi"), *root.glob("*.nbc")]:
            old.unlink(missing_ok=True)
    for tmp in directory.glob("*.tmp.*"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_AGE_S:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass


@functools.cache
def _prepared_directory() -> Path | None:
    """Today's cache folder, made and pruned once per process; None if no folder is writable."""
    directory = cache_directory()
    if not _writable(directory):
        return None
    prune(directory)
    return directory


@functools.cache
def _cache_classes(suffix: str = "") -> type:
    """A Numba FunctionCache whose only locator is the digest-named folder (made on first use);
    ``suffix`` tells apart the entries of a kernel's C-callable form (:func:`entry_cache`)."""
    from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

    class KernelLocator(_CacheLocator):
        def __init__(self, py_func: Callable[..., Any], directory: Path, digest: str) -> None:
            self._lineno = f"{py_func.__code__.co_firstlineno}{suffix}"
            self._directory, self._digest = directory, digest

        def ensure_cache_path(self) -> None:
            os.makedirs(self._directory, exist_ok=True)  # a prune by a newer process may have removed it

        def get_cache_path(self) -> str:
            return str(self._directory)

        def get_source_stamp(self) -> str:
            return self._digest

        def get_disambiguator(self) -> str:
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func: Callable[..., Any], py_file: str) -> KernelLocator | None:
            directory = _prepared_directory()
            return None if directory is None else cls(py_func, directory, current_digest())

    class KernelCacheImpl(CompileResultCacheImpl):
        _locator_classes = [KernelLocator]  # type: ignore[list-item]

    class KernelCache(FunctionCache):
        _impl_class = KernelCacheImpl

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            with _locked(self.cache_path, exclusive=False):
                return super().load_overload(sig, target_context)

        def save_overload(self, sig: Any, data: Any) -> None:
            with _locked(self.cache_path, exclusive=True):
                super().save_overload(sig, data)

    return KernelCache


@contextlib.contextmanager
def _locked(directory: str, exclusive: bool) -> Iterator[None]:
    """Hold ``directory``'s lock file: exclusively to write an entry, shared to read one.

    Why: Numba replaces a function's index and each data file atomically, but not the pair. Two
    processes saving the same function for two signatures at once (two runs, or a run and its
    precompile helper, see mlpkit.engine.precompile) could both pick data file 1 and leave the
    index naming one signature beside the other's machine code. Without ``fcntl`` (Windows), or
    when the lock file cannot be made, nothing is locked.
    """
    try:
        import fcntl

        os.makedirs(directory, exist_ok=True)
        handle = open(os.path.join(directory, LOCK_NAME), "a")  # closed below
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        handle.close()  # releases the lock


def entry_cache(py_func: Callable[..., Any]) -> Any:
    """The cache of ``py_func`` compiled as a C-callable kernel (:mod:`mlpkit.engine.entry_points`),
    in the same folder as the kernels but in entries of its own (a compiled kernel and its
    C-callable form must not be taken for each other); None when no folder is writable."""
    if _prepared_directory() is None:
        return None
    return _cache_classes("-entry")(py_func)


def _compile_unliteral(dispatcher: Any) -> None:
    """Make calls from compiled code compile ``dispatcher`` for the arguments' types, not their values.

    Why: Numba specializes a callee for each constant it is called with (a ``0`` or ``False``
    typed ``Literal[int](0)``, ``Literal[bool](False)``), so one kernel called with ``row0=0``
    in one place and a variable in another was compiled, optimized and emitted twice (and
    every caller re-optimizes its callees' code). The kernels never need a constant folded.
    """
    from numba.core import types
    from numba.core.dispatcher import Dispatcher

    def get_call_template(args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        return Dispatcher.get_call_template(dispatcher, args, kws)

    dispatcher.get_call_template = get_call_template


def kernel_jit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)`` with the on-disk cache described above (never ``cache=True``),
    compiled once per argument types when called from other kernels (see ``_compile_unliteral``),
    and without the C-callable wrapper (``no_cfunc_wrapper``: it cost compile time; the kernels
    called through their address are compiled from the Python function by
    :mod:`mlpkit.engine.entry_points`, with their own wrapper and cache entries)."""
    from numba import njit

    if "cache" in options:
        raise TypeError("kernel_jit caches by itself; do not pass cache=")
    options = {"no_cfunc_wrapper": True, **options}

    def decorate(fn: Callable[..., Any]) -> Any:
        dispatcher = njit(**options)(fn)
        _compile_unliteral(dispatcher)
        if _prepared_directory() is not None:
            dispatcher._cache = _cache_classes()(fn)  # what Dispatcher.enable_caching does, with our locator
        return dispatcher

    return decorate

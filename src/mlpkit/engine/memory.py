"""Hand freed heap memory back to the operating system.

Why: glibc serves arrays of up to 32 MiB from its heap once a larger one has been freed (its
mmap threshold grows), and a freed heap block is kept for reuse rather than returned. A run
that frees its temporary per-fit arrays (e.g. the sparse inputs, ~30 MB for the seed split)
would then carry them in its resident memory through plotting, the run's peak. ``trim`` asks
glibc to return what it can; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim() -> bool:
    """Return free heap memory to the OS; True if the C library could be asked."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True

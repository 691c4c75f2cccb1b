"""Keep freed memory in the process heap (glibc ``mallopt``), so large temporaries are reused.

By default glibc serves every allocation above 128 KiB-32 MiB (a dynamic threshold) with a fresh
``mmap`` and returns it to the kernel on free; each reuse then pays a page fault per 4 KiB page
on first touch. A QMIX update allocates and frees dozens of 1-20 MiB tensors, so on one CPU core
about 5k page faults per update cost 10-20 ms of system time (measured in
``benchmarks/learner_efficiency.py``). ``keep_freed_memory`` raises the mmap threshold to glibc's
maximum (32 MiB on 64-bit) and the trim threshold to 1 GiB: freed blocks stay in the heap and are
reused without faults. Results are unchanged; the process keeps up to the trim threshold of freed
memory. Process-wide and idempotent; a no-op (returns False) where glibc is not the C library.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024   # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit (larger is refused)

_STATE = {"applied": False}


def keep_freed_memory(trim_threshold: int = 1 << 30, top_pad: int = 64 << 20) -> bool:
    """Apply the heap settings above once per process; returns whether glibc accepted them."""
    if _STATE["applied"]:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(mallopt(key, value) == 1 for key, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, int(trim_threshold)), (M_TOP_PAD, int(top_pad))))
    _STATE["applied"] = ok
    return ok

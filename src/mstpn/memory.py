"""Process memory settings for the large per-step tensors of the m-STPN.

A Pong-size m-STPN step makes a fresh 11 MB tensor for F (and one for its gradient) every step.
glibc serves blocks that large with mmap and returns them to the kernel when freed, so every step
page-faults ~2,700 fresh pages in (measured here: ~25 % of the m-STPN trainer's time, and much
worse on a busy VM). :func:`reuse_freed_memory` raises glibc's mmap and trim thresholds so freed
blocks stay in the heap and are reused without faults. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20
"""glibc's largest allowed mmap threshold on 64-bit systems (bytes)."""
TRIM_THRESHOLD = 2**31 - 1
"""Free memory at the top of the heap that glibc keeps instead of returning it (bytes)."""


def reuse_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MB for reuse (glibc); True when the settings took effect."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                 TRIM_THRESHOLD))

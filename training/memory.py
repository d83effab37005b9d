"""Large tensors on the CPU: keep freed memory in the process rather than fault it in anew.

glibc's malloc serves a request above its mmap threshold by a fresh ``mmap`` and unmaps it
when it is freed. The threshold adapts to what is freed, but never beyond 32 MiB on a 64-bit
system, so a training step whose tensors are larger gets new pages for each of them at every
step, and the kernel faults in and zeroes each 4 KiB page. For the per-pixel Fashion
networks (157 MB hidden tensors) those faults were more than half of a CPU step. Serving
every request from one heap that is never trimmed removes them.

Two conditions, both of the process as a whole. The setting must come before the process
starts threads: a thread allocates from an arena of its own, which cannot grow past 64 MiB
and so maps large requests anew, and ``M_ARENA_MAX`` only stops arenas being created, not
used by later threads once they exist (exited threads' arenas are handed on). So the entry
points set it (``claims train``, ``training.bench``, ``training.profile_step``), from the
recipes they are asked for, before any training. And it lasts: recipes with small tensors
trained later in the same process share the one arena, which gained nothing for
``mnist_approach3`` (slower in two of three pairs of epochs), so a process whose recipes all
stay below the ceiling is left as glibc sets it. The measurements are in
docs/performance.md ("Large tensors on the CPU").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems: above it a tensor is always mmapped.
MMAP_CEILING = 32 * 2**20

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_INT_MAX = 2**31 - 1

_kept = False


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory(largest: int) -> bool:
    """Where the tensors to come reach above ``MMAP_CEILING`` (``largest``, bytes:
    ``training.run.largest_tensor`` of the recipes), serve every allocation of this process
    from one heap that is never trimmed, so that freed tensors are reused without page
    faults. Call it before the process starts threads. Returns whether the process allocates
    so from now on (glibc only; it lasts for the process, which then keeps its peak memory)."""
    global _kept
    if largest <= MMAP_CEILING or _kept:
        return _kept
    libc = _glibc()
    if libc is None:
        return False
    # one arena: a thread's own arena cannot grow past 64 MiB and would fall back to mmap
    applied = [libc.mallopt(param, value) == 1 for param, value in
               ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX))]
    _kept = all(applied)
    return _kept

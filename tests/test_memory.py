"""Large tensors on the CPU (``training.memory``): once kept, a freed allocation above glibc's
mmap ceiling is reused without page faults; below the ceiling nothing changes. Each case runs
in a fresh interpreter, since malloc's settings last for the process; no torch is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training import memory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]

# Allocates and fills 64 MiB twice through libc and prints the page faults of the second time.
SCRIPT = """
import ctypes, resource, sys
from training import memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
size = 64 * 2**20
print(memory.keep_freed_memory(int(sys.argv[1])))

def faults():
    block = libc.malloc(size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ctypes.memset(block, 1, size)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    libc.free(ctypes.c_void_p(block))
    return after - before

if sys.argv[2] == "thread":  # a thread started after the setting, as the seeds' workers are
    import threading
    out = []
    worker = threading.Thread(target=lambda: out.extend([faults(), faults()]))
    worker.start()
    worker.join()
    print(out[1])
else:
    faults()
    print(faults())
"""

glibc = pytest.mark.skipif(memory._glibc() is None, reason="glibc's malloc only")


def second_allocation(largest: int, where: str = "main") -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(largest), where], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], int(out[1])


@glibc
def test_a_kept_heap_reuses_a_large_freed_block_without_faulting_it_in() -> None:
    pages = 64 * 2**20 // 4096
    assert second_allocation(memory.MMAP_CEILING + 1) == ("True", pytest.approx(0, abs=pages // 100))


@glibc
def test_a_thread_started_after_it_reuses_a_large_freed_block_too() -> None:
    """A thread's own arena cannot hold 64 MiB and would map it anew: one arena for all."""
    kept, faults = second_allocation(memory.MMAP_CEILING + 1, "thread")
    assert kept == "True" and faults < 64 * 2**20 // 4096 // 100


@glibc
def test_below_the_ceiling_nothing_changes_and_a_large_block_is_faulted_in_again() -> None:
    kept, faults = second_allocation(memory.MMAP_CEILING)
    assert kept == "False"
    assert faults > 64 * 2**20 // 4096 // 2  # glibc mmapped it anew: every page faulted in

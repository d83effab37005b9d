"""Seeds side by side on the CPU's cores.

Why threads, and not intra-op threads: a step of these tiny networks is a chain of small
kernels that two intra-op threads run barely faster than one, while PyTorch releases the GIL
inside its kernels. So S seeds run best as S independent chains of steps, one intra-op thread
each, spread over the cores (docs/performance.md has the measurements).

Why it stays exact: a seed's steps run in order and never two at once, each on tensors of
that seed alone and always with one intra-op thread (even with one worker: oneDNN and MKL
sum in another order with two), so a seed computes what it would compute alone, on any
number of cores; which thread runs which chunk, and how the seeds interleave, changes no bit
of it. The price: one seed alone uses one core (LeNet's step takes 1.5x as long as with two
intra-op threads, approach 3's 1.04x).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import torch

# steps a thread runs of one seed before the scheduler looks again: long enough that the
# scheduling costs nothing, short enough that seeds end an epoch together (S = 3 on 2 cores)
CHUNK = 8


def _one_intra_op_thread() -> None:
    """A worker's own setting: one intra-op thread, for OpenMP and MKL alike.

    ``torch.set_num_threads`` is the one call that reaches MKL, but it also becomes what every
    thread created afterwards starts with (torch copies the last value set into a thread on
    its first parallel operation). So a short-lived thread sets the process's value back:
    that thread's call changes its own setting and the default, not this worker's."""
    with _SETTING:  # workers start at once: each reads the process's value before any sets 1
        process = torch.get_num_threads()  # this thread's first call: torch's per-thread set-up
        torch.set_num_threads(1)
        restore = threading.Thread(target=torch.set_num_threads, args=(process,), name="seed-default")
        restore.start()
        restore.join()


_SETTING = threading.Lock()


class SeedPool:
    """Runs seeds' chains of steps on ``workers`` threads of one intra-op thread each."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            self.workers, thread_name_prefix="seed", initializer=_one_intra_op_thread)

    def chains(self, seeds: int, steps: int, run: Callable[[int, int, int], None],
               advanced: Callable[[], None] | None = None, chunk: int = CHUNK) -> None:
        """``run(seed, start, stop)`` over steps [0, ``steps``) of every seed, the least
        advanced idle seed first; ``advanced()`` once for each step that every seed has made.
        An error, or a signal's exception in the caller, lets the running chunks end (no
        chunk is left half-applied) and is raised."""
        done = [0] * seeds
        running: dict[Future, tuple[int, int]] = {}
        low = 0

        def finished(seed: int, stop: int) -> None:
            nonlocal low
            done[seed] = stop
            for _ in range(min(done) - low):
                if advanced:
                    advanced()
            low = min(done)

        def next_chunk() -> tuple[int, int, int] | None:
            busy = {seed for seed, _ in running.values()}
            idle = [i for i in range(seeds) if done[i] < steps and i not in busy]
            if not idle:
                return None
            seed = min(idle, key=lambda i: (done[i], i))
            return seed, done[seed], min(done[seed] + chunk, steps)

        executor = self._open()
        try:
            while True:
                while len(running) < self.workers and (job := next_chunk()) is not None:
                    running[executor.submit(run, *job)] = (job[0], job[2])
                if not running:
                    return
                ended, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in ended:
                    seed, stop = running.pop(future)
                    future.result()
                    finished(seed, stop)
        except BaseException:
            self.close()  # a chunk submitted just before the signal is waited for too
            raise

    @property
    def closed(self) -> bool:
        return self._executor is None

    def close(self) -> None:
        """Cancel the chunks not started and wait for those running: after this, no worker
        writes anything. A further signal while waiting does not cut the wait short (the
        chunks take a fraction of a second); the pool cannot be used again."""
        if self._executor is None:
            return
        while True:
            try:
                self._executor.shutdown(wait=True, cancel_futures=True)
                break
            except BaseException:  # a second Ctrl-C: the first one is raised once the wait is over
                continue
        self._executor = None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``fn`` of every item, in order, spread over the workers."""
        return list(self._open().map(fn, items))

    def _open(self) -> ThreadPoolExecutor:
        if self._executor is None:
            raise RuntimeError("this SeedPool was closed (after a stop or an error): make a new one")
        return self._executor

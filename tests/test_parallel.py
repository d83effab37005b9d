"""The seed scheduler of the trainer's CPU path (``training.parallel``): each seed's steps in
order and never two at once, every step run once, progress as all seeds advance, errors
raised only after the chunks in flight have ended. Fast: threads and short sleeps, no torch
work beyond asking for the thread count."""

from __future__ import annotations

import random
import threading
import time

import pytest
import torch

from training.parallel import SeedPool

pytestmark = pytest.mark.unit


class Recorder:
    """A ``run`` that records its chunks, the seeds in flight, and how far every seed got."""

    def __init__(self, seeds: int, fail_at: tuple[int, int] | None = None) -> None:
        self.lock = threading.Lock()
        self.chunks: list[tuple[int, int, int]] = []
        self.in_flight: set[int] = set()
        self.overlaps = 0
        self.threads: set[int] = set()
        self.intra_op: set[int] = set()
        self.fail_at = fail_at
        self.random = random.Random(0)

    def __call__(self, seed: int, start: int, stop: int) -> None:
        with self.lock:
            self.overlaps += seed in self.in_flight
            self.in_flight.add(seed)
            self.threads.add(threading.get_ident())
            self.intra_op.add(torch.get_num_threads())
            pause = self.random.random() * 0.002
        time.sleep(pause)
        with self.lock:
            self.in_flight.discard(seed)
            self.chunks.append((seed, start, stop))
        if self.fail_at == (seed, start):
            raise RuntimeError(f"seed {seed} failed at step {start}")


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_seed_runs_its_steps_once_in_order_and_never_twice_at_once(workers: int) -> None:
    seeds, steps = 3, 37
    run, advanced = Recorder(seeds), []
    SeedPool(workers).chains(seeds, steps, run, lambda: advanced.append(1), chunk=5)
    assert run.overlaps == 0
    for seed in range(seeds):
        mine = [(a, b) for s, a, b in run.chunks if s == seed]
        assert [a for a, _ in mine] == [0, *[b for _, b in mine[:-1]]]  # contiguous, in order
        assert mine[-1][1] == steps
    assert len(advanced) == steps
    assert len(run.threads) <= workers
    assert run.intra_op == {1}  # a seed's arithmetic never depends on the cores


def test_the_least_advanced_seed_goes_next() -> None:
    """With one worker the seeds take turns chunk by chunk, so they end an epoch together."""
    run = Recorder(3)
    SeedPool(1).chains(3, 10, run, chunk=4)
    assert [(s, a) for s, a, _ in run.chunks] == [(0, 0), (1, 0), (2, 0), (0, 4), (1, 4), (2, 4),
                                                  (0, 8), (1, 8), (2, 8)]


def test_an_error_is_raised_after_the_chunks_in_flight_end() -> None:
    run = Recorder(3, fail_at=(1, 10))
    with pytest.raises(RuntimeError, match="seed 1 failed at step 10"):
        SeedPool(2).chains(3, 40, run, chunk=5)
    assert not run.in_flight
    done = {seed: max((b for s, _, b in run.chunks if s == seed), default=0) for seed in range(3)}
    assert done[1] == 15 and max(done.values()) < 40  # nothing scheduled after the error


def test_a_chunk_submitted_just_before_a_signal_still_ends_before_the_raise() -> None:
    """The signal's exception can come between handing a chunk to a worker and noting it as
    running: the pool still waits for it (or cancels it unstarted) before raising."""
    run, pool = Recorder(3), SeedPool(2)
    executor, submitted = pool._executor, []
    real_submit = executor.submit

    def submit_then_signal(*args):
        future = real_submit(*args)
        submitted.append(future)
        if len(submitted) == 3:
            raise KeyboardInterrupt
        return future
    executor.submit = submit_then_signal
    with pytest.raises(KeyboardInterrupt):
        pool.chains(3, 40, run, chunk=5)
    ended = len(run.chunks)
    time.sleep(0.05)
    assert len(run.chunks) == ended and not run.in_flight
    assert all(f.done() for f in submitted) and pool.closed
    with pytest.raises(RuntimeError, match="closed"):
        pool.map(abs, [1])


def test_map_keeps_the_order_of_its_items() -> None:
    def slow_square(i: int) -> int:
        time.sleep(0.001 * (7 - i))
        return i * i
    assert SeedPool(3).map(slow_square, range(7)) == [i * i for i in range(7)]


def test_workers_leave_the_thread_count_of_other_threads_alone() -> None:
    """A worker's one intra-op thread is its own: the calling thread, and threads created
    later (torch copies the last value set into a new thread), keep the process's count."""
    def in_new_thread() -> int:
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        return seen[0]
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # this thread's count and the default of new threads
    try:
        pool = SeedPool(3)
        assert pool.map(lambda _: (time.sleep(0.01), torch.get_num_threads())[1], range(6)) == [1] * 6
        assert torch.get_num_threads() == 2 and in_new_thread() == 2
    finally:
        torch.set_num_threads(before)

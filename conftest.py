"""Every claim of the registry becomes one test, id = claim id (pytest_generate_tests).

A claim the registry expects refuted (a contradiction found in its source) is a strict
xfail whose reason carries the arithmetic, so a change that makes it hold is noticed.

Training claims are judged from result files under ``results/``. Where a result is missing,
``--train`` says whether the test trains it first: ``auto`` (default) trains on CUDA when
the run selects ``-m gpu`` and a GPU is present, ``cuda``/``cpu`` always train on that
device, ``never`` only reads. With pytest-xdist, each worker takes its own GPU.
``--train-time-limit`` stops training cleanly when the session has run that long (the
checkpoint stays; the claims it feeds skip, and the next run goes on).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from claims.registry import Claim, registry

TRAINED_STATISTICS = ("training", "recipe")
DEADLINE = pytest.StashKey[float | None]()
#: Statistics whose verdict is a measurement (a training run, a timing), not arithmetic.
MEASURED_STATISTICS = ("training", "throughput_ratio")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lean-cnn-claims")
    group.addoption("--train", choices=("auto", "never", "cpu", "cuda"), default="auto",
                    help="train the recipes of training claims that have no result file: auto (on CUDA "
                         "when -m selects gpu and a GPU exists), never, cpu (slow) or cuda")
    group.addoption("--train-time-limit", type=float, metavar="SECONDS",
                    help="stop training before an epoch that would end this long after the session "
                         "started; the checkpoint stays and the next run goes on")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, share the cores among the workers: OpenMP threads that outnumber
    the cores spin against each other and make small models tens of times slower."""
    import os
    import time

    limit = config.getoption("--train-time-limit", None)
    config.stash[DEADLINE] = time.time() + limit if limit else None

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        # the cores this process may run on (a CPU affinity mask or a cpuset), not the machine's
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // workers))


def claim_param(claim: Claim):
    marks = [getattr(pytest.mark, claim.marker)]
    if claim.expect == "refuted":
        how = "measurement" if claim.measure.get("statistic") in MEASURED_STATISTICS else "arithmetic"
        # only the verdict's assertion is the expected failure: an error while measuring fails
        marks.append(pytest.mark.xfail(strict=True, raises=AssertionError,
                                       reason=f"refuted by {how}: {claim.note}"))
    return pytest.param(claim, id=claim.id, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim" in metafunc.fixturenames:
        metafunc.parametrize("claim", [claim_param(c) for c in registry()])


@pytest.fixture
def trained(request: pytest.FixtureRequest):
    """Make sure the results a training claim reads exist, training them if ``--train`` allows."""
    def ensure(claim: Claim) -> None:
        if claim.measure.get("statistic") not in TRAINED_STATISTICS:
            return
        import torch

        from training.dataset_errors import DataMissing
        from training.run import ensure as train_missing
        from training.run import needed_recipes, worker_device

        policy = request.config.getoption("--train")
        if policy == "auto":
            selects_gpu = "gpu" in (request.config.getoption("markexpr") or "")
            policy = "cuda" if selects_gpu and torch.cuda.is_available() else "never"
        if policy == "never":
            return
        if policy == "cuda" and not torch.cuda.is_available():
            pytest.skip("--train cuda: no CUDA device here; use --train cpu to train on the CPU (slow)")
        device = worker_device() if policy == "cuda" else torch.device("cpu")
        progress = request.config.getoption("capture") == "no"  # bars only under -s
        try:
            unfinished = train_missing(needed_recipes(claim.measure), device=device, progress=progress,
                                       deadline=request.config.stash[DEADLINE])
        except DataMissing as missing:  # the dataset is absent: say how to get it (nothing else skips)
            pytest.skip(str(missing))
        if unfinished:
            pytest.skip(f"--train-time-limit reached while training {unfinished}: its checkpoint is kept; "
                        "run again to go on")
    return ensure


#: Timed pairs that conftest turns into ratios: JSON key -> (extra_info key that names the
#: variant, the variant measured, the baseline, what a round's mean divides, what names the row).
class Ratio(NamedTuple):
    """How to pair benchmarks into one ratio: ``extra_info[tag]`` names the variant or the
    baseline, ``extra_info[per]`` the work per timed round, ``extra_info[row]`` the row."""

    tag: str
    variant: str
    baseline: str
    per: str
    row: str


RATIOS = {
    "trainer_vs_dataloader": Ratio("loop", "trainer", "dataloader", "model_steps_per_round", "recipe"),
    "compiled_vs_eager": Ratio("compile", "compiled", "eager", "images_per_round", "model"),
    "trainer_vs_plain_loop": Ratio("epoch_loop", "trainer", "plain", "models_per_round", "recipe"),
    "seeds_vs_one": Ratio("seed_count", "three", "one", "models_per_round", "recipe"),
}


def _ratios(benchmarks, key: str) -> dict[str, dict[str, float]]:
    """Per row, the rate of the variant over the baseline from pytest-benchmark means (the
    rate is ``extra_info[per] / mean``; benchmarks as pytest-benchmark's JSON writes them)."""
    ratio = RATIOS[key]
    rates: dict[str, dict[str, float]] = {}
    for b in benchmarks:
        info, mean = b["extra_info"], b["stats"]["mean"]
        if ratio.tag in info and mean:
            rates.setdefault(info[ratio.row], {})[info[ratio.tag]] = info[ratio.per] / mean
    return {name: {**r, "ratio": r[ratio.variant] / r[ratio.baseline]}
            for name, r in rates.items() if {ratio.variant, ratio.baseline} <= set(r)}


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    for key in RATIOS:
        output_json[key] = _ratios(output_json["benchmarks"], key)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return
    timed = [{"extra_info": b.extra_info, "stats": {"mean": b.stats.mean}} for b in session.benchmarks if b]
    for key, ratio in RATIOS.items():
        variant, baseline = ratio.variant, ratio.baseline
        unit = {"model_steps_per_round": "model-steps/s", "models_per_round": "model-epochs/s"}.get(
            ratio.per, "images/s")
        for name, r in _ratios(timed, key).items():
            terminalreporter.write_line(
                f"{variant} vs {baseline}, {name}: {r[variant]:.1f} vs {r[baseline]:.1f} {unit} "
                f"= {r['ratio']:.2f}x")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the long real-data runs (marked ``slow`` and ``data``) first, then the other
    ``slow`` tests, the rest in their order. The longest, the CPU verification of the
    3,090-parameter network, trains one seed on one core for about five minutes: under
    ``make test``'s two pytest-xdist workers (worksteal) it then starts at once on one, while
    the other takes the rest of the suite, instead of starting at the end of a queue."""
    def rank(item: pytest.Item) -> int:
        slow = item.get_closest_marker("slow") is not None
        return 0 if slow and item.get_closest_marker("data") else 1 if slow else 2

    items.sort(key=rank)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection built (torch's modules, every claim and test item) out of the
    garbage collector's reach, and collect the young generation less often: what is now `-m "fast or unit"`
    spent 2.1 s in 1,924 collections, then about 1.0 s in 905 (docs/performance.md)."""
    import gc

    gc.freeze()
    gc.set_threshold(100_000, 20, 20)

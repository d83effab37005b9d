"""The budgeted GPU run (``python -m claims gpu``, docs/gpu.md): its cost model, its plan,
its decisions under a deadline, its bundle, and the CUDA-only checks it runs first.

The CUDA checks (names with ``cuda``, marker ``train``) skip without a GPU; the command runs
them on the device with ``pytest tests/test_gpu.py -m train -k cuda``. Everything else runs
on the CPU in seconds: the estimates are counted on the meta device, and the runner's
decisions are tested with a made-up clock and trainer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import blobs

import models
from claims import gpu
from claims.__main__ import main
from models import cost
from training import estimate as est
from training import results
from training.recipes import get
from training.run import needed_recipes, prepare, train_recipe, use_tf32
from training.trainer import Stack, Trainer

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="a CUDA check: runs on a GPU (python -m claims gpu)")
MNIST = {"train_size": 60000, "test_size": 10000}
H200 = est.DEVICES["h200"]


# -- the cost model --------------------------------------------------------------------------------

def test_an_evaluation_batch_counts_the_forward_flops_of_models_cost() -> None:
    with torch.device("meta"):
        lenet = models.build("lenet")
    work = est.count("lenet", est.key({}), 10, "sparse_categorical_crossentropy", False)
    assert work.flops == 10 * cost.flops_per_image(lenet)
    step = est.count("lenet", est.key({}), 10, "sparse_categorical_crossentropy", True)
    assert 2 * work.flops < step.flops < 4 * work.flops  # backward is about twice the forward
    assert step.launches > work.launches > 0


def test_the_per_pixel_network_moves_its_hidden_tensor_many_times_per_step() -> None:
    """28 x 28 x 392 floats per image: the forward writes it, Dropout reads and writes it
    several times, the backward again; a count below ten passes would miss most of them."""
    hidden = 128 * 28 * 28 * 392 * 4
    work = est.count("fashion_dense", est.key({"hidden": 392, "layers": 1, "dropout": 0.8}), 128,
                     "categorical_crossentropy", True)
    assert 10 * hidden < work.bytes < 40 * hidden
    assert work.dropout_layers == 1


def test_a_step_takes_the_longest_floor_and_copies_scale_data_not_launches() -> None:
    work = est.Work(flops=0, bytes=10**10, launches=100, dropout_layers=2)
    one, bound = work.seconds(H200, 1)
    assert bound == "memory" and one == pytest.approx(1e10 / (H200.bandwidth * H200.memory_fraction))
    assert work.seconds(H200, 4)[0] == pytest.approx(4 * one)
    tiny = est.Work(flops=0, bytes=10, launches=100, dropout_layers=2)
    assert tiny.seconds(H200, 3) == (pytest.approx((100 + 2 * 3) * H200.launch_s), "launch")


def test_an_in_place_op_is_counted_as_read_and_written_whatever_it_returns() -> None:
    """``add_`` returns its tensor, ``_foreach_add_`` nothing: both read and write it."""
    x = torch.zeros(1000, device="meta")
    for op in (lambda: x.add_(1.0), lambda: torch._foreach_add_([x], 1.0)):
        traffic = est._Traffic()
        with traffic:
            op()
        assert (traffic.launches, traffic.bytes) == (1, 2 * 4000)


def test_the_source_gives_the_epochs_of_its_own_runs_only() -> None:
    assert est.source_epochs("fashion_1x392_linear_d80") == 377
    assert est.source_epochs("fashion_1x392_relu_d80") == 68
    assert est.source_epochs("fashion_1x392_linear_d50") is None  # its base's 377 is not its own
    fashion = {"train_size": 60000, "test_size": 10000}
    given = est.estimate("fashion_1x392_relu_d80", H200, fashion)
    capped = est.estimate("fashion_1x392_relu_d50", H200, fashion)
    assert (given.epochs, given.epochs_from, capped.epochs, capped.epochs_from) == (68, "source", 3000, "cap")
    assert given.steps_per_epoch == 422  # 54,000 after the 10% validation split, batch 128


def test_a_grid_is_estimated_as_its_stacks() -> None:
    e = est.estimate("lenet1_l1l2_grid", H200, MNIST, seeds=3)
    assert e.copies == [108] and e.epochs == 60
    assert e.seconds == pytest.approx(e.seconds_for([60]))
    assert e.seconds_for([30]) < e.seconds / 2 + est.RECIPE_SETUP_S
    alone = est.estimate("lenet0", H200, MNIST, seeds=3)
    assert alone.step_bytes * 36 == pytest.approx(e.step_bytes, rel=0.05)
    assert e.memory_bound_epoch_s == pytest.approx(e.steps_per_epoch * e.step_bytes / H200.bandwidth)


def test_calibration_rescales_by_the_median_and_by_a_recipe_s_own_epochs() -> None:
    cal = est.Calibration()
    e = est.estimate("lenet0", H200, MNIST)
    assert cal.seconds(e) == e.seconds
    cal.add("a", 2.0, 1.0)
    cal.add("b", 30.0, 10.0)
    cal.add("c", 100.0, 10.0)
    assert cal.factor == 3.0
    assert cal.seconds(e) == pytest.approx(3 * e.seconds)
    cal.add("lenet0", 5.0, 1.0)
    assert cal.seconds(e) == pytest.approx(5 * e.seconds)


def test_calibration_rescales_a_recipe_by_those_bound_alike_first() -> None:
    """The first GPU run's launch-bound steps were off by a factor the memory-bound ones were
    not: a grid's ratio must not rescale a memory-bound network while one of its kind is known."""
    memory = est.estimate("fashion_1x392_relu_d80", H200, MNIST)
    launch = est.estimate("lenet0", H200, MNIST)
    assert (memory.bound, launch.bound) == ("memory", "launch")
    cal = est.Calibration()
    cal.add("grid", 40.0, 10.0, "launch")
    assert cal.seconds(memory) == pytest.approx(4 * memory.seconds)  # no memory-bound one yet: all
    cal.add("fashion", 11.0, 10.0, "memory")
    assert cal.seconds(memory) == pytest.approx(1.1 * memory.seconds)
    assert cal.seconds(launch) == pytest.approx(4 * launch.seconds)
    assert cal.factor == pytest.approx((4 + 1.1) / 2)  # overall, as gpu-run.json records it


# -- the plan --------------------------------------------------------------------------------------

def test_the_order_decides_the_most_claims_per_second_first() -> None:
    needs = {"a1": ["A"], "a2": ["A"], "b": ["B"], "c": ["B", "C"], "d": ["D"]}
    seconds = {"A": 10.0, "B": 1.0, "C": 100.0, "D": 1000.0}
    assert gpu.order(needs, seconds) == [("B", ["b"]), ("A", ["a1", "a2"]), ("C", ["c"]), ("D", ["d"])]
    # a dependency comes before the recipe that takes options from it
    assert [r for r, _ in gpu.order({"x": ["dep", "top"]}, {"dep": 1.0, "top": 1.0})] == ["dep", "top"]


def test_a_number_beside_the_recipes_is_not_a_recipe() -> None:
    """``versus = 0.8643`` is the source's own figure (AlexNet's accuracy), not a run."""
    spec = {"recipe": "fashion_2x78_d50", "versus": 0.8643, "also": "fashion_2x392_d50"}
    assert needed_recipes(spec) == ["fashion_2x78_d50", "fashion_2x392_d50"]


def test_a_dependency_is_trained_first_but_not_read() -> None:
    """The halved LeNet takes the dropout grid's best point: the grid is trained before it, but
    a claim on the halved LeNet reads its file only, so only that file gains seeds and a look
    when more seeds are planned (claims.decide.plan). ``steps`` pairs are read too."""
    spec = {"recipe": "mnist_dense_width_grid", "steps": [["lenet3_halved", "lenet0"]]}
    read = ["mnist_dense_width_grid", "lenet3_halved", "lenet0"]
    assert needed_recipes(spec) == [read[0], "lenet2_dropout_grid", *read[1:]]
    assert needed_recipes(spec, dependencies=False) == read


def _sizes(blocked: str = ""):
    return lambda dataset: f"{dataset} is not here" if dataset == blocked else MNIST


def test_a_plan_fits_in_order_and_a_recipe_waits_for_its_dependency() -> None:
    needs = {"l0": ["lenet0"], "halved": ["lenet2_dropout_grid", "lenet3_halved"],
             "fashion": ["fashion_1x7_linear_d50"]}
    sizes = _sizes(blocked="fashion-mnist")
    first = gpu.make_plan(10**6, H200, checks_s=0, needs=needs, sizes=sizes)
    grid, halved = first.item("lenet2_dropout_grid").estimate, first.item("lenet3_halved").estimate
    budget = gpu.RESERVE_S + first.item("lenet0").estimate.seconds + halved.seconds + 1
    assert grid.seconds > halved.seconds + 1  # the grid does not fit where the halved net would
    plan = gpu.make_plan(budget, H200, checks_s=0, needs=needs, sizes=sizes)
    assert [i.recipe for i in plan.items] == ["lenet0", "lenet2_dropout_grid", "lenet3_halved"]
    assert [i.fits for i in plan.items] == [True, False, False]
    assert plan.item("fashion_1x7_linear_d50").blocked == "fashion-mnist is not here"
    text = gpu.format_plan(plan)
    assert "[RUN ] lenet0" in text and "[LEFT] lenet3_halved" in text
    assert "Cannot run here: fashion_1x7_linear_d50 (1 claim): fashion-mnist is not here" in text


def test_a_skipped_recipe_is_left_out_and_what_waits_for_it_too() -> None:
    """``--skip`` leaves a recipe to another process: it is not planned, nor the recipe that
    takes its options from it."""
    needs = {"l0": ["lenet0"], "halved": ["lenet2_dropout_grid", "lenet3_halved"]}
    plan = gpu.make_plan(10**6, H200, checks_s=0, needs=needs, sizes=_sizes(), skip={"lenet2_dropout_grid"})
    assert [i.recipe for i in plan.items] == ["lenet0"]
    assert plan.item("lenet2_dropout_grid").blocked == "skipped (--skip)"
    waiting = plan.item("lenet3_halved").blocked
    assert waiting.startswith("every claim it serves also needs lenet2_dropout_grid")
    with pytest.raises(SystemExit):
        main(["gpu", "--budget", "60", "--dry-run", "--skip", "no_such_recipe"])


def test_skipping_a_recipe_no_claim_needs_says_so(capsys) -> None:
    assert main(["gpu", "--budget", "60", "--dry-run", "--skip", "lenet0"]) == 0
    assert "--skip lenet0: no pending claim needs it" in capsys.readouterr().err


def test_the_dry_run_prints_the_plan(capsys) -> None:
    """The command itself, in-process, on whatever data this machine has."""
    assert main(["gpu", "--budget", "540", "--dry-run", "--assume", "h200"]) == 0
    out = capsys.readouterr().out
    assert "GPU plan for a budget of 9.0 min on H200" in out
    assert "pending training claims" in out and "Fits:" in out
    runs = [line for line in out.splitlines() if "[RUN ]" in line or "[LEFT]" in line]
    blocked = [line for line in out.splitlines() if line.startswith("Cannot run here")]
    assert runs or blocked
    if any("fashion_1x392" in line for line in runs):
        assert "memory-bound floor" in out and "GB per step" in out


def test_help_imports_no_torch() -> None:
    code = ("import sys\nfrom claims.__main__ import main\ntry:\n    main(['gpu', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip().endswith("False")


# -- running under a deadline ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _item(name: str, seconds: float, epochs: int = 10) -> gpu.Item:
    epoch_s = (seconds - est.RECIPE_SETUP_S - est.GROUP_SETUP_S) / epochs
    e = est.Estimate(name, "H200", [3], 100, epochs, "cap", 0.01, "launch", epoch_s, [epoch_s], seconds,
                     10**6, 0.1, 10**6)
    return gpu.Item(name, [f"{name}.claim"], [f"{name}.claim"], e, fits=True)


def _runner(items: list[gpu.Item], slowdown: float, clock: Clock, stop_at: float | None = None,
            actual: dict[str, int] | None = None):
    """A runner whose 'training' takes ``slowdown`` times each estimate on the made-up clock;
    ``actual``: epochs after which a recipe's early stopping ends it."""
    actual = actual or {}
    plan = gpu.Plan(H200, 1000, 0, 1000, items, [], {i.claims[0]: [i.recipe] for i in items})
    calls: list[tuple[str, int | None]] = []
    epochs_done: dict[str, int] = {}

    def train(name, directory, deadline, stop_after):
        calls.append((name, stop_after))
        e = next(i.estimate for i in items if i.recipe == name)
        last = actual.get(name, e.epochs)
        todo = last - epochs_done.get(name, 0)
        if stop_after is not None:
            todo = min(todo, stop_after)
        for _ in range(todo):
            if clock.now + slowdown * e.epoch_s > min(deadline, stop_at or deadline):
                return None
            clock.now += slowdown * e.epoch_s
            epochs_done[name] = epochs_done.get(name, 0) + 1
        if epochs_done[name] < last:
            return None
        wall = slowdown * last * e.epoch_s
        return {"recipe": name, "seeds": [0, 1, 2], "provenance": {"wall_s": wall},
                "points": [{"epochs": [{}] * last}]}

    def progress(name, directory):
        e = next(i.estimate for i in items if i.recipe == name)
        done = epochs_done.get(name, 0)
        return (done, slowdown * done * e.epoch_s) if done else None

    finished: list[str] = []
    runner = gpu.Runner(plan, Path("unused"), train, progress, clock=clock, say=lambda _: None,
                        done=lambda result: finished.append(result["recipe"]))
    return runner, calls, finished


def test_the_runner_calibrates_then_defers_what_no_longer_fits() -> None:
    clock = Clock()
    items = [_item("a", 100), _item("b", 200), _item("c", 50)]
    runner, calls, finished = _runner(items, slowdown=2.0, clock=clock)
    outcomes = runner.run(deadline=500)
    assert calls[:2] == [("a", gpu.CALIBRATION_EPOCHS), ("a", None)]  # a few epochs timed first
    assert runner.calibration.factor == pytest.approx(2.0)
    # b now needs ~400 s of the ~300 left: deferred; c (~100 s) still fits
    assert outcomes["b"].status == "deferred" and "estimate" in outcomes["b"].note
    assert finished[:2] == ["a", "c"]
    assert outcomes["a"].status == outcomes["c"].status == "finished"
    assert outcomes["a"].epochs == [10]


def test_the_deadline_stops_a_recipe_and_keeps_what_finished() -> None:
    clock = Clock()
    items = [_item("a", 100), _item("b", 100), _item("c", 100)]
    runner, _calls, finished = _runner(items, slowdown=1.0, clock=clock, stop_at=150)
    outcomes = runner.run(deadline=1000)
    assert finished == ["a"]
    assert outcomes["b"].status == "stopped" and "epochs" in outcomes["b"].note
    assert outcomes["c"].status == "deferred"
    assert clock.now <= 150


def test_time_left_goes_to_a_recipe_that_early_stopping_may_end_sooner() -> None:
    clock = Clock()
    items = [_item("a", 100), _item("b", 2000, epochs=100), _item("c", 2000, epochs=100)]
    items[1].may_stop_early = True  # c's cap is its length (no early stopping)
    runner, calls, finished = _runner(items, slowdown=1.0, clock=clock, actual={"b": 10})
    outcomes = runner.run(deadline=500)
    assert finished == ["a", "b"] and ("c", None) not in calls
    assert outcomes["b"].status == "tried" and outcomes["b"].epochs == [10]
    assert outcomes["c"].status == "deferred"
    # with less than one epoch left, nothing more starts
    items = [_item("a", 100), _item("b", 2000, epochs=100)]
    items[1].may_stop_early = True
    runner, calls, finished = _runner(items, slowdown=1.0, clock=clock, actual={"b": 10})
    clock.now = 0.0
    outcomes = runner.run(deadline=100 + est.RECIPE_SETUP_S + est.GROUP_SETUP_S + 10)
    assert calls == [("a", gpu.CALIBRATION_EPOCHS), ("a", None)] and outcomes["b"].status == "deferred"


def test_a_failing_recipe_is_recorded_and_the_run_goes_on() -> None:
    clock = Clock()
    items = [_item("a", 100), _item("b", 100)]
    runner, _calls, finished = _runner(items, slowdown=1.0, clock=clock)
    train = runner.train

    def failing(name, *args):
        if name == "a":
            raise RuntimeError("CUDA out of memory")
        return train(name, *args)
    runner.train = failing
    outcomes = runner.run(deadline=1000)
    assert outcomes["a"].status == "failed" and "out of memory" in outcomes["a"].note
    assert finished == ["b"] and outcomes["b"].status == "finished"


def test_the_bundle_lays_out_files_as_the_repository_does(tmp_path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "plots").mkdir(parents=True)
    out.mkdir()
    (work / "lenet0.json").write_text("{}")
    (work / "plots" / "lenet0.png").write_bytes(b"png")
    (work / "mnist_dense0.json").write_text("{}")  # a committed result it was seeded with
    path = gpu.bundle(work, out, ["lenet0.json", "plots/lenet0.png"])
    with tarfile.open(path) as tar:
        assert sorted(tar.getnames()) == ["results/lenet0.json", "results/plots/lenet0.png"]


def test_cuda_benchmarks_run_until_two_sessions_are_kept_and_the_latest_keeps_its_date(
        tmp_path, monkeypatch) -> None:
    """A timing claim needs two sessions (claims.verdict.MIN_SESSIONS): a GPU run times the
    benchmarks while fewer are committed, and the committed one it replaces is bundled back
    under its date, so extracting the bundle keeps both."""
    from training import bench_files as bench

    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    assert gpu.wants_cuda_session()
    latest = bench.benchmark_file("cuda")
    latest.write_text('{"datetime": "2026-11-30T23:39:26.1", "benchmarks": []}')
    assert gpu.wants_cuda_session() and bench.kept_sessions("cuda") == [latest]
    assert bench.earlier_name(latest) == "benchmarks-cuda-2026-11-30.json"
    (tmp_path / "benchmarks-cuda-2026-11-30.json").write_text("{}")  # a name taken: the next one
    assert bench.earlier_name(latest) == "benchmarks-cuda-2026-11-30-2.json"
    assert not gpu.wants_cuda_session()  # two sessions kept
    latest.write_text("not json")
    assert bench.earlier_name(latest) == "benchmarks-cuda-undated.json"


def _nothing_to_train(budget, device, **kw):
    return gpu.Plan(device, budget, 0, 0, [], [], {})


def test_a_gpu_run_bundles_its_cuda_session_and_the_committed_one_it_replaces(tmp_path, monkeypatch) -> None:
    """The whole command, its checks and plan stubbed: the new benchmarks-cuda.json and the
    committed one, under its date, come back in results.tar.gz."""
    committed = tmp_path / "results"
    committed.mkdir()
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(committed))
    (committed / "benchmarks-cuda.json").write_text('{"datetime": "2026-11-30T23:39:26", "benchmarks": []}')

    def check(name, args, box_s, log, env):
        for arg in args:
            if arg.startswith("--benchmark-json="):
                Path(arg.split("=", 1)[1]).write_text('{"datetime": "2026-12-01T10:00:00", "benchmarks": []}')
        return gpu.Check(name, args, 0, 0.0, "")
    monkeypatch.setattr(gpu, "run_check", check)
    monkeypatch.setattr(gpu, "make_plan", _nothing_to_train)
    out = tmp_path / "out"
    assert main(["gpu", "--budget", "60", "--allow-cpu", "--out", str(out)]) == 0
    with tarfile.open(out / "results.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["results/benchmarks-cuda-2026-11-30.json",
                                          "results/benchmarks-cuda.json"]
    ran = [c["name"] for c in json.loads((out / "gpu-run.json").read_text())["checks"]]
    assert ran == ["cuda tests", "cuda benchmarks"]


def test_a_gpu_run_whose_benchmarks_fail_brings_back_no_session(tmp_path, monkeypatch) -> None:
    """A benchmark run stopped at its time box or failing may leave a partial file: it is not
    bundled, and the run's verdicts read the committed session."""
    committed = tmp_path / "results"
    committed.mkdir()
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(committed))
    (committed / "benchmarks-cuda.json").write_text('{"datetime": "2026-11-30T23:39:26", "benchmarks": []}')
    seen = []

    def check(name, args, box_s, log, env):
        for arg in args:
            if arg.startswith("--benchmark-json="):
                Path(arg.split("=", 1)[1]).write_text('{"partial": ')
        return gpu.Check(name, args, None if "benchmark" in name else 0, 0.0, "")

    def verdicts(plan, log):
        seen.append((Path(os.environ["LEAN_CNN_RESULTS"]) / "benchmarks-cuda.json").read_text())
        return {}
    monkeypatch.setattr(gpu, "run_check", check)
    monkeypatch.setattr(gpu, "_verdicts", verdicts)
    monkeypatch.setattr(gpu, "make_plan", _nothing_to_train)
    out = tmp_path / "out"
    assert main(["gpu", "--budget", "60", "--allow-cpu", "--out", str(out)]) == 1  # a check did not pass
    assert not (out / "results.tar.gz").exists()  # nothing new to bring back
    assert seen == ['{"datetime": "2026-11-30T23:39:26", "benchmarks": []}']
    assert "no new session" in (out / "gpu.log").read_text()


def test_tf32_is_enabled_on_cuda_only_and_reported() -> None:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        assert use_tf32(torch.device("cpu")) is None and not torch.backends.cuda.matmul.allow_tf32
        assert use_tf32(torch.device("cuda")) == {"matmul": True, "cudnn": True}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# -- the CUDA-only checks (run on the device by the command) ----------------------------------------------

def _cuda_trainer(name: str, seeds: list[int], vmapped: bool | None = None, **changes) -> Trainer:
    recipe = replace(get(name), **changes)
    device = torch.device("cuda")
    data = prepare(recipe, blobs(), device)
    mods = []
    for seed in seeds:
        torch.manual_seed(seed)
        mods.append(models.build(recipe.model, **recipe.options))
    return Trainer(recipe, Stack.of(mods, device), data, seeds=seeds, vmapped=vmapped)


@pytest.fixture
def full_fp32():
    """The paths compared in float32, without TF32's rounding (restored afterwards)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@needs_cuda
@pytest.mark.train
@pytest.mark.parametrize(("name", "atol"), [("mnist_approach3", 5e-3), ("mnist_dense1", 1e-4)])
def test_cuda_vmap_equals_the_loop(name: str, atol: float, full_fp32) -> None:
    looped = _cuda_trainer(name, [0, 1], vmapped=False, epochs=1, batch_size=100)
    vmapped = _cuda_trainer(name, [0, 1], vmapped=True, epochs=1, batch_size=100)
    a, b = looped.run_epoch(), vmapped.run_epoch()
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-3)
    for key, value in looped.stack.state().items():
        torch.testing.assert_close(vmapped.stack.state()[key], value, rtol=0, atol=atol)


@needs_cuda
@pytest.mark.train
def test_cuda_dropout_streams_are_per_copy(full_fp32) -> None:
    together = _cuda_trainer("mnist_dense1", [3, 4], epochs=2, batch_size=50)
    alone = _cuda_trainer("mnist_dense1", [4], epochs=2, batch_size=50)
    for t in (together, alone):
        while not t.done:
            t.run_epoch()
    for key, value in alone.stack.state().items():
        torch.testing.assert_close(together.stack.state()[key][1], value[0], rtol=1e-4, atol=1e-4)


@needs_cuda
@pytest.mark.train
def test_cuda_resume_gives_the_same_run(tmp_path) -> None:
    kwargs = {"arrays": blobs(300), "progress": False, "max_epochs": 3, "device": torch.device("cuda"),
              "seeds": [0, 1]}
    whole = train_recipe("mnist_dense1", directory=tmp_path / "a", **kwargs)
    assert train_recipe("mnist_dense1", directory=tmp_path / "b", stop_after=1, **kwargs) is None
    resumed = train_recipe("mnist_dense1", directory=tmp_path / "b", **kwargs)
    for a, b in zip(whole["points"][0]["epochs"], resumed["points"][0]["epochs"], strict=True):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert whole["provenance"]["tf32"] == {"matmul": True, "cudnn": True}
    assert not results.checkpoint_path("mnist_dense1", 0, tmp_path / "b").exists()


@pytest.mark.train
def test_profile_step_prints_the_wall_time_and_refuses_bad_arguments(monkeypatch, capsys) -> None:
    """``python -m training.profile_step``, what the first GPU run profiled with, on made-up
    images: on the CPU the step's wall time (its seeds run in threads the profiler does not
    follow: no tables); nonsense arguments are usage errors, not tracebacks."""
    from training import datasets, profile_step

    monkeypatch.setattr(datasets, "load", lambda name, root=None: blobs(300))
    assert profile_step.main(["mnist_dense2", "--steps", "2", "--seeds", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "=== mnist_dense2: one step of 2 copies" in out and "ms wall (cpu)" in out
    assert "no op tables on the CPU" in out
    for bad in (["--steps", "0"], ["--seeds", "0"], ["--device", "bogus"], ["no_such_recipe"]):
        with pytest.raises(SystemExit) as stop:
            profile_step.main([*(["mnist_dense2"] if bad[0].startswith("--") else []), *bad])
        assert stop.value.code == 2
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            profile_step.main(["mnist_dense2", "--device", "cuda"])
    assert "error:" in capsys.readouterr().err

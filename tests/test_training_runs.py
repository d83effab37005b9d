"""The trainer's runs: stacked seeds against separate runs, vmap against the loop, learning,
resumption, time limits, grids, result files, the lottery, plots. Marker ``train``.

Each test trains small networks on made-up images for an epoch or a few (seconds each), so
they stay out of ``pytest -m "fast or unit"``; ``make test`` (CI) runs them. The trainer's semantics
without training (Adam's formula, the callbacks, the data split) are in test_training.py.
"""

from __future__ import annotations

import json
import math
import time
import types

import numpy as np
import pytest
import torch
from test_training import _claim, _trainer, blobs

from claims.verdict import judge
from training import results
from training.run import train_recipe

pytestmark = pytest.mark.train


@pytest.mark.parametrize("name", ["mnist_approach3", "mnist_dense1"])  # BatchNorm; two Dropouts
def test_stacked_seeds_train_exactly_as_separate_runs(name: str) -> None:
    """A seed's run does not depend on which seeds train beside it: its batches and its
    Dropout masks come from its own streams."""
    together = _trainer(name, [3, 4], epochs=2, batch_size=50)
    alone = _trainer(name, [4], epochs=2, batch_size=50)
    for t in (together, alone):
        while not t.done:
            t.run_epoch()
    assert together.history[-1]["loss"][1] == alone.history[-1]["loss"][0]
    for key, value in alone.stack.state().items():  # bit for bit: each seed runs on its own
        torch.testing.assert_close(together.stack.state()[key][1], value[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["mnist_approach3", "mnist_dense1"])
def test_a_seed_computes_the_same_on_any_number_of_workers_and_threads(name: str) -> None:
    """The CPU path runs seeds side by side in threads of one intra-op thread each: neither
    the number of worker threads nor torch's thread count changes a bit of any seed's run
    (oneDNN and MKL sum in another order with more intra-op threads; a seed never gets them)."""
    runs = []
    threads = torch.get_num_threads()
    try:
        for workers, intra_op in [(1, 1), (2, 2), (3, 2), (2, 1)]:
            torch.set_num_threads(intra_op)
            t = _trainer(name, [3, 4, 5], epochs=2, batch_size=50)
            t.workers = workers
            rows = [t.run_epoch() for _ in range(2)]
            runs.append((rows, t.stack.state(), t.finish().final))
    finally:
        torch.set_num_threads(threads)
    for rows, state, final in runs[1:]:
        assert rows == runs[0][0] and final == runs[0][2]
        for key, value in state.items():
            torch.testing.assert_close(value, runs[0][1][key], rtol=0, atol=0)


def test_a_seed_that_early_stopping_stopped_trains_no_more_on_the_cpu() -> None:
    t = _trainer("mnist_approach3", [0, 1, 2], epochs=2, batch_size=50)
    t.run_epoch()
    t.active[1] = 0  # as EarlyStopping leaves it
    frozen = {k: v[1].clone() for k, v in t.stack.state().items()}
    fed: list[int] = []
    t.fed = lambda seed, idx: fed.append(seed)
    row = t.run_epoch()
    assert fed and set(fed) == {0, 2}
    assert math.isnan(row["loss"][1]) and not math.isnan(row["loss"][0])
    for key, value in frozen.items():
        torch.testing.assert_close(t.stack.state()[key][1], value, rtol=0, atol=0)


def test_a_stopped_epoch_leaves_no_seed_thread_running() -> None:
    """A signal's exception (here from the progress callback, in the calling thread) ends the
    epoch only once the chunks in flight have ended: nothing writes weights afterwards."""
    t = _trainer("mnist_approach3", [0, 1, 2], epochs=1, batch_size=10)
    t.workers = 2
    calls = []

    def progress() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        t.run_epoch(progress)
    before = t.stack.state()
    time.sleep(0.2)
    for key, value in t.stack.state().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


# BatchNorm's batched kernels drift by ~2e-3 in an epoch; with other Dropout masks the Dense
# net's weights differ by ~1e-2, with the same ones by ~1e-7
@pytest.mark.parametrize(("name", "atol"), [("mnist_approach3", 5e-3), ("mnist_dense1", 1e-5)])
def test_vmap_and_loop_agree(name: str, atol: float) -> None:
    """The CUDA path (vmap) and the CPU path (a loop) train alike, Dropout masks included."""
    looped = _trainer(name, [0, 1], epochs=1, batch_size=100)
    vmapped = _trainer(name, [0, 1], epochs=1, batch_size=100)
    vmapped.vmapped = True
    a, b = looped.run_epoch(), vmapped.run_epoch()
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-3)
    for key, value in looped.stack.state().items():
        torch.testing.assert_close(vmapped.stack.state()[key], value, rtol=0, atol=atol)


def test_each_copys_dropout_draws_are_its_own_streams() -> None:
    """The vmapped step's draws (``Trainer._noise``, drawn in place into one tensor) are what
    each copy's own stream gives alone, stacked: a copy's masks do not depend on its neighbours."""
    t = _trainer("mnist_dense1", [0, 1, 2], epochs=1, batch_size=50)
    drawn = t._noise((50, 1, 28, 28))
    assert drawn, "mnist_dense1 has Dropout layers"
    again = _trainer("mnist_dense1", [0, 1, 2], epochs=1, batch_size=50)
    for name, draws in again.stack.dropout_draws((50, 1, 28, 28)).items():
        alone = torch.stack([torch.rand(draws.size, generator=g) for g in again.dropout_generators])
        assert torch.equal(drawn[name], alone)


def test_a_per_pixel_networks_draws_lie_in_memory_as_its_hidden_tensor_does() -> None:
    """The Fashion networks' Dropout input is channels-last (a Dense layer on every pixel):
    the draws are made in that order, on the vmapped path as on the CPU's, so that Dropout
    reads them along the grain; each copy's still come from its own stream."""
    import models
    from training.trainer import DROPOUT_STREAM

    t = _trainer("fashion_1x7_linear_d50", [0, 1], epochs=1, batch_size=50)
    shape = (50, 1, 28, 28)
    ((name, draws),) = t.stack.dropout_draws(shape).items()
    assert draws.size == (50, 7, 28, 28) and draws.order == (0, 2, 3, 1)
    real = models.build(t.recipe.model, **t.recipe.options).train()
    seen = []
    real.get_submodule(name).register_forward_pre_hook(lambda _, args: seen.append(args[0].stride()))
    real(torch.zeros(shape))
    stacked = t._noise(shape)[name]
    for copy, seed in enumerate(t.seeds):
        alone = draws.draw(torch.Generator().manual_seed(seed + DROPOUT_STREAM), torch.device("cpu"))
        assert alone.stride() == stacked[copy].stride() == seen[0]
        assert torch.equal(stacked[copy], alone)


def test_it_learns() -> None:
    # no BatchNorm here: Keras' momentum 0.99 needs hundreds of steps before eval mode is usable
    t = _trainer("lenet0", [0, 1], epochs=4, batch_size=50)
    rows = [t.run_epoch() for _ in range(4)]
    assert np.mean(rows[-1]["loss"]) < np.mean(rows[0]["loss"])
    assert min(rows[-1]["test_accuracy"]) > 0.5  # chance is 0.1


def test_masks_keep_pruned_weights_at_zero() -> None:
    t = _trainer("mnist_approach2", [0, 1], epochs=1, batch_size=50)
    name = "0.weight"
    mask = (torch.rand_like(t.stack.params[name]) > 0.5).float()
    with torch.no_grad():
        t.stack.params[name].mul_(mask)
    t.masks = {name: mask}
    t.run_epoch()
    assert (t.stack.params[name][mask == 0] == 0).all()
    assert (t.stack.params[name][mask == 1] != 0).float().mean() > 0.99


def test_a_killed_run_resumes_to_the_same_result(tmp_path) -> None:
    arrays = blobs(300)
    kwargs = {"arrays": arrays, "progress": False, "max_epochs": 3}
    whole = train_recipe("mnist_approach2", seeds=[0, 1], directory=tmp_path / "a", **kwargs)
    assert train_recipe("mnist_approach2", seeds=[0, 1], directory=tmp_path / "b", stop_after=1,
                        **kwargs) is None
    assert results.checkpoint_path("mnist_approach2", 0, tmp_path / "b").exists()
    resumed = train_recipe("mnist_approach2", seeds=[0, 1], directory=tmp_path / "b", **kwargs)
    assert resumed["points"][0]["epochs"] == whole["points"][0]["epochs"]
    assert resumed["points"][0]["final"] == whole["points"][0]["final"]
    assert not results.checkpoint_path("mnist_approach2", 0, tmp_path / "b").exists()


def test_a_time_limit_stops_before_an_epoch_that_would_overrun(tmp_path, monkeypatch) -> None:
    import training.run

    arrays = blobs(300)
    kwargs = {"arrays": arrays, "progress": False, "max_epochs": 3}
    whole = train_recipe("mnist_approach2", seeds=[0], directory=tmp_path / "a", **kwargs)
    clock = iter(range(10**6))  # every call of time.time() one second later
    monkeypatch.setattr(training.run, "time", types.SimpleNamespace(time=lambda: float(next(clock))))
    # epoch 1 starts at once; it "took" one second, so epoch 2 would end past 6
    assert train_recipe("mnist_approach2", seeds=[0], directory=tmp_path / "b", deadline=6, **kwargs) is None
    state = results.load_checkpoint(results.checkpoint_path("mnist_approach2", 0, tmp_path / "b"),
                                    torch.device("cpu"))
    assert state["trainer"]["epoch"] == 1
    monkeypatch.undo()
    resumed = train_recipe("mnist_approach2", seeds=[0], directory=tmp_path / "b", **kwargs)
    assert resumed["points"][0]["epochs"] == whole["points"][0]["epochs"]


def test_a_stacked_grid_gives_each_point_its_own_run(tmp_path) -> None:
    kwargs = {"seeds": [0, 1], "arrays": blobs(60), "progress": False, "max_epochs": 2}
    alone = train_recipe("lenet1_l1l2_grid", directory=tmp_path / "a", stack_grid=False, **kwargs)
    assert train_recipe("lenet1_l1l2_grid", directory=tmp_path / "b", stop_after=1, **kwargs) is None
    stacked = train_recipe("lenet1_l1l2_grid", directory=tmp_path / "b", **kwargs)  # resumed
    assert stacked["provenance"]["grid_stacked"] and not alone["provenance"]["grid_stacked"]
    assert len(stacked["points"]) == 36
    for a, b in zip(alone["points"], stacked["points"], strict=True):
        assert a["options"] == b["options"]
        assert a["epochs"] == b["epochs"]
        assert a["final"] == b["final"]
    # the penalties do act: the strongest l1 changes the loss of the unpenalized point
    assert stacked["points"][0]["epochs"][0]["loss"] != stacked["points"][-1]["epochs"][0]["loss"]


def test_a_stacked_group_stopped_while_saving_its_points_resumes_without_retraining(tmp_path, monkeypatch):
    """A stacked group's finished points are written over its in-progress checkpoint last, so a
    run stopped among those writes resumes the group from its last epoch instead of epoch 0."""
    from training.trainer import Trainer

    kwargs = {"seeds": [0], "arrays": blobs(60), "progress": False, "max_epochs": 2,
              "directory": tmp_path}
    save, written = results.save_checkpoint, []

    def stop_after_one_finished(path, state):
        if "finished" in state and written:
            raise KeyboardInterrupt
        save(path, state)
        written.extend(["finished"] if "finished" in state else [])
    monkeypatch.setattr(results, "save_checkpoint", stop_after_one_finished)
    with pytest.raises(KeyboardInterrupt):
        train_recipe("lenet1_l1l2_grid", **kwargs)
    monkeypatch.setattr(results, "save_checkpoint", save)
    epochs, run_epoch = [], Trainer.run_epoch
    monkeypatch.setattr(Trainer, "run_epoch", lambda self, *a: epochs.append(1) or run_epoch(self, *a))
    resumed = train_recipe("lenet1_l1l2_grid", **kwargs)
    assert len(resumed["points"]) == 36 and not epochs


@pytest.mark.parametrize("vmapped", [False, True])
def test_a_stacked_dropout_grid_gives_each_point_its_own_run(tmp_path, vmapped) -> None:
    kwargs = {"seeds": [0], "arrays": blobs(60), "progress": False, "max_epochs": 2, "vmapped": vmapped}
    assert train_recipe("lenet2_dropout_grid", directory=tmp_path / "b", stop_after=1, **kwargs) is None
    stacked = train_recipe("lenet2_dropout_grid", directory=tmp_path / "b", **kwargs)  # resumed
    alone = train_recipe("lenet2_dropout_grid", directory=tmp_path / "a", stack_grid=False, **kwargs)
    assert stacked["provenance"]["grid_stacked"] and not alone["provenance"]["grid_stacked"]
    (first, *_), last = stacked["points"], stacked["points"][-1]
    assert tuple(first["options"]["dropout"]) == (0.0, 0.0)
    assert tuple(last["options"]["dropout"]) == (0.5, 0.5)
    for a, b in zip(alone["points"], stacked["points"], strict=True):
        assert a["options"] == b["options"]
        if vmapped:  # batched kernels round differently
            assert b["epochs"][-1]["loss"] == pytest.approx(a["epochs"][-1]["loss"], rel=1e-4)
        else:
            assert b["epochs"] == a["epochs"] and b["final"] == a["final"]
    # the no-dropout point is lenet0's own run, and the rates do act
    lenet0 = train_recipe("lenet0", directory=tmp_path / "c", **kwargs)["points"][0]
    assert first["epochs"][0]["loss"] == pytest.approx(lenet0["epochs"][0]["loss"], abs=1e-6)
    assert first["final"]["accuracy"] == lenet0["final"]["accuracy"]
    assert last["epochs"][0]["loss"] != first["epochs"][0]["loss"]


def test_result_file_has_provenance_and_is_written_atomically(tmp_path) -> None:
    result = train_recipe("mnist_approach3", seeds=[0], directory=tmp_path, arrays=blobs(120),
                          progress=False, max_epochs=1)
    path = results.path_for("mnist_approach3", tmp_path)
    on_disk = json.loads(path.read_text())
    assert on_disk["provenance"]["torch"] == torch.__version__
    for key in ("git_commit", "device", "date", "wall_s", "python"):
        assert key in on_disk["provenance"]
    assert on_disk["seeds"] == [0] and on_disk["epochs_cap"] == 1 and result["recipe"] == "mnist_approach3"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_capped_and_subset_runs_do_not_decide_figures(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    train_recipe("mnist_approach1", seeds=[0], directory=tmp_path, arrays=blobs(120), progress=False,
                 max_epochs=1, limit=100)
    verdict = judge(_claim("mnist-10k.a1.best-test-accuracy"))
    assert verdict.verdict == "pending" and "subset" in verdict.reason


def test_lottery_run_writes_one_point_per_iteration(tmp_path) -> None:
    result = train_recipe("mnist_approach2_lottery", seeds=[0, 1], directory=tmp_path, arrays=blobs(120),
                          progress=False, max_epochs=1)
    assert [p["options"]["iteration"] for p in result["points"]] == [0, 1, 2]
    assert [p["options"]["remaining"] for p in result["points"]] == [None, [4176, 4176], [2309, 2309]]


def test_plots_and_commands(tmp_path, capsys) -> None:
    from claims.__main__ import main

    train_recipe("lenet0", seeds=[0, 1], directory=tmp_path, arrays=blobs(120), progress=False, max_epochs=2)
    assert main(["plots", "lenet0", "--results", str(tmp_path)]) == 0
    drawn = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert drawn == ["lenet0.png", "lenet0_confusion.png"]
    assert all((tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG" for name in drawn)
    assert main(["recipes"]) == 0
    listing = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listing["lenet1_l1l2_grid"][5:7] == ["36", "1"]  # 36 points, one stacked run
    assert listing["mnist_approach2_lottery"][5:7] == ["3", "3"]
    assert main(["train", "no_such_recipe"]) == 2
    assert "unknown recipe 'no_such_recipe'" in capsys.readouterr().err
    assert main(["plots", "mnist_dense0", "--results", str(tmp_path)]) == 2
    assert "python -m claims train mnist_dense0" in capsys.readouterr().err


def test_a_one_option_grid_gets_its_accuracy_plot(tmp_path) -> None:
    from training.plots import draw_all

    result = train_recipe("mnist_dense_width_grid", seeds=[0], directory=tmp_path, arrays=blobs(60),
                          progress=False, max_epochs=1)
    drawn = sorted(p.name for p in draw_all(result, tmp_path, lambda _: None))
    assert drawn == ["mnist_dense_width_grid.png", "mnist_dense_width_grid_accuracy.png"]



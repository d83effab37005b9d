"""What a hostile or unlucky user meets (issue 12): checkpoints that would run code, two runs of
one recipe, arguments out of range, seeds added to an existing result, writes that die midway.

Made-up images or made-up result files, one or two epochs; all ``unit`` but the lottery's
checkpoints (three trainings, a few seconds), which run in the whole suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from claims.__main__ import main
from training import cli, datasets, files, metrics, results
from training.run import train_recipe

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def noise(n: int = 96, seed: int = 0) -> types.SimpleNamespace:
    """Random 28x28 images and labels: enough to run the machinery, nothing to learn."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    cut = n * 3 // 4
    return types.SimpleNamespace(train_images=x[:cut], train_labels=y[:cut], test_images=x[cut:],
                                 test_labels=y[cut:], classes=tuple("0123456789"))


@pytest.fixture
def fake_data(monkeypatch) -> None:
    monkeypatch.setattr(datasets, "load", lambda name, root=None: noise())
    monkeypatch.setattr(datasets, "check", lambda name, root=None: None)  # no files to verify


def train(directory: Path, *argv: str) -> int:
    return main(["train", "lenet0", "--results", str(directory), "--device", "cpu", "--quiet",
                 "--no-plots", *argv])


# --- 1. checkpoints never run code ------------------------------------------------------------

class Exploit:
    """Unpickling this writes ``marker``: what a planted checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant(path: Path, marker: Path, how: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "torch.save":  # torch's zip format, the exploit inside a checkpoint-like dict
        torch.save({"key": "x", "trainer": Exploit(marker)}, path)
    else:  # a bare pickle (torch.load's legacy format)
        path.write_bytes(pickle.dumps(Exploit(marker), protocol=2))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
@pytest.mark.unit
def test_a_planted_checkpoint_is_refused_without_running(tmp_path, how):
    marker, path = tmp_path / "ran", results.checkpoint_path("lenet0", 0, tmp_path)
    plant(path, marker, how)
    with pytest.raises(results.CheckpointError) as error:
        results.load_checkpoint(path, CPU)
    assert str(path) in str(error.value) and "--restart" in str(error.value)
    assert "Re-running" not in str(error.value)  # torch's advice to load it unsafely is left out
    assert not marker.exists()


@pytest.mark.train
def test_train_stops_at_a_planted_checkpoint_and_restart_discards_it(tmp_path, fake_data, capsys):
    marker, path = tmp_path / "ran", results.checkpoint_path("lenet0", 0, tmp_path)
    plant(path, marker, "torch.save")
    assert train(tmp_path, "--seeds", "0", "--max-epochs", "1") == 2
    err = capsys.readouterr().err
    assert str(path) in err and f"python -m claims train lenet0 --results {tmp_path} --restart" in err
    assert not marker.exists() and not results.path_for("lenet0", tmp_path).exists()
    assert train(tmp_path, "--seeds", "0", "--max-epochs", "1", "--restart") == 0
    assert not marker.exists() and not path.exists() and results.path_for("lenet0", tmp_path).exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "directory", "not a dict", "odd protocol"])
@pytest.mark.unit
def test_empty_truncated_or_foreign_checkpoints_are_refused(tmp_path, damage):
    path = results.checkpoint_path("lenet0", 0, tmp_path)
    path.parent.mkdir(parents=True)
    whole = tmp_path / "whole.pt"
    results.save_checkpoint(whole, {"key": "k", "trainer": {"w": torch.ones(1000)}})
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    elif damage == "directory":
        path.mkdir()
    elif damage == "odd protocol":  # torch warns of the protocol byte, then fails: the refusal says it
        path.write_bytes(b"\x80\x4b" + b"junk" * 10)
    else:
        torch.save([torch.zeros(2)], path)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(results.CheckpointError, match=r"does not load safely.*--restart"):
            results.load_checkpoint(path, CPU)
    assert not warned, [str(w.message) for w in warned]
    assert results.load_checkpoint(whole, CPU)["trainer"]["w"].sum() == 1000  # a sound one loads
    assert results.load_checkpoint(tmp_path / "none.pt", CPU) is None


def test_every_checkpoint_the_trainer_writes_loads_weights_only(tmp_path, monkeypatch):
    """Mid-run and finished checkpoints, a lottery's carried weights and masks included, load
    with weights_only=True: nothing needs allow-listing."""
    recipe, kwargs = "mnist_approach2_lottery", {"arrays": noise(48), "progress": False, "seeds": [0]}
    assert train_recipe(recipe, directory=tmp_path / "a", max_epochs=2, stop_after=1, **kwargs) is None
    state = results.load_checkpoint(results.checkpoint_path(recipe, 0, tmp_path / "a"), CPU)
    assert state["trainer"]["epoch"] == 1 and state["trainer"]["generators"][0].dtype == torch.uint8

    def crash(*_args):  # the run dies as it writes its result: every point's checkpoint is left
        raise KeyboardInterrupt
    monkeypatch.setattr(results, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(recipe, directory=tmp_path / "b", max_epochs=1, **kwargs)
    last = results.load_checkpoint(results.checkpoint_path(recipe, 2, tmp_path / "b"), CPU)
    assert last["carried"]["masks"][0] and last["finished"]["final"]["accuracy"]


# --- 3. one run per recipe and results directory -----------------------------------------------

@pytest.mark.unit
def test_a_second_lock_attempt_stops_at_once_and_names_the_holder(tmp_path):
    with results.lock("lenet0", tmp_path):
        with pytest.raises(results.Busy, match=rf"another run \(pid {os.getpid()} on .*\) is training it"):
            with results.lock("lenet0", tmp_path):
                pass
        with results.lock("lenet1", tmp_path):  # other recipes are free
            pass
    with results.lock("lenet0", tmp_path):  # released on leaving
        pass


@pytest.mark.unit
def test_a_second_train_run_stops_while_another_process_holds_the_recipe(tmp_path, monkeypatch, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom training import results\n"
         "with results.lock('lenet0', sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n",
         str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        monkeypatch.setattr(datasets, "load", lambda *a, **k: pytest.fail("trained while locked"))
        assert train(tmp_path, "--seeds", "0") == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    with results.lock("lenet0", tmp_path):  # the kernel released the killed holder's lock
        pass


@pytest.mark.train
@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
def test_a_signal_stops_a_run_keeping_its_checkpoint_and_freeing_its_lock(tmp_path, background):
    """Ctrl-C (SIGINT) or ``kill -TERM`` stops a run: exit 128 + the signal's number, the lock
    released, the checkpoint kept for the same command to resume from (the resume tests are in
    tests/test_training_runs.py). A run started in the background by a script, whose shell set
    SIGINT to be ignored, keeps ignoring it (the terminal's Ctrl-C is not for it) and stops on
    SIGTERM."""
    script = ("import sys\nfrom training import datasets\nfrom tests.test_reliability import noise\n"
              "datasets.load = lambda name, root=None: noise(1000)\n"
              "datasets.check = lambda name, root=None: None\nfrom claims.__main__ import main\n"
              "sys.exit(main(['train', 'lenet0', '--results', sys.argv[1], '--device', 'cpu', '--quiet',"
              " '--no-plots', '--seeds', '0', '--threads', '1']))\n")
    # SIGINT's disposition set either way: pytest itself started with '&' from a script
    # passes SIGINT ignored to its children, which would make the foreground case a background one
    disposition = signal.SIG_IGN if background else signal.SIG_DFL
    run = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, stderr=subprocess.PIPE,
                           text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    checkpoint = results.checkpoint_path("lenet0", 0, tmp_path)
    stop = signal.SIGTERM if background else signal.SIGINT
    try:
        deadline = time.time() + 120
        while not checkpoint.exists() and run.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists(), "no checkpoint was written"
        if background:
            run.send_signal(signal.SIGINT)
            with pytest.raises(subprocess.TimeoutExpired):
                run.wait(timeout=3)
        run.send_signal(stop)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 128 + stop, err
    assert f"stopped by {stop.name}: lenet0 keeps the checkpoint" in err and "Run the same command" in err
    assert results.load_checkpoint(checkpoint, CPU)["trainer"]["epoch"] >= 1
    assert not results.path_for("lenet0", tmp_path).exists()
    with results.lock("lenet0", tmp_path):  # released
        pass


@pytest.mark.train
def test_a_finished_result_is_never_written_over_by_overlapping_seeds(tmp_path, fake_data, capsys):
    assert train(tmp_path, "--seeds", "0", "--max-epochs", "1") == 0
    path = results.path_for("lenet0", tmp_path)
    before = path.read_bytes()
    assert train(tmp_path, "--seeds", "0-1", "--max-epochs", "1") == 2
    err = capsys.readouterr().err
    assert "already holds" in err and "both runs hold seed 0" in err and "--replace" in err
    assert "Train other seeds to add them to it (e.g. --seeds 1-2)" in err
    assert train(tmp_path, "--seeds", "1", "--max-epochs", "2") == 2  # another cap: not joinable
    err = capsys.readouterr().err  # and other seeds would not help (a new-user trial was sent round)
    assert "different epochs_cap" in err and "Other seeds would not join it either" in err
    assert "e.g. --seeds" not in err and "loses its seeds 0" in err
    assert train(tmp_path, "--seeds", "0", "--max-epochs", "1") == 0  # the same run again: done
    assert "already holds seeds 0: nothing to train" in capsys.readouterr().out
    assert path.read_bytes() == before
    assert train(tmp_path, "--seeds", "0", "--max-epochs", "2", "--replace") == 0
    assert results.read(path)["epochs_cap"] == 2


# --- 4. arguments are checked as they are parsed -------------------------------------------------

def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(exit_on_error=True)
    cli.add(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(("argv", "seeds"), [
    (["--seeds", "0-9"], list(range(10))),
    (["--seeds", "0", "1", "5-7"], [0, 1, 5, 6, 7]),
    (["--seeds", "4"], [4]),
    ([], None),
])
@pytest.mark.unit
def test_seed_lists_and_ranges(argv, seeds):
    assert parse("train", "lenet0", *argv).seeds == seeds


@pytest.mark.parametrize("argv", [
    ["--seeds", "0", "0"], ["--seeds", "0-3", "2"], ["--seeds", "-1"], ["--seeds", "3-1"],
    ["--seeds", "1.5"], ["--seeds", "0-5000"], ["--seeds", str(2**31)],
    ["--max-epochs", "0"], ["--max-epochs", "-1"], ["--max-epochs", "x"],
    ["--device", "tpu"], ["--device", "cuda:x"], ["--device", "CPU"],
    ["--threads", "0"], ["--time-limit", "0"], ["--time-limit", "nan"], ["--time-limit", "-5"],
])
@pytest.mark.unit
def test_bad_train_arguments_stop_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        parse("train", "lenet0", *argv)
    assert stop.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.unit
def test_good_devices_parse_and_an_absent_one_is_an_error(monkeypatch, capsys):
    assert [parse("train", "x", "--device", d).device for d in ("cpu", "cuda", "cuda:1")] == \
        ["cpu", "cuda", "cuda:1"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "lenet0", "--device", "cuda:1"]) == 2
    assert "no CUDA device here" in capsys.readouterr().err


@pytest.mark.parametrize("batch", ["-3", "0", "x"])
@pytest.mark.unit
def test_summary_and_bench_batch_must_be_positive(batch, capsys):
    for argv in (["summary", "lenet", "--batch", batch], ["bench", "--batch", batch]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and "--batch" in capsys.readouterr().err


@pytest.mark.unit
def test_an_unwritable_results_directory_stops_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "load", lambda *a, **k: pytest.fail("trained before the check"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert train(blocker / "results") == 2
    assert f"results directory {blocker / 'results'} is not writable" in capsys.readouterr().err


@pytest.mark.unit
def test_max_epochs_below_one_is_refused_by_the_runner_too():
    with pytest.raises(ValueError, match="max_epochs must be 1 or more"):
        train_recipe("lenet0", seeds=[0], arrays=noise(), max_epochs=0, progress=False)


# --- 5. seeds added to an existing result ------------------------------------------------------

NAN = math.nan


def made_up(seeds: list[int], lengths: list[int], *, device: str = "cpu", sha: str = "d1",
            remaining: bool = False) -> dict:
    """A result of one point: seed s logs loss e + s and test accuracy (e + 1) / 10 + s / 100 at
    epoch e until it stops after ``lengths[i]`` epochs; NaN after, as the trainer writes it."""
    rows = [{"loss": [e + s if e < n else NAN for s, n in zip(seeds, lengths, strict=True)],
             "test_accuracy": [(e + 1) / 10 + s / 100 if e < n else NAN
                               for s, n in zip(seeds, lengths, strict=True)]}
            for e in range(max(lengths))]
    options = {"iteration": 1, "removed": 0.2, "remaining": [100 + s for s in seeds]} if remaining else {}
    point = {"options": options, "epochs": rows,
             "stopped_epoch": [n - 1 if n < max(lengths) else None for n in lengths],
             "best_epoch": [n - 1 for n in lengths],
             "final": {"accuracy": [0.5 + s / 100 for s in seeds], "loss": [1.0 + s for s in seeds],
                       "confusion": [[[s, 1], [2, 3]] for s in seeds]}}
    return {"recipe": "mnist_approach1", "recipe_table": {"model": "m", "epochs": 40}, "seeds": seeds,
            "epochs_cap": None, "limit": None,
            "provenance": {"git_commit": f"c{seeds[0]}", "git_dirty": False, "device": device,
                           "date": f"2026-01-0{1 + seeds[0] % 9}", "wall_s": 10.0 * len(seeds),
                           "datasets": {"mnist": {"sha256": sha, "sizes": {"train": 60000, "test": 10000}}}},
            "points": [point]}


def measured(result: dict, tmp_path: Path, name: str) -> tuple:
    results.write(results.path_for("mnist_approach1", tmp_path), result)
    load = metrics.loader(tmp_path)
    return metrics.METRICS[name]({"recipe": "mnist_approach1"}, load).values


@pytest.mark.unit
def test_merged_metrics_are_each_parts_per_seed_values(tmp_path):
    a, b = made_up([0, 1, 2], [5, 3, 4]), made_up([3, 4], [6, 2], device="cuda")
    merged = results.merge(a, b)
    assert merged["seeds"] == [0, 1, 2, 3, 4] and len(merged["points"][0]["epochs"]) == 6
    assert all(math.isnan(x) for x in merged["points"][0]["epochs"][5]["loss"][:3])  # padded
    for name in ("test_accuracy", "epochs_run", "best_test_accuracy", "test_loss"):
        assert measured(merged, tmp_path, name) == measured(a, tmp_path, name) + measured(b, tmp_path, name)
    assert merged["points"][0]["final"]["confusion"][3] == [[3, 1], [2, 3]]
    for key in ("stopped_epoch", "best_epoch"):
        assert merged["points"][0][key] == a["points"][0][key] + b["points"][0][key]
    parts = merged["provenance"]["parts"]
    assert [p["seeds"] for p in parts] == [[0, 1, 2], [3, 4]]
    assert [p["device"] for p in parts] == ["cpu", "cuda"]
    assert merged["provenance"]["device"] == "cpu | cuda" and merged["provenance"]["wall_s"] == 50.0
    again = results.merge(merged, made_up([7], [1]))  # a third part joins the list, not a nest
    assert [p["seeds"] for p in again["provenance"]["parts"]] == [[0, 1, 2], [3, 4], [7]]


@pytest.mark.unit
def test_a_lotterys_remaining_weights_join_per_seed():
    merged = results.merge(made_up([0], [2], remaining=True), made_up([5, 6], [2, 2], remaining=True))
    assert merged["points"][0]["options"] == {"iteration": 1, "removed": 0.2, "remaining": [100, 105, 106]}


@pytest.mark.parametrize(("b", "match"), [
    (made_up([2, 3], [2, 2]), "both runs hold seed 2"),
    ({**made_up([5], [2]), "recipe_table": {"model": "m", "epochs": 30}}, "different recipe_table"),
    ({**made_up([5], [2]), "epochs_cap": 3}, "different epochs_cap"),
    (made_up([5], [2], sha="other"), "different mnist data"),
    ({**made_up([5], [2]), "points": []}, "1 and 0 grid points"),
    ({**made_up([5], [2]), "seeds": [5, 6]}, "one entry per seed"),
])
@pytest.mark.unit
def test_what_cannot_be_merged_is_refused(b, match):
    with pytest.raises(results.ResultError, match=match):
        results.merge(made_up([0, 1, 2], [2, 2, 2]), b)


@pytest.mark.unit
def test_a_committed_result_merges_with_a_renumbered_copy():
    """The committed files' layout (NaN rows after early stops) is what merge joins."""
    real = results.read(REPO / "results" / "mnist_approach1.json")
    copy = json.loads(json.dumps(real))
    offset = max(real["seeds"]) + 1  # past every committed seed, however many are trained
    copy["seeds"] = [s + offset for s in real["seeds"]]
    merged = results.merge(real, copy)
    n = len(real["seeds"])
    point, twice = real["points"][0], merged["points"][0]
    assert twice["final"]["accuracy"] == point["final"]["accuracy"] * 2
    assert len(twice["epochs"]) == len(point["epochs"])
    lengths = [len(p) for p in metrics._series(point, "loss")]
    assert [len(p) for p in metrics._series(twice, "loss")] == lengths * 2
    assert twice["stopped_epoch"][n:] == point["stopped_epoch"]


@pytest.mark.train
def test_seeds_trained_apart_and_merged_equal_them_trained_together(tmp_path):
    kwargs = {"arrays": noise(), "progress": False, "max_epochs": 2}
    together = train_recipe("mnist_approach2", seeds=[0, 1], directory=tmp_path / "t", **kwargs)
    merged = results.merge(train_recipe("mnist_approach2", seeds=[0], directory=tmp_path / "a", **kwargs),
                           train_recipe("mnist_approach2", seeds=[1], directory=tmp_path / "b", **kwargs))
    assert merged["seeds"] == together["seeds"]
    ours, theirs = merged["points"][0], together["points"][0]
    assert ours["stopped_epoch"] == theirs["stopped_epoch"] and ours["best_epoch"] == theirs["best_epoch"]
    for key in theirs["epochs"][0]:
        np.testing.assert_allclose([r[key] for r in ours["epochs"]], [r[key] for r in theirs["epochs"]],
                                   rtol=1e-4, atol=1e-5)
    for key in ("accuracy", "loss", "precision", "recall", "confusion"):
        np.testing.assert_allclose(ours["final"][key], theirs["final"][key], rtol=1e-4, atol=1e-5)


@pytest.mark.train
def test_train_adds_new_seeds_to_an_existing_result(tmp_path, fake_data, capsys):
    assert train(tmp_path, "--seeds", "0", "--max-epochs", "1") == 0
    assert train(tmp_path, "--seeds", "1-2", "--max-epochs", "1") == 0
    assert "seeds 1 2 joined the seeds 0 already there" in capsys.readouterr().out
    held = results.read(results.path_for("lenet0", tmp_path))
    assert held["seeds"] == [0, 1, 2] and len(held["points"][0]["final"]["accuracy"]) == 3
    assert [p["seeds"] for p in held["provenance"]["parts"]] == [[0], [1, 2]]
    assert held["provenance"]["datasets"]["mnist"]["sizes"] == {"train": 72, "test": 24}


@pytest.mark.train
def test_result_provenance_records_the_datas_digest_and_sizes(tmp_path):
    arrays = noise()
    result = train_recipe("lenet0", seeds=[0], directory=tmp_path, arrays=arrays, progress=False,
                          max_epochs=1)
    recorded = result["provenance"]["datasets"]["mnist"]
    assert recorded == {"sha256": datasets.arrays_digest(arrays), "sizes": {"train": 72, "test": 24}}
    arrays.train_labels = np.roll(arrays.train_labels, 1)  # shifted labels: another digest
    assert datasets.arrays_digest(arrays) != recorded["sha256"]


@pytest.mark.unit
def test_claims_train_sets_the_allocator_for_its_recipes_before_any_training(tmp_path, monkeypatch):
    """``training.memory`` must be set before the process starts threads (a thread's arena
    would map large tensors anew): ``claims train`` hands it the largest tensor of the
    recipes it was asked for, before it trains the first."""
    from training import memory, run
    events: list[tuple] = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda largest: events.append(("keep", largest)))
    monkeypatch.setattr(run, "train_recipe", lambda name, **_: events.append(("train", name)))
    monkeypatch.setattr(datasets, "check", lambda name, root=None: None)
    main(["train", "lenet0", "mnist_dense1", "--results", str(tmp_path), "--device", "cpu", "--quiet",
          "--no-plots"])
    largest = max(run.largest_tensor("lenet0"), run.largest_tensor("mnist_dense1"))
    assert events[:2] == [("keep", largest), ("train", "lenet0")]


@pytest.mark.unit
def test_claims_train_checks_every_dataset_before_training_any_recipe(tmp_path, monkeypatch, capsys):
    """A dataset missing for the last recipe named stops the command before the first trains
    (not hours later), naming the dataset, its fetch command and what could train now."""
    from training import run
    monkeypatch.setattr(run, "train_recipe", lambda name, **_: pytest.fail(f"trained {name}"))
    data = tmp_path / "data"
    assert main(["train", "kmnist_gap", "--data-root", str(data), "--results", str(tmp_path / "r"),
                 "--device", "cpu", "--quiet"]) == 2
    alone = capsys.readouterr().err
    assert "dataset 'kmnist' is missing" in alone and "python -m claims data fetch kmnist" in alone

    def only_mnist(name: str, root=None) -> None:
        if name != "mnist":
            raise datasets.DataMissing(f"dataset {name!r} is missing. To fetch it: python -m claims data "
                                       f"fetch {name}")
    monkeypatch.setattr(datasets, "check", only_mnist)
    assert main(["train", "lenet0", "kmnist_gap", "kmnist_traditional", "--results", str(tmp_path / "r"),
                 "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'kmnist' is missing" in err
    assert "Nothing was trained: kmnist_gap kmnist_traditional read kmnist" in err
    assert "this can train now: python -m claims train lenet0" in err


@pytest.mark.unit
def test_the_largest_tensor_counts_the_evaluation_batch():
    """Evaluation runs 1,000 images at a time: the 78-neuron Fashion network's hidden tensor
    is under the 32 MiB ceiling in a training step of 128 and far above it in evaluation."""
    from training.memory import MMAP_CEILING
    from training.run import largest_tensor
    assert largest_tensor("fashion_1x78_linear_d50") == 1000 * 28 * 28 * 78 * 4 > MMAP_CEILING
    assert 128 * 28 * 28 * 78 * 4 < MMAP_CEILING
    assert largest_tensor("fashion_1x392_linear_d80") == 1000 * 28 * 28 * 392 * 4
    assert largest_tensor("mnist_approach3") < MMAP_CEILING


@pytest.mark.unit
def test_provenance_calls_a_run_dirty_for_uncommitted_code_not_for_results_or_docs(tmp_path, monkeypatch):
    """A run started beside another run's fresh result file, or beside edited docs, ran the
    committed code; an edited module or claim file makes it dirty."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    for name in ("results/r.json", "docs/d.md", "README.md", "training/code.py", "claims/data/c.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    monkeypatch.setattr(results, "REPO", tmp_path)
    cpu = torch.device("cpu")
    assert results.provenance(cpu)["git_dirty"] is False
    for name in ("results/r.json", "docs/d.md", "README.md"):
        (tmp_path / name).write_text("b")
    assert results.provenance(cpu)["git_dirty"] is False
    for name in ("training/code.py", "claims/data/c.toml"):
        (tmp_path / name).write_text("b")
        assert results.provenance(cpu)["git_dirty"] is True
        git("checkout", "-q", "--", name)


# --- 6. atomic writes leave no temporary file behind ------------------------------------------

@pytest.mark.unit
def test_a_failing_write_removes_its_temporary_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")

    def refuse(_tmp: Path) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        files.write_atomic(target, b"new", check=refuse)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.unit
def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "r.json"
    killed = subprocess.run(  # the writer dies (SIGKILL) after writing, before its rename
        [sys.executable, "-c", "import os, signal, sys\nfrom pathlib import Path\n"
         "from training import files\n"
         "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
         "files.write_atomic(Path(sys.argv[1]), b'half')\n", str(target)], cwd=REPO)
    assert killed.returncode == -signal.SIGKILL
    [left] = [p for p in tmp_path.iterdir()]
    assert left.name.startswith(".r.json.") and left.name.endswith(".tmp") and not target.exists()
    live = tmp_path / f".r.json.{os.getppid()}.0123abcd.tmp"  # a writer that still runs: kept
    live.write_bytes(b"")
    results.atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "r.json"])


@pytest.mark.unit
def test_a_directory_where_the_result_goes_is_a_clear_error(tmp_path):
    (tmp_path / "lenet0.json").mkdir()
    with pytest.raises(results.ResultError, match=r"lenet0\.json is a directory where a file should be"):
        results.write(tmp_path / "lenet0.json", {"points": []})


@pytest.mark.unit
def test_a_file_read_once_is_parsed_again_whenever_it_changes(tmp_path):
    """files.read_once serves a parse only while the file is as it was: rewritten in place
    (another size) or replaced (another inode), it is parsed again, so no stale parse is served."""
    parsed: list[str] = []

    def parse(path: Path) -> str:
        parsed.append(path.read_text())
        return parsed[-1]
    target = tmp_path / "r.json"
    target.write_text("one")
    assert files.read_once(target, parse) == files.read_once(target, parse) == "one"
    assert len(parsed) == 1
    target.write_text("three")  # in place, another size
    assert files.read_once(target, parse) == "three"
    files.write_atomic(target, b"four!")  # same size, a new inode
    assert files.read_once(target, parse) == "four!" and len(parsed) == 3


# --- the command line when its output or its user goes away (found by a new-user trial) ------

@pytest.mark.unit
def test_a_report_piped_into_head_ends_quietly():
    done = subprocess.run(f"{sys.executable} -m claims report --list-sources | head -1", shell=True,
                          cwd=REPO, capture_output=True, text=True, executable="/bin/bash")
    assert done.stdout.count("\n") == 1 and "Traceback" not in done.stderr and not done.stderr


@pytest.mark.unit
def test_ctrl_c_outside_training_says_interrupted_without_a_traceback(monkeypatch, capsys):
    from claims import __main__ as cli_main

    def interrupted(_args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_main, "_models", interrupted)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.unit
def test_an_output_that_cannot_be_written_is_an_error_not_a_traceback(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["report", "--format", "html", "--out", str(blocker), "--id", "mnist-10k.a1.*"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {blocker}") and "choose another place" in err


@pytest.mark.unit
def test_a_run_stopped_before_its_first_epoch_says_it_starts_over(tmp_path, monkeypatch, capsys):
    from training import run

    def stopped(name, **_):
        raise cli.Stopped(signal.SIGINT)
    monkeypatch.setattr(run, "train_recipe", stopped)
    monkeypatch.setattr(datasets, "check", lambda name, root=None: None)
    assert train(tmp_path, "--seeds", "0") == 130
    assert "lenet0 had finished no epoch, so it starts over" in capsys.readouterr().err
    results.checkpoint_path("lenet0", 0, tmp_path).parent.mkdir(parents=True)
    results.checkpoint_path("lenet0", 0, tmp_path).write_bytes(b"")
    assert train(tmp_path, "--seeds", "0") == 130
    assert "lenet0 keeps the checkpoint of its last finished epoch" in capsys.readouterr().err


@pytest.mark.unit
def test_plots_refuse_a_missing_results_directory_and_an_unknown_recipe(tmp_path, capsys):
    assert main(["plots", "--results", str(tmp_path / "typo")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["plots", "--results", str(tmp_path), "--check"]) == 0
    assert main(["plots", "not_a_recipe", "--results", str(tmp_path)]) == 2
    assert "unknown recipe 'not_a_recipe'" in capsys.readouterr().err
    assert main(["plots", "--results", str(tmp_path)]) == 0
    assert "nothing to draw" in capsys.readouterr().err


@pytest.mark.unit
def test_a_gpu_dry_run_needs_no_budget_and_a_real_run_does(capsys):
    assert main(["gpu", "--dry-run"]) in (0, 1)  # 1: no CUDA device here, after the plan
    assert "GPU plan for a budget of 15.0 min" in capsys.readouterr().out
    assert main(["gpu", "--allow-cpu"]) == 2
    assert "--budget SECONDS is required" in capsys.readouterr().err


@pytest.mark.unit
def test_a_result_file_with_a_string_for_a_number_is_named_as_damaged(tmp_path, monkeypatch, capsys):
    """Found by a new-user trial: the error blamed the claim file that read it."""
    data = json.loads((REPO / "results" / "lenet0.json").read_text())
    data["points"][0]["final"]["accuracy"][0] = "0.99"
    (tmp_path / "lenet0.json").write_text(json.dumps(data))
    with pytest.raises(results.ResultError, match=r"point 0, final: 'accuracy' is not one number"):
        results.read(tmp_path / "lenet0.json")
    data["points"][0]["final"]["accuracy"] = data["points"][0]["final"]["accuracy"][:1]  # seeds 0 1 2
    (tmp_path / "lenet0.json").write_text(json.dumps(data))
    only_lenet0 = ["--id", "dense-vs-conv.lenet0.*", "--format", "json"]
    assert main(["report", "--results", str(tmp_path), *only_lenet0]) == 2
    out, err = capsys.readouterr()
    assert "lenet0.json: point 0, final: 'accuracy' is not one number per seed (3)" in out
    assert f"python -m claims train lenet0 --replace --results {tmp_path}" in out
    assert f"error: the claims that read a damaged file are pending: {tmp_path / 'lenet0.json'}: " in err
    assert f"python -m claims train lenet0 --replace --results {tmp_path}" in err


@pytest.mark.unit
def test_a_damaged_result_file_leaves_the_rest_of_the_report_standing(tmp_path, monkeypatch, capsys):
    """Found by a new-user trial: one damaged file stopped the whole report. Its claims now wait
    for it to be repaired, every other claim is judged, and the exit status says it is not whole;
    'claims train' names the file instead of crashing on it."""
    for name in ("lenet0", "mnist_dense0"):
        (tmp_path / f"{name}.json").write_text((REPO / "results" / f"{name}.json").read_text())
    (tmp_path / "lenet0.json").write_text('{"truncated": ')  # a run killed mid-write by another tool
    assert main(["report", "--results", str(tmp_path), "--id", "dense-vs-conv.*", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    rows = {r["id"]: r for r in json.loads(out)}
    lenet0 = [r for r in rows.values() if "lenet0.json" in r["reason"] and "not valid JSON" in r["reason"]]
    assert lenet0 and all(r["verdict"] == "pending" for r in lenet0)
    assert rows["dense-vs-conv.dense0.test-accuracy"]["verdict"] in ("holds", "refuted", "inconclusive")
    assert f"error: the claims that read a damaged file are pending: {tmp_path / 'lenet0.json'}: " in err
    assert f"python -m claims train lenet0 --replace --results {tmp_path}" in err
    assert main(["report", "--results", str(tmp_path), "--id", "dense-vs-conv.*"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"damaged files ({len(lenet0)} claims): {tmp_path / 'lenet0.json'}: restore it from git" in out
    assert main(["train", "lenet0", "--results", str(tmp_path), "--device", "cpu"]) == 2
    assert "lenet0.json: not valid JSON" in capsys.readouterr().err


@pytest.mark.unit
def test_bench_refuses_an_unknown_recipe_or_model_before_timing_anything(monkeypatch, capsys):
    from training import bench

    monkeypatch.setattr(bench, "print_model_table", lambda *a, **k: pytest.fail("timed before the check"))
    assert main(["bench", "--ratio", "not_a_recipe", "--device", "cpu"]) == 2
    assert "unknown recipe 'not_a_recipe'" in capsys.readouterr().err
    assert main(["bench", "not_a_model", "--device", "cpu"]) == 2
    assert "unknown model 'not_a_model'" in capsys.readouterr().err


@pytest.mark.unit
def test_report_out_without_html_says_it_is_ignored(capsys):
    assert main(["report", "--format", "json", "--out", "somewhere", "--id", "mnist-10k.a1.dropout"]) == 0
    assert "--out is ignored" in capsys.readouterr().err


@pytest.mark.unit
def test_the_progress_bar_redraws_once_a_minute_into_a_log(monkeypatch):
    """Found by a new-user trial: a run's log was thousands of carriage-return redraws."""
    import io

    from training import recipes, run

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    bar = run._bar(recipes.get("mnist_approach3"), [0], 1, 1000, True, 0)
    assert bar.mininterval == 60.0
    bar.close()

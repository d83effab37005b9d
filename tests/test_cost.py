"""Counted costs (models.cost) and the cost claims judged from a saved benchmark run.

The counts themselves (FLOPs, layer outputs, peak memory, against figures worked by hand) are
marked ``fast``; their check against a real CPU step, the saved benchmark runs, the timing
loops and the CLI ``unit``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import replace

import pytest
import torch
from torch import nn

import models
from claims.__main__ import main
from claims.measures import Explained, Pending, measure
from claims.registry import registry
from claims.verdict import HOLDS, INCONCLUSIVE, REFUTED, judge
from models import cost
from training import bench
from training.results import ResultError


@pytest.mark.fast
def test_flops_of_the_kmnist_gap_model_by_hand():
    # three convolutions, 2 FLOPs per multiply-add: 26*26*32*9, 11*11*64*32*9, 5*5*10*64*9
    by_hand = 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 32 * 9 + 5 * 5 * 10 * 64 * 9)
    assert cost.flops_per_image(models.build("kmnist_gap")) == by_hand == 5_137_920


class Tiny(nn.Module):
    input_shape = (1, 4, 4)

    def __init__(self) -> None:
        super().__init__()
        self.flatten, self.dense, self.relu = nn.Flatten(), nn.Linear(16, 8), nn.ReLU()
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.relu(self.dense(self.flatten(x))))


@pytest.mark.fast
def test_layer_outputs_by_hand():
    # float32 outputs of flatten (16), dense (8), relu (8), out (3)
    assert cost.activation_bytes_per_image(Tiny()) == 4 * (16 + 8 + 8 + 3)


@pytest.mark.unit
@pytest.mark.parametrize("name", ["kmnist_gap", "mnist_approach3", "lenet"])
def test_peak_counted_on_meta_equals_a_real_cpu_step(name):
    """The meta-device count is the count of a real step: tensors' shapes, not values, decide it.
    It leaves out Adam's step counts (4 bytes per parameter tensor), which matter only when the
    peak is Adam's step (LeNet at batch 8), not in the backward pass (the others)."""
    from torch.distributed._tools.mem_tracker import MemTracker

    torch.manual_seed(0)
    step = cost.training_step(models.build(name), 8, "cpu")
    tracker = MemTracker()
    tracker.track_external(step.model, step.optimizer)
    with tracker:
        step()
    real = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]
    counts = 4 * len(list(step.model.parameters()))
    assert real - cost.peak_training_memory(models.build(name), 8).total in (0, counts)


@pytest.mark.fast
def test_peak_of_a_dense_net_holds_weights_gradients_and_adam_state():
    """kmnist_traditional is 98% Dense weights: at its peak (Adam's step) live are the weights,
    their gradients and Adam's two moments, each as large as the weights."""
    peak = cost.peak_training_memory(models.build("kmnist_traditional"), 25)
    weights = 4 * 431_242
    assert peak.parts["param"] == peak.parts["grad"] == weights
    assert peak.parts["opt"] >= 2 * weights
    assert peak.total == sum(peak.parts.values())


@pytest.mark.fast
def test_peak_grows_with_the_batch_where_activations_dominate():
    small, large = (cost.peak_training_memory(models.build("mnist_approach3"), b).total for b in (16, 64))
    assert large > 3 * small


@pytest.mark.unit
def test_summary_prints_the_costs(capsys):
    assert main(["summary", "kmnist_gap", "--batch", "25"]) == 0
    out = capsys.readouterr().out
    assert "Forward FLOPs per image: 5,137,920" in out
    assert "Peak memory of a training step (Adam, batch 25): 6.46 MiB" in out


@pytest.mark.parametrize(("nbytes", "text"), [(24, "24 B"), (98_344, "96 KiB"), (6_771_032, "6.46 MiB"),
                                              (3_035_806_340, "2.83 GiB"), (2**20 * 1500, "1.46 GiB")])
@pytest.mark.unit
def test_sizes_in_binary_units(nbytes, text):
    assert cost.size(nbytes) == text


# --- benchmark-backed verdicts ----------------------------------------------------------

def _saved_run(directory, times: dict[tuple[str, int], float], device: str = "cpu",
               spread: float = 0.05, machine: object = None, extra: dict | None = None) -> None:
    """A pytest-benchmark JSON file as tests/test_benchmarks.py writes it, with made-up means
    and 20 rounds spread by ``spread`` of the mean around it (``machine``: its machine_info;
    ``extra``: more extra_info for every entry)."""
    def rounds(t: float) -> list[float]:
        return [t * (1 + spread * ((i % 5) - 2) / 2) for i in range(20)]
    entries = [{"name": f"test_throughput[train-step-{m}-b{b}]",
                "extra_info": {"what": "train-step", "model": m, "batch": b, "device": device, "threads": 2,
                               **(extra or {})},
                "stats": {"mean": t, "data": rounds(t)}} for (m, b), t in times.items()]
    run = {"benchmarks": entries, **({"machine_info": machine} if machine is not None else {})}
    (directory / f"benchmarks-{device}.json").write_text(json.dumps(run))


SPEC = {"statistic": "throughput_ratio", "model": "kmnist_gap", "versus": "kmnist_traditional",
        "step": "train-step", "batch": 25, "device": "cpu"}


def _two_sessions(directory, times: dict[tuple[str, int], float], **kwargs) -> None:
    """The same timings saved as an earlier session (benchmarks-cpu-DATE.json) and the latest."""
    _saved_run(directory, times, **kwargs)
    (directory / "benchmarks-cpu.json").replace(directory / "benchmarks-cpu-2026-01-01.json")
    _saved_run(directory, times, **kwargs)


@pytest.mark.unit
def test_ratio_and_a_claim_that_holds_on_parameters_but_not_on_time(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    _two_sessions(tmp_path, {("kmnist_gap", 25): 0.020, ("kmnist_traditional", 25): 0.010})
    measured = measure(SPEC)
    latest = measured.value.items[0]
    assert isinstance(measured, Explained) and latest.log_ratio and len(latest.a) == 20
    assert math.exp(statistics.fmean(latest.a) - statistics.fmean(latest.b)) == \
        pytest.approx(0.5, rel=1e-3)  # the speed-up: the other's time over this one's
    assert "17.5x fewer trainable parameters" in measured.why
    assert "holds on parameters and fails on time in the latest session" in measured.why
    claim = next(c for c in registry() if c.id == "kmnist.gap-vs-dense.faster-training-cpu")
    verdict = judge(claim)
    assert verdict.verdict == REFUTED and "ratio 0.5 of the geometric means" in verdict.reason
    assert "20 ms and kmnist_traditional 10 ms per train-step of 25 images" in verdict.reason

    _two_sessions(tmp_path, {("kmnist_gap", 25): 0.010, ("kmnist_traditional", 25): 0.020})
    assert judge(claim).verdict == HOLDS
    assert "holds on parameters and holds on time in the latest session" in judge(claim).reason
    # 2% apart with rounds spread by 40%: the rounds cannot tell which is faster
    _two_sessions(tmp_path, {("kmnist_gap", 25): 0.0100, ("kmnist_traditional", 25): 0.0102}, spread=0.4)
    assert judge(claim).verdict == INCONCLUSIVE


@pytest.mark.unit
def test_one_benchmark_session_decides_no_timing(tmp_path, monkeypatch):
    """A session's rounds agree with each other far more than days do (the CPU sessions put
    one ratio at 0.85x and at 1.15x-1.27x), so however tight its interval, one session leaves
    a timing claim inconclusive, saying what it found and that a second session decides."""
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    claim = next(c for c in registry() if c.id == "kmnist.gap-vs-dense.faster-training-cpu")
    for times, alone in (((0.010, 0.020), "holds"), ((0.020, 0.010), "refuted")):
        _saved_run(tmp_path, {("kmnist_gap", 25): times[0], ("kmnist_traditional", 25): times[1]})
        verdict = judge(claim)
        assert verdict.verdict == INCONCLUSIVE
        assert f"one benchmark session ({alone} on its own)" in verdict.reason
        assert "a second session, run at another time, must decide it alike" in verdict.reason
    # a session that cannot decide it alone says what would: more rounds, then a second session
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.0100, ("kmnist_traditional", 25): 0.0102}, spread=0.4)
    verdict = judge(claim)
    assert verdict.verdict == INCONCLUSIVE and "one benchmark session" not in verdict.reason
    assert "rounds of each timing would decide it" in verdict.reason and "it takes 2" in verdict.rule
    assert "seeds would" not in verdict.reason  # a benchmark has rounds, not seeds


@pytest.mark.unit
def test_missing_or_unreadable_benchmarks_say_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    with pytest.raises(Pending, match=r"needs a benchmark run, results/benchmarks-cuda.json: run "
                                      r"'pytest -m benchmark --benchmark-enable --benchmark-json"):
        measure({**SPEC, "device": "cuda"})
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.01})
    with pytest.raises(Pending, match=r"needs a train-step timing of kmnist_traditional at batch 25, "
                                      r"which results/benchmarks-cpu\.json lacks"):
        measure(SPEC)
    (tmp_path / "benchmarks-cpu.json").write_text("{not json")
    with pytest.raises(ResultError, match=r"benchmarks-cpu\.json is not a pytest-benchmark JSON file"):
        bench.timing("train-step", "kmnist_gap", 25, "cpu")
    with pytest.raises(Pending, match=r"not a pytest-benchmark JSON file.*or restore it from git") as why:
        measure(SPEC)  # a damaged file: its claims wait, the rest of the report goes on
    assert why.value.waits_for == "repair benchmarks-cpu"


@pytest.mark.unit
def test_a_malformed_benchmark_entry_fails_only_its_own_lookup(tmp_path):
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.01, ("kmnist_traditional", 25): 0.02})
    path = tmp_path / "benchmarks-cpu.json"
    saved = json.loads(path.read_text())
    del saved["benchmarks"][1]["extra_info"]["threads"]
    saved["benchmarks"].append({"extra_info": {"what": "train-step", "model": ["a list"], "batch": 25}})
    path.write_text(json.dumps(saved))
    assert bench.timing("train-step", "kmnist_gap", 25, "cpu", tmp_path).seconds_per_batch == 0.01
    with pytest.raises(ResultError, match=r"train-step timing of kmnist_traditional at batch 25 is not a "
                                          r"pytest-benchmark entry \(KeyError\('threads'\)\).*without a GPU"):
        bench.timing("train-step", "kmnist_traditional", 25, "cpu", tmp_path)
    path.write_text("[]")
    with pytest.raises(ResultError, match=r"is not a pytest-benchmark JSON file.*on a CUDA machine"):
        bench.timing("train-step", "kmnist_gap", 25, "cuda", path=path)


@pytest.mark.unit
def test_pending_cost_claim_is_pending_not_refuted(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    claim = next(c for c in registry() if c.id == "kmnist.gap-vs-dense.faster-training-cuda")
    verdict = judge(replace(claim))
    assert (verdict.verdict, verdict.waits_for) == ("pending", "benchmarks")


@pytest.mark.unit
def test_report_ends_with_every_models_costs(capsys):
    assert main(["report", "--format", "markdown", "--source", "machinecurve-gap"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("## Model costs"):]
    assert all(f"| {name} " in table for name in models.names())
    assert re.search(r"\| kmnist_gap +\| +24,586 \|.*\| +25 \| +6\.46 MiB \|", table)  # the post's batch


@pytest.mark.unit
def test_timed_pairs_become_ratios():
    """conftest.py's ratios from pytest-benchmark means: rate = units per round / mean."""
    from conftest import _ratios

    def entry(mean, **info):
        return {"extra_info": info, "stats": {"mean": mean}}

    timed = [entry(0.01, compile="compiled", model="lenet", images_per_round=128),
             entry(0.02, compile="eager", model="lenet", images_per_round=128),
             entry(0.02, compile="eager", model="kmnist_gap", images_per_round=25),  # no pair: no ratio
             entry(0.5, loop="trainer", recipe="lenet0", model_steps_per_round=60),
             entry(0.25, loop="dataloader", recipe="lenet0", model_steps_per_round=20),
             entry(2.0, epoch_loop="trainer", recipe="mnist_approach3", models_per_round=1),
             entry(3.0, epoch_loop="plain", recipe="mnist_approach3", models_per_round=1),
             entry(5.0, seed_count="three", recipe="mnist_approach3", models_per_round=3),
             entry(3.0, seed_count="one", recipe="mnist_approach3", models_per_round=1)]
    assert _ratios(timed, "compiled_vs_eager") == {"lenet": {"compiled": 12800, "eager": 6400, "ratio": 2.0}}
    assert _ratios(timed, "trainer_vs_dataloader") == {
        "lenet0": {"trainer": 120, "dataloader": 80, "ratio": 1.5}}
    assert _ratios(timed, "trainer_vs_plain_loop") == {
        "mnist_approach3": {"trainer": 0.5, "plain": pytest.approx(1 / 3), "ratio": pytest.approx(1.5)}}
    assert _ratios(timed, "seeds_vs_one") == {  # three seeds in 5/3 of one seed's time: 1.8x
        "mnist_approach3": {"three": 0.6, "one": pytest.approx(1 / 3), "ratio": pytest.approx(1.8)}}


@pytest.mark.unit
def test_counted_costs_are_computed_once_per_process_for_alike_models(monkeypatch):
    """The claims, the report and the summary ask for the same counts many times; a model
    differing in anything the count depends on (an option, a pruning hook) is counted anew."""
    calls = []
    real = cost._peak_training_memory
    monkeypatch.setattr(cost, "_COUNTED", {})
    monkeypatch.setattr(cost, "_peak_training_memory", lambda m, b: calls.append(b) or real(m, b))
    with torch.device("meta"):
        defaults = {"filters": (4, 8, 16, 16, 10)}
        first, alike, spelled = (models.build("mnist_approach2", **o) for o in ({}, {}, defaults))
        pruned = models.build("mnist_approach2")
    assert cost.peak_training_memory(first, 8) == cost.peak_training_memory(alike, 8)
    assert calls == [8]
    cost.peak_training_memory(first, 16)
    torch.nn.utils.prune.identity(pruned[0], "weight")  # a mask buffer and a forward pre-hook
    assert cost.fingerprint(pruned) != cost.fingerprint(first)
    assert cost.fingerprint(models.build("mnist_approach2", dropout=0.2)) != cost.fingerprint(first)
    assert cost.fingerprint(spelled) == cost.fingerprint(first)  # the default filters, written out
    assert calls == [8, 16]


@pytest.mark.unit
def test_bench_prints_each_models_row_as_it_is_measured(capsys, monkeypatch):
    """claims bench: the header first, then one aligned row per model, each printed when its
    model is measured (not the whole table at the end)."""
    printed = []
    monkeypatch.setattr(bench, "model_row", lambda name, batch, device: (
        printed.append(capsys.readouterr().out) or (name, "3,090", "0.42", str(batch), "1.0", "5", "6")))
    bench.print_model_table(["mnist_approach3", "lenet"], 8, torch.device("cpu"), progress=False)
    lines = (printed[0] + printed[1] + capsys.readouterr().out).splitlines()
    assert lines[0].split() == ["model", "trainable", "MFLOPs/image", "batch", "peak", "train", "MiB",
                                "forward", "img/s", "train", "img/s"]
    assert printed[1].splitlines()[-1].split() == ["mnist_approach3", "3,090", "0.42", "8", "1.0", "5", "6"]
    assert lines[-1].startswith("lenet ") and len(lines[-1]) == len(lines[0])


@pytest.mark.unit
def test_benchmark_sessions_decide_a_timing_claim_only_where_they_agree(tmp_path, monkeypatch):
    """The latest run is benchmarks-cpu.json; earlier ones kept as benchmarks-cpu-DATE.json are
    sessions of their own: a claim holds or is refuted only when every session says so."""
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    claim = next(c for c in registry() if c.id == "kmnist.gap-vs-dense.faster-training-cpu")
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.010, ("kmnist_traditional", 25): 0.020})
    assert judge(claim).verdict == INCONCLUSIVE  # one session: test_one_benchmark_session_decides_no_timing
    earlier = tmp_path / "benchmarks-cpu-2026-01-01.json"
    (tmp_path / "benchmarks-cpu.json").rename(earlier)
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.020, ("kmnist_traditional", 25): 0.010})
    assert [p.name for p in bench.sessions("cpu")] == ["benchmarks-cpu.json", earlier.name]
    verdict = judge(claim)
    assert verdict.verdict == INCONCLUSIVE and "sessions disagree" in verdict.reason
    assert verdict.evidence == ("results/benchmarks-cpu.json", f"results/{earlier.name}")
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.011, ("kmnist_traditional", 25): 0.020})
    assert judge(claim).verdict == HOLDS  # both sessions: faster


@pytest.mark.unit
def test_each_session_names_the_processor_it_ran_on(tmp_path, monkeypatch):
    """Sessions on different processors can rank two models differently: the reason says which
    processor each ran on, where the file records it (pytest-benchmark's machine_info); a GPU
    timing names its GPU (extra_info "gpu"), never the host's processor."""
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    times = {("kmnist_gap", 25): 0.010, ("kmnist_traditional", 25): 0.020}
    claims = {c.id: c for c in registry()}

    def reason(device: str = "cpu") -> str:
        return judge(claims[f"kmnist.gap-vs-dense.faster-training-{device}"]).reason

    _saved_run(tmp_path, times, machine={"cpu": {"brand_raw": "AMD EPYC", "count": 2}})
    (tmp_path / "benchmarks-cpu.json").replace(tmp_path / "benchmarks-cpu-2026-01-01.json")
    _saved_run(tmp_path, times, machine={"cpu": {"brand_raw": "Intel(R) Xeon(R) Processor", "count": 2}})
    assert "results/benchmarks-cpu.json (Intel(R) Xeon(R) Processor, 2 cores)" in reason()
    assert "results/benchmarks-cpu-2026-01-01.json (AMD EPYC, 2 cores)" in reason()
    assert "2 threads, results/benchmarks-cpu.json, Intel(R) Xeon(R) Processor, 2 cores)" in reason()
    for odd in ({"cpu": "not a dict"}, {"cpu": {"brand_raw": " ", "count": 2}}, [1, 2], None):  # none to name
        _saved_run(tmp_path, times, machine=odd)
        assert "results/benchmarks-cpu.json (" not in reason()
        assert "2 threads, results/benchmarks-cpu.json)" in reason()
    _saved_run(tmp_path, times, machine={"cpu": {"brand_raw": "X", "count": True}})  # not a count
    assert "results/benchmarks-cpu.json (X)" in reason()
    host = {"cpu": {"brand_raw": "Intel(R) Xeon(R) Processor", "count": 16}}
    _saved_run(tmp_path, times, device="cuda", machine=host, extra={"gpu": "NVIDIA H200"})
    assert "results/benchmarks-cuda.json (NVIDIA H200)" in reason("cuda") and "Xeon" not in reason("cuda")
    _saved_run(tmp_path, times, device="cuda", machine=host)  # a run from before the GPU was recorded
    assert "results/benchmarks-cuda.json (" not in reason("cuda") and "Xeon" not in reason("cuda")


@pytest.mark.unit
def test_earlier_sessions_are_ordered_by_when_they_ran_not_by_name(tmp_path, monkeypatch):
    """Sessions kept by hand as -s9 and -s12 sort s9 first by name; the reasons number the
    sessions newest first, so the order is pytest-benchmark's recorded datetime. A file that
    cannot be read sorts last."""
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    kept = [("s9", "2026-11-30T13:29:00"), ("s12", "2026-11-30T22:18:00+00:00"),
            ("s11", "2026-11-30T23:26:00+03:00"),  # 20:26 UTC
            ("odd", "Mon, 30 Nov 2026 23:59:00"), ("none", None)]  # no ISO time: last, like unreadable
    for name, when in kept:
        (tmp_path / f"benchmarks-cpu-2026-11-30-{name}.json").write_text(
            json.dumps({"benchmarks": [], "datetime": when}))
    (tmp_path / "benchmarks-cpu-2026-12-01.json").write_text("{not json")
    (tmp_path / "benchmarks-cpu-2026-12-02.json").write_text("[" * 100_000 + "]" * 100_000)  # too deep
    _saved_run(tmp_path, {("kmnist_gap", 25): 0.010, ("kmnist_traditional", 25): 0.020})
    assert [p.name for p in bench.sessions("cpu")] == [
        "benchmarks-cpu.json", "benchmarks-cpu-2026-11-30-s12.json", "benchmarks-cpu-2026-11-30-s11.json",
        "benchmarks-cpu-2026-11-30-s9.json", *(f"benchmarks-cpu-{n}.json" for n in (
            "2026-12-02", "2026-12-01", "2026-11-30-odd", "2026-11-30-none"))]
    with pytest.raises(ResultError, match=r"benchmarks-cpu-2026-12-02\.json is not a pytest-benchmark JSON"):
        bench.timing("train-step", "kmnist_gap", 25, "cpu", path=tmp_path / "benchmarks-cpu-2026-12-02.json")


@pytest.mark.unit
def test_alternating_takes_turns_after_an_untimed_call_and_reads_the_clock_it_is_given():
    """The timed comparisons of training.bench: each round runs every variant once, in turn,
    after one untimed call of each; the figure is the median round by the given clock."""
    calls: list[str] = []
    durations = {"a": [5, 1, 3], "b": [2, 2, 9]}  # clock ticks each timed call takes
    clock_now = [0.0]

    def clock() -> float:
        return clock_now[0]

    def run(name: str):
        def go() -> None:
            calls.append(name)
            if len(calls) > 2:  # the first call of each is untimed: it moves no clock
                clock_now[0] += durations[name].pop(0)
        return go
    medians = bench.alternating({"a": run("a"), "b": run("b")}, rounds=3, clock=clock)
    assert calls == ["a", "b"] * 4
    assert medians == {"a": 3, "b": 2}


def _small_data():
    from training.recipes import get

    r = get("mnist_approach3")
    return r, bench.prepare(r, bench.synthetic(bench.image_shape(r.model), n=500), torch.device("cpu"))


@pytest.mark.unit
def test_step_cpu_ms_is_the_median_round_in_cpu_time_over_its_steps_in_ms(monkeypatch):
    """What step_cpu_ms asks of alternating (both loops, the rounds, the process's CPU time)
    and what it makes of the answer (seconds per round / steps, in ms)."""
    import time

    asked = {}

    def alternating(runs, rounds, clock=time.perf_counter):
        asked.update(runs=sorted(runs), rounds=rounds, clock=clock)
        return {"plain": 0.004, "trainer": 0.006}
    monkeypatch.setattr(bench, "alternating", alternating)
    r, data = _small_data()
    ms = bench.step_cpu_ms(r, data, [0], rounds=5, steps=2)
    assert ms == pytest.approx({"plain": 2.0, "trainer": 3.0})
    assert asked == {"runs": ["plain", "trainer"], "rounds": 5, "clock": time.process_time}


@pytest.mark.train
def test_step_cpu_ms_runs_each_loops_steps_for_real(monkeypatch):
    """The untimed round and the timed ones run ``steps`` real steps of the trainer each:
    (rounds + 1) * steps in all."""
    r, data = _small_data()
    calls = []
    original = bench.seeded_trainer

    def counted(*args, **kwargs):
        trainer = original(*args, **kwargs)
        step = trainer.step
        trainer.step = lambda batch: (calls.append(1), step(batch))[1]
        return trainer
    monkeypatch.setattr(bench, "seeded_trainer", counted)
    ms = bench.step_cpu_ms(r, data, [0], rounds=2, steps=3)
    assert len(calls) == (2 + 1) * 3
    assert set(ms) == {"plain", "trainer"} and all(0 < v < 10_000 for v in ms.values())


# --- the ceiling on fusing BatchNorm, ReLU and pooling (training/bench_layers.py) ------------

def _layer_kinds(model: nn.Module) -> list[str]:
    """The leaf layers in order, ReLU-activated ones marked (nested containers walked)."""
    return [type(m).__name__ + (f":{m.activation}" if getattr(m, "activation", None) else "")
            for m in model.modules() if not list(m.children())]


@pytest.mark.unit
@pytest.mark.parametrize("name", ["mnist_approach1", "mnist_approach3", "cats_dogs_dense"])
def test_each_variant_takes_out_one_more_kind_of_layer_and_keeps_the_shapes(name):
    """cats_dogs_dense nests its layers in Sequentials: they are taken out there too."""
    from training import bench_layers

    built = _layer_kinds(models.build(name))
    x = torch.rand(3, *models.build(name).input_shape)
    expected = models.build(name).train()(x).shape
    seen = []
    for variant in bench_layers.VARIANTS:
        model = bench_layers.without(models.build(name), variant).train()
        kinds = _layer_kinds(model)
        seen.append(kinds)
        assert len(kinds) == len(built) and model(x).shape == expected
    as_built, no_bn, no_pool, convs = seen
    assert as_built == built
    assert "BatchNormalization" in " ".join(built) and not any(k.startswith("BatchNorm") for k in no_bn)
    assert "MaxPooling2D" in built and "MaxPooling2D" in no_bn and "MaxPooling2D" not in no_pool
    assert any(k.endswith(":relu") for k in no_pool) and not any(k.endswith(":relu") for k in convs)
    # the output activation (softmax or sigmoid) is the loss's, and stays
    assert built[-1].split(":")[-1] in ("softmax", "sigmoid") and convs[-1] == built[-1]


@pytest.mark.unit
@pytest.mark.parametrize("size", [4, 5, 6, 7, 24, 25])
def test_the_pooling_stand_in_has_the_pooling_shape_for_even_and_odd_sizes(size):
    from training import bench_layers

    x = torch.rand(2, 3, size, size + 1)
    assert bench_layers._Subsample()(x).shape == nn.MaxPool2d(2)(x).shape


@pytest.mark.unit
@pytest.mark.parametrize("pool", [nn.MaxPool2d(3), nn.MaxPool2d(2, stride=1), nn.MaxPool2d(2, padding=1)])
def test_the_layer_ceiling_refuses_what_it_cannot_stand_in_for(pool):
    from training import bench_layers

    with pytest.raises(ValueError, match="unknown variant 'no relu'; one of: as built"):
        bench_layers.without(models.build("mnist_approach3"), "no relu")
    with pytest.raises(ValueError, match=r"layer 1\.0: only 2x2 pooling of stride 2"):
        bench_layers.without(nn.Sequential(nn.Identity(), nn.Sequential(pool)), "convolutions alone")


@pytest.mark.unit
def test_the_layer_ceiling_times_each_variants_own_model_with_the_kernels_on(monkeypatch):
    """What step_ms asks of alternating (each variant, in order, the thread's CPU time), what
    each variant's loop runs (its own model, ``steps`` steps, the trainer's CPU kernels on) and
    what it makes of the medians."""
    import time

    from models import kernels
    from training import bench_layers

    asked, built, ran = {}, {}, []

    def training_step(model, batch, device):
        i = len(built)
        built[i] = (_layer_kinds(model), batch, device)
        return lambda: ran.append((i, kernels._ON))

    def alternating(runs, rounds, clock=time.perf_counter):
        asked.update(runs=list(runs), rounds=rounds, clock=clock)
        for run in runs.values():
            run()
        return {v: 0.002 * (i + 1) for i, v in enumerate(runs)}
    monkeypatch.setattr(bench_layers.cost, "training_step", training_step)
    monkeypatch.setattr(bench_layers, "alternating", alternating)
    ms = bench_layers.step_ms("mnist_approach3", rounds=4, steps=3)
    assert asked == {"runs": list(bench_layers.VARIANTS), "rounds": 4, "clock": time.thread_time}
    assert ms == pytest.approx({v: 2 * (i + 1) / 3 for i, v in enumerate(bench_layers.VARIANTS)})
    assert ran == [(i, True) for i in range(4) for _ in range(3)]
    kinds = [built[i][0] for i in range(4)]
    assert [sum(k.startswith("BatchNorm") for k in ks) for ks in kinds] == [5, 0, 0, 0]
    assert [sum(k == "MaxPooling2D" for k in ks) for ks in kinds] == [1, 1, 0, 0]
    assert [sum(k.endswith(":relu") for k in ks) for ks in kinds] == [5, 5, 5, 0]
    assert {built[i][1:] for i in range(4)} == {(125, "cpu")}


@pytest.mark.unit
def test_the_layer_ceiling_command_runs_on_one_thread(monkeypatch, capsys):
    from training import bench_layers

    threads = torch.get_num_threads()
    seen = []

    def step_ms(recipe, rounds):
        seen.append((recipe, rounds, torch.get_num_threads()))
        return {v: 10.0 - i for i, v in enumerate(bench_layers.VARIANTS)}
    monkeypatch.setattr(bench_layers, "step_ms", step_ms)
    try:
        assert bench_layers.main(["mnist_approach1", "--rounds", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert seen == [("mnist_approach1", 2, 1)]
    assert "convolutions alone               7.00 ms  0.70 of the step as built" in capsys.readouterr().out


@pytest.mark.unit
def test_the_layer_ceiling_command_names_an_unknown_recipe(capsys):
    from training import bench_layers

    with pytest.raises(SystemExit) as stop:
        bench_layers.main(["mnist_approach9"])
    assert stop.value.code == 2
    assert "unknown recipe 'mnist_approach9'; recipes: cats_dogs_dense" in capsys.readouterr().err

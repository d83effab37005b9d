"""The training machinery without training: Keras semantics (Adam, the callbacks, the
validation split), recipes, stacking of grid points, result files, pruning schedules.

Marker ``unit``: small made-up images, no training. Tests that train (seeds, grids, resumption) are in
tests/test_training_runs.py (marker ``train``); tests/test_training_real.py trains on real MNIST.
"""

from __future__ import annotations

import math
import types
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from claims.registry import registry
from claims.verdict import judge
from training import results
from training.recipes import RecipeError, get, names, parse
from training.run import prepare
from training.trainer import KerasAdam, Stack, Trainer

pytestmark = pytest.mark.unit


def blobs(n: int = 600, seed: int = 0) -> types.SimpleNamespace:
    """Ten classes, each a bright 7x7 patch at its own place on noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.random((n, 28, 28)) * 80).astype(np.uint8)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 5)
        x[i, 2 + r * 12: 9 + r * 12, 1 + c * 5: 6 + c * 5] = 255
    cut = n * 5 // 6
    return types.SimpleNamespace(train_images=x[:cut], train_labels=y[:cut], test_images=x[cut:],
                                 test_labels=y[cut:], classes=tuple(str(i) for i in range(10)))


def test_every_recipe_parses() -> None:
    for name in names():
        recipe = get(name)
        assert recipe.epochs >= 1 and recipe.model in models.names()


def test_recipe_errors_name_the_problem() -> None:
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
        get("nope")
    with pytest.raises(RecipeError, match="unknown keys bogus"):
        parse("x", {"model": "lenet", "dataset": "mnist", "epochs": 1, "loss": "binary_crossentropy",
                    "bogus": 1})
    with pytest.raises(RecipeError, match="needs a validation_split"):
        parse("x", {"model": "lenet", "dataset": "mnist", "epochs": 1, "loss": "binary_crossentropy",
                    "monitor": "val_loss", "early_stopping_patience": 3})


def test_grid_product_gives_every_pair() -> None:
    points = get("lenet1_l1l2_grid").grid_points()
    assert len(points) == 36 and points[0] == {"l1_l2": (0.0, 0.0)} and points[-1] == {"l1_l2": (1e-2, 1e-2)}
    assert [p["hidden"] for p in get("mnist_dense_width_grid").grid_points()] == [32, 64, 128, 256]


def test_keras_adam_is_the_keras_formula_not_pytorchs() -> None:
    """Keras adds epsilon to sqrt(v), PyTorch to the bias-corrected sqrt(v): at epsilon 1e-4
    (the Fashion-MNIST post) the first step differs by a factor sqrt(1 - 0.999)."""
    p = torch.tensor([[1.0, -2.0]], requires_grad=True)
    p.grad = torch.tensor([[1e-3, -1e-2]])
    g = p.grad.clone()
    KerasAdam({"w": p}, torch.tensor([0.1]), 1e-4).step(torch.ones(1))
    m, v = 0.1 * g, 0.001 * g * g
    expected = torch.tensor([[1.0, -2.0]]) - 0.1 * math.sqrt(1 - 0.999) / (1 - 0.9) * m / (v.sqrt() + 1e-4)
    torch.testing.assert_close(p.detach(), expected)
    q = torch.tensor([[1.0, -2.0]], requires_grad=True)
    q.grad = g.clone()
    torch.optim.Adam([q], lr=0.1, eps=1e-4).step()
    assert not torch.allclose(q.detach(), p.detach(), atol=1e-4)


def _reference_adam_step(params, m, v, lr, active, epsilon, t) -> None:
    """Keras' Adam written out one weight tensor at a time (the device path before it took
    multi-tensor ops): the reference the multi-tensor update must equal bit for bit."""
    alpha = lr * active * (math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t))
    for k, p in params.items():
        g = p.grad
        m[k].lerp_(g, 1 - 0.9)
        v[k].mul_(0.999).addcmul_(g, g, value=1 - 0.999)
        p.sub_(alpha.reshape(-1, *([1] * (p.dim() - 1))) * m[k] / (v[k].sqrt() + epsilon))


def test_the_multi_tensor_update_is_the_per_tensor_formula_bit_for_bit() -> None:
    """The device path's update (``KerasAdam._written_out``, foreach ops) over three seeds with
    their own rates, one of them stopped, equals the formula applied tensor by tensor."""
    gen = torch.Generator().manual_seed(0)
    shapes = {"conv.weight": (3, 4, 2, 3, 3), "conv.bias": (3, 4), "dense.weight": (3, 10, 36)}
    ours = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    theirs = {k: t.clone() for k, t in ours.items()}
    lr, active = torch.tensor([1e-3, 1e-2, 5e-4]), torch.tensor([1.0, 0.0, 1.0])
    adam = KerasAdam(ours, lr.clone(), 1e-4)
    m = {k: torch.zeros_like(t) for k, t in theirs.items()}
    v = {k: torch.zeros_like(t) for k, t in theirs.items()}
    for t in range(1, 6):
        grads = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
        for k in shapes:
            ours[k].grad, theirs[k].grad = grads[k].clone(), grads[k].clone()
        adam.t = t
        adam._written_out(active)
        _reference_adam_step(theirs, m, v, lr, active, 1e-4, t)
        for k in shapes:
            assert torch.equal(ours[k], theirs[k])
            assert torch.equal(adam.m[k], m[k]) and torch.equal(adam.v[k], v[k])
    assert torch.equal(ours["dense.weight"][1], theirs["dense.weight"][1])  # the stopped seed: unchanged


def test_the_multi_tensor_update_launches_as_many_ops_for_many_tensors_as_for_few() -> None:
    """What makes it worth having on CUDA: the ops it dispatches (each a kernel launch on the
    device) do not grow with the number of weight tensors, except the per-seed rate's product."""
    from torch.profiler import ProfilerActivity, profile

    def dispatched(tensors: int) -> int:
        params = {f"w{i}": torch.zeros(2, 3) for i in range(tensors)}
        for p in params.values():
            p.grad = torch.ones(2, 3)
        adam = KerasAdam(params, torch.tensor([0.1, 0.2]), 1e-4)
        adam.t = 1
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            adam._written_out(torch.ones(2))
        top = [e for e in prof.events() if e.name.startswith("aten::")
               and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))]
        foreach = sum(e.name.startswith("aten::_foreach") for e in top)
        return foreach, sum(e.name == "aten::mul" for e in top)
    # the rate: lr * active * scale, then its product with each tensor
    assert dispatched(4) == (7, 2 + 4) and dispatched(40) == (7, 2 + 40)


def test_validation_split_is_the_last_fraction_before_shuffling() -> None:
    arrays = blobs(600)
    recipe = replace(get("mnist_dense0"), validation_split=0.2)
    data = prepare(recipe, arrays, torch.device("cpu"))
    assert len(data.train) == 400 and len(data.val) == 100  # int(500 * 0.8) = 400
    torch.testing.assert_close(data.val.y, torch.as_tensor(arrays.train_labels[400:]))
    torch.testing.assert_close(data.val.x[0, 0], torch.as_tensor(arrays.train_images[400]) / 255.0)


def test_lenet_inputs_are_zero_padded_to_32() -> None:
    data = prepare(get("lenet0"), blobs(60), torch.device("cpu"))
    assert data.train.x.shape[1:] == (1, 32, 32)
    assert data.train.x[:, :, :2].abs().sum() == 0 and data.train.x[:, :, -2:].abs().sum() == 0


def _trainer(recipe_name: str, seeds: list[int], arrays=None, **changes) -> Trainer:
    recipe = replace(get(recipe_name), **changes)
    data = prepare(recipe, arrays or blobs(), torch.device("cpu"))
    mods = []
    for seed in seeds:
        torch.manual_seed(seed)
        mods.append(models.build(recipe.model, **recipe.options))
    return Trainer(recipe, Stack.of(mods, torch.device("cpu")), data, seeds=seeds)


def _logs(**per_seed: list[float]) -> dict[str, list[float]]:
    return {k: list(v) for k, v in per_seed.items()}


def test_early_stopping_and_restore_best_follow_keras() -> None:
    """patience 2 on val_loss: 1.0, 0.9 (best), 0.95, 0.96 -> stops after the 4th epoch and
    restores the 2nd epoch's weights; the other seed keeps improving and never stops."""
    t = _trainer("mnist_dense0", [0, 1], validation_split=0.2, early_stopping_patience=2,
                 restore_best=True)
    states = []
    for epoch, losses in enumerate([(1.0, 1.0), (0.9, 0.8), (0.95, 0.7), (0.96, 0.6)]):
        with torch.no_grad():
            for p in t.stack.params.values():
                p.fill_(epoch)
        states.append(t.stack.state())
        t._end_epoch(_logs(val_loss=losses))
        t.epoch += 1
    assert t.callbacks.stopped_epoch == [3, None] and t.callbacks.best_epoch == [1, 3]
    assert t.active.tolist() == [0.0, 1.0]
    t.history = []
    final = t.finish()
    assert final.stopped_epoch == [3, None]
    w = t.stack.params["1.weight"]
    assert (w[0] == 1).all() and (w[1] == 3).all()  # seed 0 restored to epoch 2 (index 1)


def test_early_stopping_baseline_keeps_waiting_until_passed() -> None:
    """Keras: an improvement resets the wait only once the monitor beats the baseline."""
    t = _trainer("mnist_approach3", [0], early_stopping_patience=2, early_stopping_baseline=0.98,
                 monitor="test_accuracy")
    for epoch, acc in enumerate([0.90, 0.95, 0.97]):
        t.epoch = epoch
        t._end_epoch(_logs(test_accuracy=[acc]))
    assert t.callbacks.stopped_epoch == [None] and t.callbacks.wait == [3]
    t2 = _trainer("mnist_approach3", [0], early_stopping_patience=2, early_stopping_baseline=0.98,
                  monitor="test_accuracy")
    for epoch, acc in enumerate([0.99, 0.985, 0.984]):
        t2.epoch = epoch
        t2._end_epoch(_logs(test_accuracy=[acc]))
    assert t2.callbacks.stopped_epoch == [2]


def test_reduce_lr_on_plateau_follows_keras() -> None:
    t = _trainer("mnist_approach3", [0], reduce_lr_patience=2, reduce_lr_factor=0.5, monitor="test_accuracy")
    for epoch, acc in enumerate([0.9, 0.95, 0.95005, 0.94, 0.96]):  # +5e-5 is below min_delta 1e-4
        t.epoch = epoch
        t._end_epoch(_logs(test_accuracy=[acc]))
    assert t.lr.tolist() == pytest.approx([0.005])


def test_train_command_time_limit_exits_3_and_says_how_to_go_on(tmp_path, monkeypatch, capsys) -> None:
    from claims.__main__ import main
    from training import datasets

    monkeypatch.setattr(datasets, "load", lambda name, root=None: blobs(120))
    monkeypatch.setattr(datasets, "check", lambda name, root=None: None)
    code = main(["train", "lenet0", "mnist_approach3", "--results", str(tmp_path), "--quiet",
                 "--time-limit", "1e-9", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 3 and "Not finished: lenet0 mnist_approach3. Run the same command again" in err
    assert not results.path_for("lenet0", tmp_path).exists()


def test_grid_points_that_differ_only_in_penalties_or_dropout_rates_share_one_stack() -> None:
    from training.run import plan_points, stack_groups

    def groups(name: str) -> list[list[int]]:
        recipe = get(name)
        return stack_groups(recipe, plan_points(recipe), {}, True)
    assert groups("lenet1_l1l2_grid") == [list(range(36))]  # l1_l2 acts in the loss only
    assert groups("lenet2_dropout_grid") == [list(range(36))]  # the stack sets each copy's rates
    assert groups("mnist_dense_width_grid") == [[0], [1], [2], [3]]
    assert groups("mnist_approach2_lottery") == [[0], [1], [2]]  # each iteration starts from the last


def test_stacked_dropout_draws_each_copys_own_rate() -> None:
    from models.layers import Dropout

    layer = Dropout(0.9)  # its own rate is not used while a stack sets the rates

    def one(rate: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        layer.rates = rate
        out = layer(x)
        layer.rates = None
        return out
    stacked = torch.func.vmap(one, randomness="different")
    x = torch.ones(3, 20000)
    y = stacked(torch.tensor([0.0, 0.25, 0.5]), x)
    assert (y == 0).float().mean(1).tolist() == pytest.approx([0.0, 0.25, 0.5], abs=0.02)
    assert y[1][y[1] != 0].unique().tolist() == pytest.approx([1 / 0.75])
    layer.eval()
    assert torch.equal(stacked(torch.tensor([0.0, 0.25, 0.5]), x), x)


def test_a_stacked_copys_dropout_scale_is_its_network_alones() -> None:
    """TF 2 scales by 1 / (1 - rate) computed in double precision and rounded once: a copy of
    a stack, whose rate is a tensor (``Stack.rates``), gets its network's very output alone,
    on the CPU's loop and under vmap, for every rate of a grid (float32 rates would round
    0.15, 0.45 and others to another scale)."""
    from torch import nn

    from models.layers import Dropout

    grid = [i / 20 for i in range(20)]
    stack = Stack.of([nn.Sequential(nn.Linear(2, 2), Dropout(p)) for p in grid], torch.device("cpu"))
    rates = stack.rates["1"]
    x, noise = torch.randn(len(grid), 500), torch.rand(len(grid), 500)
    layer = Dropout(0.9)

    def stacked(rate: torch.Tensor, xs: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        layer.rates, layer.noise = rate, draws
        return layer(xs)
    vmapped = torch.func.vmap(stacked)(rates, x, noise)
    for i, p in enumerate(grid):
        alone = Dropout(p)
        alone.noise = noise[i]
        expected = alone(x[i])
        assert torch.equal(stacked(rates[i], x[i], noise[i]), expected), p
        assert torch.equal(vmapped[i], expected) and expected.dtype == torch.float32, p


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5), data=st.data())
def test_dropout_draws_lie_in_memory_as_any_dense_input_does(shape, data) -> None:
    """Whatever order an input's axes lie in memory, its draws (``training.stack.Draws``) have
    its shape and strides, and are the stream's numbers in that memory order."""
    from training.stack import Draws

    order = data.draw(st.permutations(range(len(shape))))
    x = torch.empty([shape[d] for d in order]).permute([order.index(d) for d in range(len(shape))])
    draws = Draws.like(x)
    drawn = draws.draw(torch.Generator().manual_seed(7), torch.device("cpu"))
    assert drawn.shape == x.shape
    assert all(a == b for a, b, n in zip(drawn.stride(), x.stride(), shape, strict=True) if n > 1)
    in_memory = torch.rand(x.numel(), generator=torch.Generator().manual_seed(7))
    assert torch.equal(drawn.as_strided((drawn.numel(),), (1,)), in_memory)  # its storage, in order


def test_a_points_share_ends_where_its_own_run_would() -> None:
    from training.run import _members

    nan = math.nan
    history = {"epochs": [{"loss": [1.0, 2.0, 3.0, 4.0]}, {"loss": [nan, nan, 3.5, 4.5]}],
               "stopped_epoch": [0, 0, None, None], "best_epoch": [0, 0, 1, 1],
               "final": {"accuracy": [0.1, 0.2, 0.3, 0.4]}}
    assert _members(history, 0, 2) == {"epochs": [{"loss": [1.0, 2.0]}], "stopped_epoch": [0, 0],
                                       "best_epoch": [0, 0], "final": {"accuracy": [0.1, 0.2]}}
    assert _members(history, 2, 4)["epochs"] == [{"loss": [3.0, 4.0]}, {"loss": [3.5, 4.5]}]


def test_unreadable_result_file_says_how_to_fix(tmp_path) -> None:
    path = tmp_path / "lenet0.json"
    path.write_text("{not json")
    with pytest.raises(results.ResultError, match="python -m claims train lenet0"):
        results.read(path)
    path.write_text('{"hello": 1}')
    with pytest.raises(results.ResultError, match="not a result file"):
        results.read(path)


def _claim(claim_id: str):
    return next(c for c in registry() if c.id == claim_id)


def test_missing_result_is_pending_with_the_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path))
    verdict = judge(_claim("mnist-10k.a3.above-99"))
    assert verdict.verdict == "pending" and "python -m claims train mnist_approach3" in verdict.reason
    assert verdict.waits_for == "train mnist_approach3"  # the report's summary of what is missing


def test_images_larger_than_the_input_are_refused() -> None:
    with pytest.raises(ValueError, match="larger than the model's input"):
        prepare(get("mnist_approach3"), types.SimpleNamespace(
            train_images=np.zeros((2, 30, 30), np.uint8), train_labels=np.zeros(2, int),
            test_images=np.zeros((2, 30, 30), np.uint8), test_labels=np.zeros(2, int), classes=("a", "b")),
            torch.device("cpu"))


def test_prepare_keeps_every_image_and_the_class_count() -> None:
    data = prepare(get("mnist_approach3"), blobs(120), torch.device("cpu"))
    assert (len(data.train), len(data.test), data.val, data.classes) == (100, 20, None, 10)
    assert data.train.x.shape == (100, 1, 28, 28) and data.train.x.max() <= 1.0


def test_lottery_iterations_prune_rewind_and_keep_masks(tmp_path) -> None:
    """Iteration k keeps iteration k-1's masks, reaches the schedule's fraction, and starts
    from the seeds' initial values (rewound), so the post's 5,220 -> 4,176 -> 2,309 holds."""
    from training.run import _point_models
    recipe = get("mnist_approach2_lottery")
    first, none = _point_models(recipe, {"iteration": 0, "removed": 0.0}, [0], None)
    assert none is None
    initial = {k: v.clone() for k, v in first[0].state_dict().items()}
    trained = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in initial.items()}
    one, masks1 = _point_models(recipe, {"iteration": 1, "removed": 0.2}, [0],
                                {"states": [trained], "masks": None})
    assert sum(int(m.sum()) for m in masks1[0].values()) == 4176
    for key, mask in masks1[0].items():
        w = one[0].get_parameter(key)
        assert (w[mask == 0] == 0).all()
        torch.testing.assert_close(w[mask == 1], initial[key][mask == 1])  # rewound, not trained
    _, masks2 = _point_models(recipe, {"iteration": 2, "removed": 0.5577}, [0],
                                {"states": [trained], "masks": masks1})
    assert sum(int(m.sum()) for m in masks2[0].values()) == 2309
    for key in masks1[0]:
        assert (masks2[0][key] <= masks1[0][key]).all()  # a pruned weight never comes back


def test_recipe_base_is_resolved_and_checked(tmp_path) -> None:
    from claims.registry import ClaimError, recipes

    (tmp_path / "a.toml").write_text('[recipes.one]\nmodel = "lenet"\nepochs = 3\n\n'
                                     '[recipes.two]\nbase = "one"\nepochs = 5\n')
    table = recipes(tmp_path)
    assert table["two"]["model"] == "lenet" and table["two"]["epochs"] == 5 and "base" not in table["two"]
    (tmp_path / "a.toml").write_text('[recipes.one]\nbase = "two"\n\n[recipes.two]\nbase = "one"\n')
    with pytest.raises(ClaimError, match="is a cycle"):
        recipes(tmp_path)
    (tmp_path / "a.toml").write_text('[recipes.one]\nbase = "nope"\n')
    with pytest.raises(ClaimError, match="'nope' is an unknown recipe"):
        recipes(tmp_path)


def test_ensure_trains_each_missing_recipe_once(tmp_path, monkeypatch) -> None:
    """Parallel workers share a lock per recipe: the second finds the result and trains nothing."""
    from training import run

    calls = []

    def fake(name, **kwargs):
        calls.append(name)
        result = {"recipe": name, "points": [], "seeds": [], "provenance": {}}
        results.write(results.path_for(name, kwargs["directory"]), result)
        return result
    monkeypatch.setattr(run, "train_recipe", fake)
    for _ in range(2):
        needed = run.needed_recipes({"recipe": "lenet3_halved"})
        assert run.ensure(needed, device=torch.device("cpu"), directory=tmp_path) is None
    assert calls == ["lenet2_dropout_grid", "lenet3_halved"]
    assert run.needed_recipes({"recipe": "lenet2_dropout_grid", "versus": "lenet1_l1l2_grid"}) == \
        ["lenet2_dropout_grid", "lenet1_l1l2_grid"]


def test_ensure_stops_at_the_recipe_a_time_limit_stopped(tmp_path, monkeypatch, pytestconfig) -> None:
    from training import run

    calls = []

    def stopped(name, **kwargs):  # what train_recipe returns when its deadline comes
        calls.append((name, kwargs["deadline"]))
    monkeypatch.setattr(run, "train_recipe", stopped)
    needed = run.needed_recipes({"recipe": "lenet3_halved"})
    stopped_at = run.ensure(needed, device=torch.device("cpu"), directory=tmp_path, deadline=5.0)
    assert stopped_at == "lenet2_dropout_grid"
    assert calls == [("lenet2_dropout_grid", 5.0)]  # lenet3_halved is not started
    assert pytestconfig.getoption("--train-time-limit") is None  # the option exists, off by default


def test_worker_device_without_cuda(monkeypatch) -> None:
    from training.run import worker_device

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    if torch.cuda.is_available():
        assert worker_device() == torch.device("cuda", 3 % torch.cuda.device_count())
    else:
        assert worker_device() == torch.device("cpu")


def test_pruning_schedules_as_data() -> None:
    from training.lottery import Schedule

    assert Schedule.from_spec({"removed_after_iteration": [0.2, 0.5577]}).removed == (0.2, 0.5577)
    assert Schedule.from_spec({"rate": 0.2, "rounds": 2}).removed == pytest.approx((0.2, 0.36))
    assert Schedule.from_spec({"target": 0.5577, "rounds": 2}).removed[1] == pytest.approx(0.5577)
    with pytest.raises(ValueError, match="increasing fractions"):
        Schedule((0.5, 0.2))
    with pytest.raises(ValueError, match="needs rounds"):
        Schedule.from_spec({"rate": 0.2})
    with pytest.raises(ValueError, match="scope"):
        Schedule((0.2,), scope="per-neuron")


def test_a_formula_schedule_shows_its_arithmetic() -> None:
    """The reason of a claim about a schedule from a target shows the rate it computes, from
    the spec (a reviewer found a note naming p^(1/n) beside the number 1 - (1 - p)^(1/n) gives)."""
    from claims.measures import measure

    spec = {"statistic": "pruning_schedule", "model": "mnist_approach2", "iteration": 1,
            "report": "removed_percent", "schedule": {"target": 0.36, "rounds": 2}}
    measured = measure(spec)
    assert measured.value == pytest.approx(20.0, abs=0.05)  # 1 - 0.64^(1/2) = 20%, in whole weights
    assert "p = 36% in all" in measured.why and "r = 1 - (1 - p)^(1/2) = 20%" in measured.why
    assert "read literally would be 60% in the first round" in measured.why
    by_list = measure({**spec, "schedule": {"removed_after_iteration": [0.2, 0.36]}})
    assert by_list == pytest.approx(measured.value)  # no formula, no arithmetic to show


def test_layerwise_pruning_removes_the_fraction_in_every_layer() -> None:
    from training.lottery import conv_weights, prune_to

    torch.manual_seed(0)
    model = models.build("mnist_approach2")
    prune_to(model, 0.2, "layer")
    prune_to(model, 0.5, "layer")  # the second iteration keeps the first's masks
    for module, _ in conv_weights(model):
        assert int((module.weight_mask == 0).sum()) == round(0.5 * module.weight.numel())


def test_a_caption_names_a_joined_run_s_machine_once() -> None:
    """A result file that gained seeds in a second run records both devices; the plot's caption
    ran off the figure with both written out."""
    from training.plot_parts import _device
    assert _device("cpu: x86_64, 1 threads") == "cpu: x86_64, 1 thread"
    assert _device("cpu: x86_64, 1 threads | cpu: x86_64, 2 threads") == "cpu: x86_64, 1 and 2 threads"
    assert _device("cpu: x86_64, 1 threads | cpu: x86_64, 1 threads") == "cpu: x86_64, 1 thread"
    assert _device("NVIDIA H200 | cpu: x86_64, 1 threads") == "NVIDIA H200 | cpu: x86_64, 1 thread"


def test_legend_labels_of_grid_points_and_lottery_iterations() -> None:
    from training.plots import _tag
    assert _tag({"iteration": 0, "removed": 0.0}) == "original"
    assert _tag({"iteration": 2, "removed": 0.5577}) == "iteration 2, 55.77% pruned"
    assert _tag({"hidden": 64}) == "hidden=64"
    assert _tag({"l1_l2": [0.0, 1e-06]}) == "l1_l2=[0.0, 1e-06]"

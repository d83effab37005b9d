"""Tests of the model builders: shapes, admissible options, parameter counts, Keras defaults.

Shapes, parameter counts and layer structure are marked ``fast``; errors for bad options,
initialisers, numerics (affine maps, penalties, probabilities) and the CPU kernel ``unit``.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import models
from models import fashion_dense as fashion
from models.layers import Dense

MODEL_SETTINGS = settings(max_examples=25, deadline=None)


def _meta(name: str, **options) -> nn.Module:
    with torch.device("meta"):
        return models.build(name, **options)


def _params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --- every registered model ------------------------------------------------------------------

@pytest.mark.fast
@pytest.mark.parametrize("name", models.names(), ids=models.names())
def test_every_model_builds_and_runs_on_meta(name):
    model = _meta(name)
    assert model.model_name == name
    assert tuple(model.input_shape) == tuple(models.entry(name).input_shape)
    out = model(torch.zeros(2, *model.input_shape, device="meta"))
    if name == "cats_dogs_head":
        assert out.dim() == 4 and out.shape[0] == 2
    else:
        assert out.dim() == 2 and out.shape[0] == 2 and out.shape[1] >= 1


@pytest.mark.fast
def test_names_are_sorted_and_unique():
    names = models.names()
    assert names == sorted(set(names))
    assert {"kmnist_gap", "fashion_dense", "mnist_approach2", "lenet", "cats_dogs_gap"} <= set(names)


# --- kmnist_gap: any image size the layers admit ---------------------------------------------

def _kmnist_admits(s: int) -> bool:
    """conv3 valid, pool2, conv3 valid, pool2 must leave at least one pixel ('same' keeps it)."""
    for _ in range(2):
        s -= 2  # conv 3x3 'valid'
        if s < 1:
            return False
        s //= 2  # max pool 2, floor
        if s < 1:
            return False
    return True


KMNIST_MIN_SIZE = 10  # 10 -> 8 -> 4 -> 2 -> 1; 9 -> 7 -> 3 -> 1 -> 0


@pytest.mark.fast
@MODEL_SETTINGS
@given(s=st.integers(KMNIST_MIN_SIZE, 64), num_classes=st.integers(1, 20), n=st.integers(1, 3))
def test_kmnist_gap_output_shape_for_any_admissible_size(s, num_classes, n):
    model = _meta("kmnist_gap", image_size=s, num_classes=num_classes)
    assert model.input_shape == (1, s, s)
    out = model(torch.zeros(n, 1, s, s, device="meta"))  # shapes only: no compute
    assert tuple(out.shape) == (n, num_classes)


@pytest.mark.unit
@pytest.mark.parametrize("s", range(1, KMNIST_MIN_SIZE))
def test_kmnist_gap_rejects_images_below_minimum(s):
    with pytest.raises(ValueError, match="too small"):
        models.build("kmnist_gap", image_size=s)


@pytest.mark.fast
def test_kmnist_gap_minimum_is_exact():
    assert next(s for s in range(1, 65) if _kmnist_admits(s)) == KMNIST_MIN_SIZE
    for s in range(1, 65):
        if _kmnist_admits(s):
            assert tuple(_meta("kmnist_gap", image_size=s).input_shape) == (1, s, s)
        else:
            with pytest.raises(ValueError):
                _meta("kmnist_gap", image_size=s)


# --- fashion_dense: closed-form parameter count ----------------------------------------------

@pytest.mark.fast
@MODEL_SETTINGS
@given(hidden=st.integers(1, 2000), layers=st.sampled_from([1, 2]))
def test_fashion_dense_parameter_count_closed_form(hidden, layers):
    model = _meta("fashion_dense", hidden=hidden, layers=layers)
    total = _params(model)
    assert total == fashion.parameter_count(hidden, layers)
    if layers == 1:
        # Dense(1 -> hidden) per pixel: 2 * hidden; Dense(784 * hidden -> 10): 7840 * hidden + 10
        assert total == 7842 * hidden + 10
    else:
        assert total == 7842 * hidden + 10 + hidden * hidden + hidden


@pytest.mark.fast
def test_fashion_dense_as_coded_has_same_parameters():
    assert _params(_meta("fashion_dense_as_coded", hidden=392)) == 7842 * 392 + 10


@pytest.mark.fast
def test_fashion_dense_without_hidden_layer_is_a_logistic_regression():
    model = _meta("fashion_dense", layers=0)
    assert [type(m).__name__ for m in model] == ["InputLayer", "Flatten", "Dense"]
    assert (model[-1].in_features, model[-1].out_features, model[-1].activation) == (784, 10, "softmax")
    assert _params(model) == fashion.parameter_count(392, 0) == 784 * 10 + 10


@pytest.mark.unit
def test_affine_composition_of_the_fashion_networks():
    from claims.measures import _compose_affine, measure

    torch.manual_seed(0)
    logistic = models.build("fashion_dense", layers=0).double()
    w, b = _compose_affine(logistic)
    # no hidden layer: the map is the output layer itself, its columns put back channels-first
    # (one channel: Flatten's order is the pixels' order)
    assert torch.equal(w, logistic[-1].weight.detach()) and torch.equal(b, logistic[-1].bias.detach())

    def residual(name, **options):
        return measure({"statistic": "affine_residual", "model": name, "options": {"hidden": 7, **options}})
    assert residual("fashion_dense_as_coded", layers=2, activation="relu") < 1e-10
    assert residual("fashion_dense", layers=2) < 1e-10
    assert residual("fashion_dense", activation="relu") > 1e-2


@pytest.mark.unit
def test_keras_init_statistic_tells_keras_from_pytorch_defaults():
    from claims.measures import measure

    def init(check, **options):
        return measure({"statistic": "keras_init", "model": "fashion_dense", "check": check,
                        "options": {"hidden": 392, **options}})
    assert init("bias") == 0 and init("glorot") < 0.02
    # PyTorch's kaiming-uniform (a = sqrt(5)) and uniform biases
    assert init("bias", keras=False) > 0 and init("glorot", keras=False) > 0.1


# --- cats_dogs_gap: any image size the head admits -------------------------------------------

def _head_admits(s: int) -> bool:
    """Three blocks of conv3 valid + max pool 2 must leave at least one pixel."""
    for _ in range(3):
        s = (s - 2) // 2 if s - 2 >= 1 else 0
        if s < 1:
            return False
    return True


CATS_DOGS_MIN_SIZE = 22  # 22 -> 20 -> 10 -> 8 -> 4 -> 2 -> 1; 21 -> 19 -> 9 -> 7 -> 3 -> 1 -> 0


@pytest.mark.fast
def test_cats_dogs_head_minimum_is_exact():
    assert next(s for s in range(1, 101) if _head_admits(s)) == CATS_DOGS_MIN_SIZE
    for s in range(1, 40):
        if _head_admits(s):
            _meta("cats_dogs_gap", image_size=s)
        else:
            with pytest.raises(ValueError):
                _meta("cats_dogs_gap", image_size=s)


@pytest.mark.fast
@MODEL_SETTINGS
@given(s=st.integers(CATS_DOGS_MIN_SIZE, 256), n=st.integers(1, 3))
def test_cats_dogs_gap_output_shape_for_any_admissible_size(s, n):
    gap = _meta("cats_dogs_gap", image_size=s).eval()
    assert tuple(gap(torch.zeros(n, 3, s, s, device="meta")).shape) == (n, 1)
    # The true GAP back end is GlobalAveragePooling2D (no weights) + Dense(64 -> 1): 65.
    head = _meta("cats_dogs_head", image_size=s)
    assert _params(gap, trainable_only=True) - _params(head, trainable_only=True) == 65


@pytest.mark.fast
@pytest.mark.parametrize("s", [CATS_DOGS_MIN_SIZE, 37])
def test_cats_dogs_gap_real_forward_at_small_sizes(s):
    model = models.build("cats_dogs_gap", image_size=s).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, s, s))
    assert tuple(out.shape) == (3, 1)


# --- invalid options -------------------------------------------------------------------------

@pytest.mark.unit
def test_unknown_model_lists_valid_names():
    with pytest.raises(KeyError) as info:
        models.build("no_such_model")
    message = info.value.args[0]
    assert "no_such_model" in message
    for name in models.names():
        assert name in message


@pytest.mark.unit
def test_unknown_option_names_it_and_lists_valid_options():
    with pytest.raises(TypeError) as info:
        models.build("kmnist_gap", colour="blue")
    message = str(info.value)
    assert "colour" in message
    for option in models.entry("kmnist_gap").options():
        assert option in message


@pytest.mark.unit
@pytest.mark.parametrize(("name", "options", "words"), [
    ("kmnist_gap", {"dropout": 1.0}, "dropout"),
    ("kmnist_gap", {"dropout": -0.1}, "dropout"),
    ("fashion_dense", {"hidden": 0}, "hidden"),
    ("fashion_dense", {"layers": 3}, "layers"),
    ("fashion_dense", {"activation": "tanh"}, "activation"),
    ("fashion_dense_as_coded", {"activation": "tanh"}, "DENSE_ACTIVATION_FUNCTION"),
    ("lenet", {"dense": (1,)}, "dense"),
    ("lenet", {"dense": (0, 84)}, "dense"),
    ("lenet", {"l1_l2": (-1.0, 0.0)}, "l1_l2"),
    ("lenet", {"dropout": (0.5,)}, "dropout"),
    ("mnist_approach2", {"filters": (4, 8, 16, 16, 12)}, "filters"),
    ("mnist_approach2", {"pool_after": 9}, "pool_after"),
    ("mnist_approach1", {"filters": (32,)}, "filters"),
    ("cats_dogs_gap", {"image_size": 0}, "image_size"),
    ("kmnist_traditional", {"num_classes": 0}, "num_classes"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_invalid_values_raise_value_error(name, options, words):
    with pytest.raises(ValueError, match=words):
        _meta(name, **options)


DROPOUT_OPTIONS = [("kmnist_gap", "dropout"), ("kmnist_traditional", "dropout"),
                   ("fashion_dense", "dropout"), ("mnist_dense", "hidden_dropout"),
                   ("mnist_dense", "input_dropout"), ("mnist_approach1", "dropout"),
                   ("mnist_approach2", "dropout"), ("cats_dogs_dense_dropout", "dropout")]
BAD_RATES = st.one_of(st.floats(max_value=0.0, exclude_max=True, allow_nan=False),
                      st.floats(min_value=1.0, allow_nan=False), st.just(math.nan))


@pytest.mark.unit
@MODEL_SETTINGS
@given(where=st.sampled_from(DROPOUT_OPTIONS), rate=BAD_RATES)
def test_dropout_outside_unit_interval_is_rejected(where, rate):
    name, option = where
    with pytest.raises(ValueError, match=option):
        _meta(name, **{option: rate})


@pytest.mark.unit
@MODEL_SETTINGS
@given(where=st.sampled_from(DROPOUT_OPTIONS), rate=st.floats(0.0, 1.0, exclude_max=True))
def test_dropout_inside_unit_interval_is_accepted(where, rate):
    name, option = where
    _meta(name, **{option: rate})


@pytest.mark.fast
def test_mnist_approach2_admits_a_one_pixel_last_map():
    # 28 -conv-> 26 -pool-> 13, then six convs: 11 -> 9 -> 7 -> 5 -> 3 -> 1: GAP of a 1x1 map.
    model = models.build("mnist_approach2", filters=(4, 8, 16, 16, 16, 16, 10), pool_after=1)
    assert tuple(model(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)


# --- Keras defaults --------------------------------------------------------------------------

def _batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _biased(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None]


@pytest.mark.unit
@pytest.mark.parametrize("name", ["mnist_approach2", "cats_dogs_dense", "mnist_approach1"])
def test_keras_defaults_for_source_models(name):
    assert models.entry(name).keras is True
    torch.manual_seed(0)
    model = models.build(name)
    assert _batchnorms(model)
    for bn in _batchnorms(model):
        assert (bn.eps, bn.momentum) == (1e-3, 0.01)
    assert _biased(model)
    for layer in _biased(model):
        assert torch.count_nonzero(layer.bias) == 0
    explicit = models.build(name, keras=True)
    assert [(bn.eps, bn.momentum) for bn in _batchnorms(explicit)] == \
        [(1e-3, 0.01)] * len(_batchnorms(model))


@pytest.mark.unit
@pytest.mark.parametrize("name", ["mnist_approach2", "cats_dogs_dense", "mnist_approach1"])
def test_pytorch_defaults_with_keras_false(name):
    torch.manual_seed(0)
    model = models.build(name, keras=False)
    for bn in _batchnorms(model):
        assert (bn.eps, bn.momentum) == (1e-5, 0.1)
    assert any(torch.count_nonzero(layer.bias) > 0 for layer in _biased(model))


@pytest.mark.unit
def test_external_models_default_to_pytorch():
    """An external model (trained with PyTorch in its paper's stead) keeps PyTorch's init
    when built with no ``keras=``; a Keras source's model can still be asked for it."""
    assert models.entry("alexnet_paper").keras is False
    torch.manual_seed(0)
    for model in (models.build("alexnet_paper", num_classes=10), models.build("lenet", keras=False)):
        assert all(torch.count_nonzero(layer.bias) > 0 for layer in _biased(model))


# --- Keras-style summary ---------------------------------------------------------------------

@pytest.mark.fast
def test_summary_counts_running_statistics_as_non_trainable():
    summary = models.summarize(_meta("mnist_approach2"))
    assert (summary.total, summary.trainable, summary.non_trainable) == (5490, 5382, 108)
    # 4 + 8 + 16 + 16 + 10 = 54 BatchNorm channels, each with a running mean and variance
    bn_rows = [r for r in summary.rows if r.type == "BatchNormalization"]
    assert sum(r.non_trainable for r in bn_rows) == 108
    assert bn_rows[0].name == "batch_normalization" and bn_rows[1].name == "batch_normalization_1"
    assert (bn_rows[0].trainable, bn_rows[0].non_trainable) == (8, 8)
    text = summary.format()
    assert "Total params: 5,490" in text
    assert "Trainable params: 5,382" in text
    assert "Non-trainable params: 108" in text


@pytest.mark.fast
def test_summary_matches_real_device_build():
    meta = models.summarize(_meta("kmnist_gap"))
    cpu = models.summarize(models.build("kmnist_gap"))
    assert meta.rows == cpu.rows
    assert meta.rows[0].output_shape == (26, 26, 32) and meta.rows[0].params == 320


# --- probabilities, penalty ------------------------------------------------------------------

@pytest.mark.unit
def test_probabilities_softmax_rows_sum_to_one():
    torch.manual_seed(0)
    model = models.build("mnist_dense").eval()
    assert models.output_activation(model) == "softmax"
    with torch.no_grad():
        p = models.probabilities(model, torch.rand(2, 1, 28, 28))
    assert p.shape == (2, 10)
    assert torch.allclose(p.sum(dim=1), torch.ones(2), atol=1e-6)
    assert (p >= 0).all()


@pytest.mark.unit
def test_probabilities_sigmoid_in_open_unit_interval():
    torch.manual_seed(0)
    model = models.build("cats_dogs_gap").eval()
    assert models.output_activation(model) == "sigmoid"
    with torch.no_grad():
        p = models.probabilities(model, torch.rand(2, 3, 100, 100))
    assert p.shape == (2, 1)
    assert ((p > 0) & (p < 1)).all()


@pytest.mark.unit
@pytest.mark.parametrize(("a", "b"), [(1e-3, 2e-4), (0.0, 0.5), (0.01, 0.0)])
def test_lenet_penalty_by_hand(a, b):
    torch.manual_seed(0)
    model = models.build("lenet", l1_l2=(a, b))
    first, second, last = [m for m in model.modules() if isinstance(m, Dense)]
    assert last.regularizer is None
    w1, w2 = first.weight.detach(), second.weight.detach()
    expected = (a * w1.abs().sum() + b * w1.square().sum()
                + 1e-6 * (w2.abs().sum() + w2.square().sum()))
    assert torch.allclose(models.penalty(model), expected, rtol=1e-5, atol=1e-9)


@pytest.mark.unit
def test_lenet_without_regularizer_has_zero_penalty():
    assert float(models.penalty(models.build("lenet"))) == 0.0


# --- the post's activation that is never applied ---------------------------------------------

def _additivity_gap(model: nn.Module) -> float:
    """max |f(x1+x2) - f(0) - (f(x1) - f(0)) - (f(x2) - f(0))|: zero for an affine map."""
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(2, 1, 28, 28, generator=generator)
    x2 = torch.randn(2, 1, 28, 28, generator=generator)
    zero = torch.zeros_like(x1)
    model.eval()
    with torch.no_grad():
        f0 = model(zero)
        gap = (model(x1 + x2) - f0) - ((model(x1) - f0) + (model(x2) - f0))
    return float(gap.abs().max())


@pytest.mark.unit
@pytest.mark.parametrize("activation", fashion.ACTIVATION_CHOICES)
@pytest.mark.parametrize("layers", [1, 2])
def test_fashion_dense_as_coded_is_linear_whatever_the_activation(activation, layers):
    torch.manual_seed(0)
    model = models.build("fashion_dense_as_coded", hidden=8, layers=layers, activation=activation)
    assert _additivity_gap(model) < 1e-4


@pytest.mark.unit
def test_fashion_dense_with_relu_is_not_linear():
    torch.manual_seed(0)
    model = models.build("fashion_dense", hidden=8, activation="relu")
    assert _additivity_gap(model) > 1e-3


@pytest.mark.unit
@pytest.mark.parametrize(("padding", "channels", "first"), [
    ("valid", 1, True), ("valid", 3, False), ("same", 3, False),
    ("valid", 1, False), ("valid", 2, False), ("same", 2, False),  # input gradient as a forward convolution
])
def test_cpu_conv_kernel_gives_pytorchs_gradients(padding, channels, first):
    """models.kernels' convolution backward (the trainer's, on the CPU) against PyTorch's."""
    from models import kernels
    from models.layers import Conv2D

    torch.manual_seed(0)
    conv = Conv2D(channels, 4, 3, padding=padding, activation="relu")
    x = torch.randn(5, conv.in_channels, 9, 8, requires_grad=not first)
    g = torch.randn_like(conv(x))

    def grads(on: bool) -> list[torch.Tensor]:
        conv.zero_grad()
        if x.grad is not None:
            x.grad = None
        with kernels.enabled(on):
            (conv(x) * g).sum().backward()
        return [conv.weight.grad, conv.bias.grad] + ([] if first else [x.grad])
    ours, theirs = grads(True), grads(False)
    assert kernels.active(x) is False  # only inside the block
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # the order of float sums differs


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9)),
       levels=st.integers(1, 4), seed=st.integers(0, 2**16), infinite=st.booleans())
def test_cpu_max_pool_kernel_gives_pytorchs_values_indices_and_gradient(shape, levels, seed, infinite):
    """models.kernels' 2x2 max pooling against PyTorch's: odd sizes floored, ties (a few
    levels of value, as BatchNorm makes of ReLU's zeros) resolved to the first maximum."""
    import torch.nn.functional as F

    from models import kernels

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, levels, shape, generator=g).float()
    if infinite:
        x.view(-1)[::3] = float("-inf")
        x.view(-1)[1::5] = float("inf")
    ours = kernels.MaxPool2x2.apply(x)
    theirs = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(theirs[0].shape, generator=g)
    (kernels.max_pool2d(a) * upstream).sum().backward()
    (F.max_pool2d(b, 2) * upstream).sum().backward()
    assert torch.equal(a.grad, b.grad)


@pytest.mark.unit
def test_keras_max_pooling_uses_the_cpu_kernel_only_where_it_applies(monkeypatch):
    """MaxPooling2D takes models.kernels' pooling inside ``kernels.enabled()`` for a 2x2 pool
    of float images, and PyTorch's otherwise."""
    from models import kernels
    from models.layers import MaxPooling2D

    calls = []
    monkeypatch.setattr(kernels, "max_pool2d", lambda x: calls.append(x.shape) or x[..., ::2, ::2])
    x = torch.randn(2, 3, 6, 6)
    MaxPooling2D(2)(x)
    assert calls == []
    ceil = MaxPooling2D(2)
    ceil.ceil_mode = True
    with kernels.enabled():
        MaxPooling2D(2)(x)
        MaxPooling2D(3)(x)
        ceil(x)
        MaxPooling2D(2)(x.double().to("meta"))
    assert calls == [x.shape]


@pytest.mark.unit
def test_cpu_max_pool_kernel_gives_pytorchs_error_for_an_image_smaller_than_a_window():
    from models import kernels

    with pytest.raises(RuntimeError, match="too small"):
        kernels.max_pool2d(torch.randn(2, 3, 1, 5))  # not an empty result


@pytest.mark.fast
def test_output_shapes_by_arithmetic_equal_the_meta_trace():
    """Builders size their Dense layers by arithmetic (models._util), not by a meta-device
    pass that costs a process seconds of imports: the arithmetic must agree with the trace."""
    from models import _util

    worked_out = 0
    for name in models.names():
        model = _meta(name)
        try:
            ours = _util._shape(model, model.input_shape)
        except _util._Unknown:
            continue
        with torch.no_grad():
            traced = tuple(model.eval()(torch.zeros(1, *model.input_shape, device="meta")).shape[1:])
        assert ours == traced, name
        worked_out += 1
    assert worked_out >= 12


@pytest.mark.fast
def test_the_largest_output_by_arithmetic_equals_the_meta_trace():
    """What decides whether a CPU run keeps freed memory (training.memory), worked out
    without tracing; the per-pixel Fashion network's is its 28 x 28 x 392 hidden tensor."""
    from models import _util

    for name in models.names():
        model = _meta(name)
        sizes = [math.prod(model.input_shape)]
        hooks = [m.register_forward_hook(lambda _m, _i, out, sizes=sizes: sizes.append(out[0].numel()))
                 for m in model.modules() if not list(m.children())]
        with torch.no_grad():
            model.eval()(torch.zeros(1, *model.input_shape, device="meta"))
        for hook in hooks:
            hook.remove()
        assert _util.largest_output(model, model.input_shape) == max(sizes), name
    assert _util.largest_output(_meta("fashion_dense", hidden=392), (1, 28, 28)) == 28 * 28 * 392


@pytest.mark.fast
@pytest.mark.parametrize("name", ["mnist_approach2", "mnist_approach3"])
def test_mnist_gap_ablations_drop_batchnorm_or_add_dropouts(name):
    # without BatchNorm: the same layers less the BatchNormalizations, each map's gamma and beta gone
    plain, ablated = _meta(name), _meta(name, batchnorm=False)
    assert not _batchnorms(ablated) and _batchnorms(plain)
    assert [type(m) for m in ablated if not isinstance(m, nn.modules.batchnorm._BatchNorm)] == [
        type(m) for m in plain if not isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert _params(plain) - _params(ablated) == 2 * sum(m.num_features for m in _batchnorms(plain))
    assert tuple(ablated(torch.zeros(2, 1, 28, 28, device="meta")).shape) == (2, 10)


@pytest.mark.fast
def test_mnist_approach3_with_dropouts_back_places_them_as_approach2_does():
    def rates(model):
        return [(i, m.p) for i, m in enumerate(model) if isinstance(m, nn.Dropout)]
    a2, a3 = _meta("mnist_approach2"), _meta("mnist_approach3", dropout=0.1)
    assert rates(a3) == rates(a2) == [(7, 0.1), (10, 0.1), (13, 0.1)]
    assert not rates(_meta("mnist_approach3"))


@pytest.mark.fast
def test_mnist_approach2_dense_head_replaces_gap_with_flatten_and_dense():
    gap, dense = _meta("mnist_approach2"), _meta("mnist_approach2", dense_head=True)
    # the last block's maps are 6 x 6 x 10: Dense(10) on 360 inputs has 3,610 parameters
    assert _params(dense) - _params(gap) == (6 * 6 * 10 + 1) * 10
    assert isinstance(dense[-1], Dense) and dense[-1].activation == "softmax"
    assert tuple(dense(torch.zeros(2, 1, 28, 28, device="meta")).shape) == (2, 10)


def test_import_models_leaves_torchvision_unimported():
    """torchvision costs seconds to import; only the AlexNet and VGG-16 builders need it.
    A fresh interpreter, so not marked fast (its start-up is the cost being guarded)."""
    import subprocess
    import sys

    code = ("import sys, models; assert 'torchvision' not in sys.modules, 'by import models'; "
            "models.build('mnist_approach3'); assert 'torchvision' not in sys.modules, 'by a build'; "
            "models.build('alexnet'); assert 'torchvision' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.fast
def test_the_papers_alexnet_takes_only_227_to_230_pixels_and_counts_the_same_on_each() -> None:
    """The input size of the paper's network: the 9,216-input first fully connected layer
    admits 227 to 230 pixels alone (224 ends at 5 x 5 maps), and the multiply-accumulates are
    the same on each."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):  # no 60 M weights to initialise
        model = models.build("alexnet_paper").eval()

    def macs(size: int) -> int:
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, size, size, device="meta"))
        return counter.get_total_flops() // 2
    counts = {size: macs(size) for size in range(227, 231)}
    assert len(set(counts.values())) == 1 and 7.2e8 < counts[227] < 7.3e8
    for size in (224, 226):
        with pytest.raises(RuntimeError):
            macs(size)
    assert macs(231) != counts[227]

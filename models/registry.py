"""The model registry: ``build(name, **options)`` and ``names()``, no if-chains.

Each builder module registers its functions with ``@register_model(...)``; the entry
records what the summary and the tests need to know without building the model (its
source, its input shape, whether Keras defaults apply).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from models.layers import keras_init_

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    source: str
    input_shape: tuple[int, int, int]  # (C, H, W) the source feeds it
    keras: bool  # trained with Keras in its source: Keras init and BatchNorm by default
    doc: str

    def options(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.builder).parameters)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(*, source: str, input_shape: tuple[int, int, int], keras: bool = True,
                   name: str | None = None) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        for param in inspect.signature(fn).parameters.values():
            if param.kind is not param.KEYWORD_ONLY:
                raise TypeError(f"builder {key!r}: option {param.name!r} must be keyword-only")
        _REGISTRY[key] = ModelEntry(key, fn, source, input_shape, keras, _summary(inspect.getdoc(fn) or ""))
        return fn

    return wrap


def _summary(doc: str) -> str:
    """A docstring's first sentence as one line of plain text (``models`` lists it): its first
    line alone was cut mid-sentence where the sentence ran on."""
    paragraph = " ".join(doc.split("\n\n")[0].split()).replace("``", "")
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[:end + 1]


def names() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(names())}") from None


def build(name: str, *, keras: bool | None = None, **options) -> nn.Module:
    """Build a registered model.

    ``keras`` (default: the source's framework) applies Keras' defaults: glorot-uniform
    kernels with zero biases, BatchNorm momentum 0.01 (Keras 0.99) and epsilon 1e-3.
    With ``keras=False`` the model keeps PyTorch's defaults.
    """
    spec = entry(name)
    valid = spec.options()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(f"{k}={p.default!r}" for k, p in valid.items()) or "none"
        raise TypeError(f"model {name!r} has no option {', '.join(unknown)}; valid options: {listed}")
    model = spec.builder(**options)
    use_keras = spec.keras if keras is None else keras
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eps, module.momentum = (1e-3, 0.01) if use_keras else (1e-5, 0.1)
    if use_keras:
        keras_init_(model)
    model.input_shape = getattr(model, "input_shape", spec.input_shape)
    model.model_name = name
    return model


def require(condition: bool, message: str) -> None:
    """Raise a ValueError for an impossible option; builders call this to say why."""
    if not condition:
        raise ValueError(message)

"""What a model costs, counted rather than timed: forward FLOPs (torch.utils.flop_counter),
the memory of its layers' outputs, and the peak memory of one Adam training step
(torch's MemTracker). All three run on the meta device, so they take milliseconds, need no
data and give the same figures on every machine; each is computed once per process for
models alike in everything the count depends on (``fingerprint``). Time is the benchmarks' business
(tests/test_benchmarks.py); these are the quantities the sources mean by "computational
requirements" when they count parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.summary import count


def fingerprint(model: nn.Module) -> tuple:
    """What the counted costs of ``model`` depend on, and nothing else: every module's type,
    settings and hooks, the shape, dtype and trainability of every parameter and buffer, and
    the input shape. Not the values and not the device: the counts are made on the meta
    device. Two models with the same fingerprint have the same counted costs."""
    modules = tuple((name, type(m).__module__, type(m).__qualname__,
                     tuple(sorted((k, repr(v)) for k, v in vars(m).items() if not k.startswith("_"))),
                     len(m._forward_pre_hooks), len(m._forward_hooks))
                    for name, m in model.named_modules())
    tensors = tuple((name, tuple(t.shape), t.dtype, t.requires_grad)
                    for name, t in (*model.named_parameters(), *model.named_buffers()))
    return modules, tensors, tuple(getattr(model, "input_shape", ()))


#: Counted costs already computed in this process, by (what, fingerprint, batch): the claims,
#: the report and the summary ask for the same models' costs many times.
_COUNTED: dict[tuple, object] = {}


def _memo(what: str, model: nn.Module, batch: int | None, compute: Callable[[], object]):
    key = (what, fingerprint(model), batch)
    if key not in _COUNTED:
        _COUNTED[key] = compute()
    return _COUNTED[key]


def _on(model: nn.Module, device: torch.device | str) -> nn.Module:
    """A copy of ``model`` on ``device`` (the meta device keeps shapes and drops values)."""
    return copy.deepcopy(model).to(device)


def flops_per_image(model: nn.Module) -> int:
    """Forward FLOPs of one image (a multiply-add counts 2, as flop_counter does)."""
    return _memo("flops", model, None, lambda: _flops_per_image(model))


def _flops_per_image(model: nn.Module) -> int:
    meta = _on(model, "meta").eval()
    with FlopCounterMode(display=False) as counter:
        meta(torch.zeros(1, *model.input_shape, device="meta"))
    return counter.get_total_flops()


def activation_bytes_per_image(model: nn.Module) -> int:
    """Bytes of every leaf layer's output for one image in training mode: what the forward
    pass produces (autograd keeps most of it for the backward pass)."""
    return _memo("activations", model, None, lambda: _activation_bytes_per_image(model))


def _activation_bytes_per_image(model: nn.Module) -> int:
    meta = _on(model, "meta").train()
    total = 0

    def hook(_module, _inputs, output) -> None:
        nonlocal total
        total += output[0].numel() * output.element_size()

    leaves = [m for m in meta.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(hook) for m in leaves]
    try:  # a batch of 2: BatchNorm refuses to train on one image
        meta(torch.zeros(2, *model.input_shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return total


@dataclass
class TrainingStep:
    """One training step on a fixed random batch: forward, loss, backward, Adam."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor

    def __call__(self) -> None:
        out = self.model(self.x)
        if out.shape[-1] == 1:  # one sigmoid unit (Cats vs Dogs)
            loss = F.binary_cross_entropy_with_logits(out.squeeze(-1), self.y.float())
        else:  # (N, K), or more axes for the per-pixel Dense models
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), self.y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def training_step(model: nn.Module, batch: int, device: torch.device | str) -> TrainingStep:
    """A TrainingStep of ``model`` moved to ``device``, labels shaped like its output."""
    model = model.to(device).train()
    x = torch.randn(batch, *model.input_shape, device=device)
    with torch.no_grad():
        shape = model(x[:2]).shape[1:]
    y = torch.randint(0, shape[-1], (batch, *shape[:-1]), device=device)
    return TrainingStep(model, torch.optim.Adam(model.parameters()), x, y)


def forward_step(model: nn.Module, batch: int, device: torch.device | str) -> Callable[[], None]:
    """Inference on one batch of random images."""
    model = model.to(device).eval()
    x = torch.randn(batch, *model.input_shape, device=device)

    def step() -> None:
        with torch.no_grad():
            model(x)
    return step


@dataclass(frozen=True)
class PeakMemory:
    """Bytes live at the peak of one training step, by what holds them (MemTracker's classes)."""

    total: int
    parts: dict[str, int]


def peak_training_memory(model: nn.Module, batch: int) -> PeakMemory:
    """Peak tensor memory of the first Adam step at ``batch`` (when Adam's state appears),
    counted on the meta device: tensor bytes, without an allocator's rounding or caching, and
    without Adam's step counts."""
    peak = _memo("peak", model, batch, lambda: _peak_training_memory(model, batch))
    return PeakMemory(peak.total, dict(peak.parts))  # the caller's own copy of the parts


def _peak_training_memory(model: nn.Module, batch: int) -> PeakMemory:
    from torch.distributed._tools.mem_tracker import MemTracker

    step = training_step(_on(model, "meta"), batch, "meta")
    tracker = MemTracker()
    tracker.track_external(step.model, step.optimizer)
    with tracker:
        step()
    # Adam keeps its step counts on the CPU even for meta parameters: 4 bytes per tensor, left out
    peak = tracker.get_tracker_snapshot("peak")[torch.device("meta")]
    parts = {getattr(kind, "name", str(kind)).lower(): size for kind, size in peak.items()}
    total = parts.pop("total")
    return PeakMemory(total, {k: v for k, v in parts.items() if v})


@dataclass(frozen=True)
class Cost:
    """A model's counted costs at one batch size."""

    trainable: int
    flops_per_image: int
    activation_bytes_per_image: int
    batch: int
    peak_training: PeakMemory

    def lines(self) -> list[str]:
        """The summary's closing lines, in Keras' 'Name: value' manner."""
        parts = ", ".join(f"{k} {size(v)}" for k, v in self.peak_training.parts.items())
        return [f"Forward FLOPs per image: {self.flops_per_image:,}",
                f"Layer outputs per image: {size(self.activation_bytes_per_image)}",
                f"Peak memory of a training step (Adam, batch {self.batch}): "
                f"{size(self.peak_training.total)} ({parts})"]


def size(nbytes: int) -> str:
    """Bytes in binary units: 24 B, 98.3 KiB, 6.46 MiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            digits = ".0f" if nbytes >= 1000 * scale else ".3g"
            return f"{nbytes / scale:,{digits}} {unit}"
    return f"{nbytes} B"


def cost(model: nn.Module, batch: int) -> Cost:
    return Cost(count(model)[0], flops_per_image(model), activation_bytes_per_image(model), batch,
                peak_training_memory(model, batch))

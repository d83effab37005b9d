"""S copies of one architecture as stacked tensors: the trainer's seeds (and grid points).

Why stacked: one tensor per parameter with a leading seed axis is what ``torch.func.vmap``
runs on CUDA, what a checkpoint saves, and what EarlyStopping's best weights select from, per
seed. On the CPU each seed also gets tensors of its own that alias its slice
(``Stack.seed_tensors``), so that seeds can train in threads side by side.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from models.layers import Dropout, regularized
from training.keras import _select


def _state(factory: Any) -> dict[str, Any]:
    return {"init": False, "default_factory": factory, "repr": False, "compare": False}


def _dropouts(module: nn.Module) -> dict[str, Dropout]:
    return {name: m for name, m in module.named_modules() if isinstance(m, Dropout)}


@dataclass(frozen=True)
class Draws:
    """The uniform draws one Dropout layer takes in one step of one copy: its input's
    ``size``, and the ``order`` of the input's axes in memory, outermost first.

    Why the order: the draws are made in it, so that they lie in memory as the input does.
    The per-pixel Dense networks' hidden tensors are channels-last; draws in the other order
    would make Dropout read them across the grain in the forward and the backward pass. For
    an input in the usual order the draws are those of ``torch.rand(size)``.
    """

    size: torch.Size
    order: tuple[int, ...]

    @classmethod
    def like(cls, x: Tensor) -> Draws:
        return cls(x.shape, tuple(sorted(range(x.dim()), key=lambda d: (-x.stride(d), d))))

    @property
    def drawn(self) -> tuple[int, ...]:
        """The shape the draws are made in."""
        return tuple(self.size[d] for d in self.order)

    def view(self, drawn: Tensor) -> Tensor:
        """Draws of shape (..., *``drawn``) seen as (..., *``size``)."""
        lead = drawn.dim() - len(self.order)
        return drawn.permute(*range(lead), *(lead + self.order.index(d) for d in range(len(self.order))))

    def draw(self, generator: torch.Generator, device: torch.device) -> Tensor:
        return self.view(torch.rand(self.drawn, generator=generator, device=device))


@dataclass
class Stack:
    """S copies of one architecture as stacked tensors, plus a stateless copy to call.

    The copies (seeds, or grid points times seeds) share one architecture; they may differ
    in their Keras ``l1_l2`` penalties, which act in the loss (``penalties``: per regularized
    kernel, the (S,) l1 and l2 coefficients), and in their Dropout rates (``rates``: per
    Dropout layer, the (S,) rates; empty when every copy has the same ones).
    """

    base: nn.Module
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    penalties: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    rates: dict[str, Tensor] = field(default_factory=dict)
    # per-process state, not part of the stack's value (``dataclasses.replace`` starts it anew)
    _seeds: list[tuple[dict[str, Tensor], dict[str, Tensor]]] = field(**_state(list))
    _lock: threading.Lock = field(**_state(threading.Lock))
    _local: threading.local = field(**_state(threading.local))
    _dropout_draws: dict[tuple[int, ...], dict[str, Draws]] = field(**_state(dict))

    @classmethod
    def of(cls, modules: list[nn.Module], device: torch.device) -> Stack:
        penalties: dict[str, tuple[Tensor, Tensor]] = {}
        for i, module in enumerate(modules):
            for name, l1, l2 in regularized(module):
                pair = penalties.setdefault(name, (torch.zeros(len(modules), device=device),
                                                   torch.zeros(len(modules), device=device)))
                pair[0][i], pair[1][i] = l1, l2
        # in float64: each copy's Dropout scale is then the one its network alone computes
        # from its Python rate (``models.layers.Dropout``)
        rates = {name: torch.tensor([m.get_submodule(name).p for m in modules], dtype=torch.float64,
                                    device=device)
                 for name in _dropouts(modules[0])}
        rates = {name: r for name, r in rates.items() if bool((r != r[0]).any())}
        params, buffers = stack_module_state([m.to(device) for m in modules])
        base = modules[0].to("meta")
        return cls(base, {k: v.detach().requires_grad_() for k, v in params.items()},
                   {k: v.detach() for k, v in buffers.items()}, penalties, rates)

    @property
    def seeds(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def state(self) -> dict[str, Tensor]:
        return {**{k: v.detach().clone() for k, v in self.params.items()},
                **{k: v.clone() for k, v in self.buffers.items()}}

    def load(self, state: dict[str, Tensor], which: Tensor | None = None) -> None:
        """Copy ``state`` in, for every seed or only where ``which`` (S,) is true."""
        if which is not None:
            state = _select(which, state, self.state())
        with torch.no_grad():
            for k, v in (*self.params.items(), *self.buffers.items()):
                v.copy_(state[k])

    def seed_tensors(self, seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Seed ``seed``'s parameters and buffers as tensors that alias its slices of the stack
        but are autograd leaves of their own, each with its own version counter (``.data``).

        Why: a seed's optimizer step writes its parameters in place while another seed,
        in another thread, holds a graph over its own; slices of one tensor share a version
        counter, so that write would invalidate the other seed's backward pass. ``load``
        copies into the same storage, so these stay current."""
        with self._lock:  # seeds' threads ask at once; all must get the same tensors
            if not self._seeds:
                self._seeds = [({k: v.data[i].data.requires_grad_() for k, v in self.params.items()},
                                {k: v.data[i].data for k, v in self.buffers.items()})
                               for i in range(self.seeds)]
        return self._seeds[seed]

    def module(self, seed: int) -> nn.Module:
        """One seed as an ordinary module on the CPU (for saving, pruning, inspecting)."""
        module = copy.deepcopy(self.base).to_empty(device="cpu")
        module.load_state_dict({k: v[seed].detach().cpu() for k, v in self.state().items()})
        return module

    # -- calling one copy ---------------------------------------------------------------------
    def call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], rates: dict[str, Tensor],
             noise: dict[str, Tensor], x: Tensor) -> Tensor:
        """One copy's logits from its tensors; its Dropout rates (where the copies differ in
        them) and its Dropout draws are set on this thread's module for this call only."""
        module, dropouts = self._module()
        for name, rate in rates.items():
            dropouts[name].rates = rate
        for name, draws in noise.items():
            dropouts[name].noise = draws
        try:
            return functional_call(module, (params, buffers), (x,))
        finally:
            for layer in dropouts.values():
                layer.rates = layer.noise = None

    def seed_logits(self, seed: int, x: Tensor, noise: dict[str, Tensor] | None = None) -> Tensor:
        """Seed ``seed``'s logits (B, K) of ``x``, on its own tensors (``seed_tensors``)."""
        params, buffers = self.seed_tensors(seed)
        return self.call(params, buffers, {k: v[seed] for k, v in self.rates.items()}, noise or {}, x)

    def _module(self) -> tuple[nn.Module, dict[str, Dropout]]:
        """This thread's stateless module and its Dropout layers, in ``base``'s mode (train or
        eval): ``functional_call`` swaps a module's tensors, so two threads cannot share one."""
        local = self._local
        if getattr(local, "base", None) is not self.base:
            main = threading.current_thread() is threading.main_thread()
            local.base, local.module = self.base, self.base if main else copy.deepcopy(self.base)
            local.dropouts = _dropouts(local.module)
        if local.module.training != self.base.training:
            local.module.train(self.base.training)
        return local.module, local.dropouts

    def dropout_draws(self, shape: tuple[int, ...]) -> dict[str, Draws]:
        """Each Dropout layer's draws for one copy's inputs of ``shape`` (one pass on the meta
        device, once per shape)."""
        with self._lock:
            if shape not in self._dropout_draws:
                seen: dict[str, Draws] = {}
                hooks = [layer.register_forward_pre_hook(
                             lambda _, args, name=name: seen.__setitem__(name, Draws.like(args[0])))
                         for name, layer in _dropouts(self.base).items()]
                try:
                    with torch.no_grad():
                        self.base(torch.empty(shape, device="meta"))
                finally:
                    for hook in hooks:
                        hook.remove()
                self._dropout_draws[shape] = seen
        return self._dropout_draws[shape]

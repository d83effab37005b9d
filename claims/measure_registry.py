"""The registry of statistics (``STATISTICS``, ``@statistic``), ``measure``, which runs the
one a claim's ``measure`` table names, the errors a statistic raises, and the models it
reads: built on the meta device (no memory, no compute) and summarised, once per process.

A statistic is registered here by the module that defines it (``claims.measures``,
``claims.expressions``, ``claims.measures_weights``, ``claims.measures_data``);
``claims.measures`` imports them all, so a caller imports that.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import torch
from torch import nn

import models
from models.summary import Summary, summarize


class Pending(Exception):
    """The measurement needs something this run does not have (training results, data).
    ``waits_for`` names it for the report's summary: 'train RECIPE', 'retrain RECIPE' (a capped
    run to replace), 'data DATASET' or 'benchmarks'."""

    def __init__(self, message: str, waits_for: str = "") -> None:
        super().__init__(message)
        self.waits_for = waits_for


class MeasureError(ValueError):
    """The measure table is wrong: unknown statistic, missing key, bad expression."""


class Unmeasurable(Exception):
    """A figure about work outside this suite's reach; the message says whose it is."""


Statistic = Callable[[dict[str, Any]], Any]
STATISTICS: dict[str, Statistic] = {}


def statistic(name: str) -> Callable[[Statistic], Statistic]:
    def wrap(fn: Statistic) -> Statistic:
        STATISTICS[name] = fn
        return fn
    return wrap


def measure(spec: dict[str, Any]) -> Any:
    name = spec.get("statistic")
    if name not in STATISTICS:
        raise MeasureError(f"unknown statistic {name!r}; valid: {', '.join(sorted(STATISTICS))}")
    missing = [key for key in _REQUIRED.get(name, ()) if key not in spec]
    if missing:
        raise MeasureError(f"statistic {name!r} needs the key(s) {', '.join(missing)}")
    try:
        return STATISTICS[name](spec)
    except KeyError as error:  # an unknown model, dataset, recipe or key below the statistic
        raise MeasureError(f"statistic {name!r}: {error.args[0] if error.args else error}") from None
    except (TypeError, IndexError, ArithmeticError, RecursionError) as error:
        raise MeasureError(f"statistic {name!r}: {error}") from None


#: Keys a statistic cannot do without, checked before it runs (so that an unknown model named in
#: the table is not mistaken for a missing key).
_REQUIRED = {"params": ("model",), "layer_params": ("model",), "output_shape": ("model",),
             "layer_count": ("model",), "expression": ("expr",), "training": ("recipe", "metric"),
             "recipe": ("recipe", "field"), "recipe_data": ("recipe", "field"),
             "dataset": ("dataset", "fact")}


def _frozen(value: Any) -> Any:
    """TOML gives lists and dicts; builders and caches want tuples."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def _options(spec: dict[str, Any]) -> tuple:
    return _frozen(spec.get("options", {}))


@cache
def _meta_model(name: str, options: tuple) -> nn.Module:
    with torch.device("meta"):
        return models.build(name, **dict(options))


@cache
def _summary(name: str, options: tuple) -> Summary:
    return summarize(_meta_model(name, options))


def _spec_summary(spec: dict[str, Any]) -> Summary:
    return _summary(spec["model"], _options(spec))


def _row(spec: dict[str, Any]):
    summary = _spec_summary(spec)
    if "row" in spec:
        row, count = spec["row"], len(summary.rows)
        if not isinstance(row, int) or isinstance(row, bool) or not -count <= row < count:
            raise MeasureError(f"row {row!r} is not a row of {spec['model']!r}, which has "
                               f"{len(summary.rows)} rows (0 to {len(summary.rows) - 1})")
        return summary.rows[row]
    return summary.layer(spec["layer"])

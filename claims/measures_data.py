"""Statistics of what lies beyond the model: facts of a dataset on disk, a training run's
result file, a recipe as the run used it or as the source's code sets it, the trainer's
input preparation, and figures about work outside this suite's reach.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

from claims.measure_registry import MeasureError, Pending, Unmeasurable, statistic


@statistic("dataset")
def dataset(spec: dict[str, Any]) -> Any:
    """A ``fact`` about a ``dataset`` (size, split_sizes, image_shape, classes, ...), measured
    on the files under the data root; pending while they are absent or damaged."""
    from training import datasets

    name = spec["dataset"]
    try:
        facts = datasets.facts(name)
    except datasets.UnknownDataset as error:
        raise MeasureError(str(error)) from None
    except datasets.DataMissing as error:
        raise Pending(f"needs the {name} dataset: {error}", f"data {name}") from None
    except datasets.DatasetError as error:  # a wrong digest, a malformed file
        raise Pending(f"needs an intact {name} dataset: {error}", f"data {name}") from None
    if spec["fact"] not in facts:
        raise MeasureError(f"dataset: unknown fact {spec['fact']!r}; {name} has {', '.join(facts)}")
    return facts[spec["fact"]]


def _run_wanted(why: Exception) -> str:
    """'train RECIPE' for a run not made yet; 'retrain RECIPE' for one made capped or on a
    subset, which ``claims train`` replaces only when asked (--replace); 'repair RECIPE' for a
    damaged file."""
    from training import metrics

    kind = {metrics.CappedRun: "retrain", metrics.DamagedRun: "repair"}.get(type(why), "train")
    return f"{kind} {why.recipe}"


@statistic("training")
def training(spec: dict[str, Any]) -> Any:
    """A statistic of a training run of ``recipe`` (accuracy, loss, epochs, a comparison),
    read from its result file under ``results/``: only a run that happened gives a verdict."""
    from training import metrics

    try:
        return metrics.compute(spec)
    except metrics.WantsRun as why:
        raise Pending(str(why), _run_wanted(why)) from None


@statistic("recipe")
def recipe(spec: dict[str, Any]) -> Any:
    """A hyper-parameter the run actually used, read from its result file's recipe."""
    from training import metrics

    try:
        data = metrics.loader(allow_capped=True)(spec["recipe"])
    except metrics.WantsRun as why:
        raise Pending(str(why), _run_wanted(why)) from None
    table = data["recipe_table"]
    field = spec["field"]
    from training.recipes import DOCUMENTATION_KEYS

    if field in DOCUMENTATION_KEYS:
        raise MeasureError(f"recipe field {field!r} is kept for documentation and no trainer code reads it: "
                           "check it as the code sets it with statistic 'recipe_data'")
    head = field.split(".")[0]
    if head not in table and head not in table.get("extra", {}):
        raise MeasureError(f"recipe {spec['recipe']!r} has no field {field!r}")
    return _field(table if head in table else table["extra"], field, spec["recipe"])


def _field(table: dict[str, Any], field: str, name: str) -> Any:
    """``field`` of a recipe table; a dotted field reads into its tables (``options.hidden``,
    ``grid.dropout.product``)."""
    value: Any = table
    for key in field.split("."):
        if not isinstance(value, dict) or key not in value:
            raise MeasureError(f"recipe {name!r} has no field {field!r}")
        value = value[key]
    return value


def _recipes() -> dict[str, dict[str, Any]]:
    from claims.registry import recipes

    return recipes()


@statistic("recipe_data")
def recipe_data(spec: dict[str, Any]) -> Any:
    """A hyper-parameter as the source's code sets it, from the registry's recipe table;
    lets the source's prose be checked against its own code."""
    table = _recipes()
    if spec["recipe"] not in table:
        raise MeasureError(f"unknown recipe {spec['recipe']!r}; recipes: {', '.join(sorted(table))}")
    return _field(table[spec["recipe"]], spec["field"], spec["recipe"])


@statistic("external")
def external(spec: dict[str, Any]) -> Any:
    """A figure about work outside this suite's reach (hardware, training days)."""
    raise Unmeasurable(spec["why"])


@statistic("normalized_range")
def normalized_range(spec: dict[str, Any]) -> list[float]:
    """[lowest, highest] value the trainer's input normalization (the sources' ``x / 255``,
    ``training.run``) gives the stored uint8 pixels 0 and 255: the range the network sees."""
    import numpy as np

    from training.run import _images

    pixels = np.array([[[0, 255]]], dtype=np.uint8)  # one 1x2 greyscale image: darkest, brightest
    x = _images(pixels, (1, 2), torch.device("cpu"))
    return [float(x.min()), float(x.max())]


@cache
def _prepared_shape(dataset: str, split: str, array: str) -> list[int]:
    import numpy as np

    from training import datasets
    from training.run import _images

    data = datasets.load(dataset)
    images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
    if array == "images":  # what the trainer feeds: x / 255 with a channel axis, shown channels-last
        # the trainer's transform maps each image alone: one image gives the shape of all
        _, c, h, w = _images(images[:1], tuple(images.shape[1:3]), torch.device("cpu")).shape
        return [len(images), h, w, c]
    classes = np.unique(data.test_labels).shape[0]  # num_classes = np.unique(y_test).shape[0]
    prepared = {"labels": labels,
                "labels_expanded": np.expand_dims(labels, axis=1),
                "one_hot": np.eye(classes, dtype=np.float32)[labels]}  # keras.utils.to_categorical
    if array not in prepared:
        raise MeasureError(f"prepared_shape: array must be images, {', '.join(prepared)}; got {array!r}")
    return list(prepared[array].shape)


@statistic("prepared_shape")
def prepared_shape(spec: dict[str, Any]) -> list[int]:
    """The shape (as numpy prints it, channels-last) of a ``split`` (train or test) of
    ``dataset`` after the source's preparation, computed on the files: ``images``, the arrays
    the trainer feeds (``training.run``: x / 255 with a channel axis, as the code's
    ``np.expand_dims(x / 255, axis=3)``); ``labels``; ``labels_expanded``
    (``np.expand_dims(y, axis=1)``); ``one_hot`` (``keras.utils.to_categorical`` with the
    classes counted in the test labels, as the code counts them)."""
    from training import datasets

    try:
        return _prepared_shape(spec["dataset"], spec["split"], spec["array"])
    except datasets.DataMissing as error:
        raise Pending(f"needs the {spec['dataset']} dataset: {error}", f"data {spec['dataset']}") from None
    except datasets.DatasetError as error:
        raise Pending(f"needs an intact {spec['dataset']} dataset: {error}",
                      f"data {spec['dataset']}") from None

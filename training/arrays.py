"""A dataset in memory (``Arrays``: plain numpy, uint8 images, int64 labels, the class names)
and what the claims and the result files say of one: its facts (sizes, shapes, classes) and
its description (digest and split sizes). The trainer decides on dtype, scaling and device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.checksums import arrays_digest


@dataclass(frozen=True)
class Arrays:
    """A dataset in memory: uint8 images (N, H, W) or (N, H, W, 3), int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    val_images: np.ndarray | None = None  # only where the source splits off a validation set
    val_labels: np.ndarray | None = None

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The splits present, in order train, val, test."""
        out = {"train": (self.train_images, self.train_labels)}
        if self.val_images is not None and self.val_labels is not None:
            out["val"] = (self.val_images, self.val_labels)
        out["test"] = (self.test_images, self.test_labels)
        return out


def split_facts(sizes: dict[str, int], image_shape: tuple[int, ...],
                classes: tuple[str, ...]) -> dict[str, Any]:
    """The facts of a dataset of these split sizes, image shape and classes (see ``facts_of``)."""
    total = sum(sizes.values())
    out: dict[str, Any] = {
        "size": total,
        "split_sizes": list(sizes.values()),
        "split_percent": [round(100 * n / total) for n in sizes.values()],
        "classes": len(classes),
        "class_names": list(classes),
        # channels-last with the channel axis always present, as a Keras model's input_shape
        "image_shape": list(image_shape) if len(image_shape) == 3 else [*image_shape, 1],
    }
    for split, n in sizes.items():
        out[f"{split}_size"] = n
        out[f"{split}_images_shape"] = [n, *image_shape]  # as x_train.shape prints
    return out


def facts_of(arrays: Arrays) -> dict[str, Any]:
    """Facts of loaded arrays: size, split_sizes, split_percent, classes, image_shape,
    {train,val,test}_size and {train,val,test}_images_shape."""
    splits = arrays.splits()
    sizes = {split: len(labels) for split, (_images, labels) in splits.items()}
    return split_facts(sizes, tuple(arrays.train_images.shape[1:]), arrays.classes)


def describe(arrays: Any) -> dict[str, Any]:
    """A dataset as a result file's provenance records it: the arrays' digest and split sizes."""
    sizes = {split: len(getattr(arrays, f"{split}_labels")) for split in ("train", "val", "test")
             if getattr(arrays, f"{split}_labels", None) is not None}
    return {"sha256": arrays_digest(arrays), "sizes": sizes}

"""Cats-vs-Dogs models of "Global Average Pooling with TensorFlow 2" (Adventures in Machine
Learning): one convolutional head and the four back ends the comparison needs.

The post's "Global Average Pooling" back end is written as ``AveragePooling2D()``, whose
default pool is 2x2, followed by Flatten and Dense(1): that is not global pooling. Both
are here: ``cats_dogs_pool_as_coded`` (the code) and ``cats_dogs_gap`` (what the prose says).
"""

from __future__ import annotations

from torch import nn

from models._util import check_positive, check_rate, output_shape
from models.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
)
from models.registry import register_model

SOURCE = "aiml-gap-cats-dogs"
IMAGE_SIZE = 100


def _head(image_size: int) -> nn.Sequential:
    check_positive("image_size", image_size)
    layers: list[nn.Module] = []
    channels = 3
    for filters in (32, 32, 64):
        layers += [Conv2D(channels, filters, 3), BatchNormalization(filters), Activation("relu"),
                   MaxPooling2D(2)]
        channels = filters
    head = nn.Sequential(*layers)
    output_shape(head, (3, image_size, image_size))  # rejects images too small for three blocks
    return head


def _dense_back_end(features: int, dropout: float | None) -> nn.Sequential:
    layers: list[nn.Module] = [Flatten(), BatchNormalization(features), Dense(features, 100),
                               Activation("relu")]
    if dropout is not None:
        layers.append(Dropout(check_rate("dropout", dropout)))
    layers += [BatchNormalization(100), Dense(100, 100), Activation("relu"), Dense(100, 1),
               Activation("sigmoid")]
    return nn.Sequential(*layers)


def _model(image_size: int, back_end) -> nn.Module:
    head = _head(image_size)
    model = nn.Sequential(head, back_end(output_shape(head, (3, image_size, image_size))))
    model.input_shape = (3, image_size, image_size)
    return model


@register_model(source=SOURCE, input_shape=(3, IMAGE_SIZE, IMAGE_SIZE))
def cats_dogs_head(*, image_size: int = IMAGE_SIZE) -> nn.Module:
    """The shared head: three (Conv2D 3x3, BatchNorm, ReLU, MaxPool 2) blocks of 32, 32, 64."""
    head = _head(image_size)
    head.input_shape = (3, image_size, image_size)
    return head


@register_model(source=SOURCE, input_shape=(3, IMAGE_SIZE, IMAGE_SIZE))
def cats_dogs_dense(*, image_size: int = IMAGE_SIZE) -> nn.Module:
    """Head + the standard classifier without dropout: Flatten, BN, 2 x Dense(100), Dense(1)."""
    return _model(image_size, lambda shape: _dense_back_end(shape[0] * shape[1] * shape[2], None))


@register_model(source=SOURCE, input_shape=(3, IMAGE_SIZE, IMAGE_SIZE))
def cats_dogs_dense_dropout(*, image_size: int = IMAGE_SIZE, dropout: float = 0.5) -> nn.Module:
    """Head + the standard classifier with Dropout(0.5) after the first Dense(100)."""
    return _model(image_size,
                  lambda shape: _dense_back_end(shape[0] * shape[1] * shape[2], dropout))


@register_model(source=SOURCE, input_shape=(3, IMAGE_SIZE, IMAGE_SIZE))
def cats_dogs_pool_as_coded(*, image_size: int = IMAGE_SIZE) -> nn.Module:
    """Head + the post's code for its 'GAP' back end: AveragePooling2D() (2x2), Flatten, Dense(1)."""
    def back_end(shape):
        pool = AveragePooling2D()
        c, h, w = output_shape(pool, shape)
        return nn.Sequential(pool, Flatten(), Dense(c * h * w, 1, activation="sigmoid"))
    return _model(image_size, back_end)


@register_model(source=SOURCE, input_shape=(3, IMAGE_SIZE, IMAGE_SIZE))
def cats_dogs_gap(*, image_size: int = IMAGE_SIZE) -> nn.Module:
    """Head + a true global-average-pooling back end: GlobalAveragePooling2D, Dense(1)."""
    return _model(image_size, lambda shape: nn.Sequential(
        GlobalAveragePooling2D(), Dense(shape[0], 1, activation="sigmoid")))

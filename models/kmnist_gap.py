"""KMNIST models of "Reducing trainable parameters with a Dense-free ConvNet classifier"
(Chris, MachineCurve, 2020): the Global Average Pooling model and its "Traditional" control.
"""

from __future__ import annotations

from torch import nn

from models._util import check_positive, check_rate, output_shape
from models.layers import Activation, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, MaxPooling2D
from models.registry import register_model

SOURCE = "machinecurve-gap"


def _features(channels: int, dropout: float) -> list[nn.Module]:
    check_rate("dropout", dropout)
    return [
        Conv2D(channels, 32, 3, activation="relu"), MaxPooling2D(2), Dropout(dropout),
        Conv2D(32, 64, 3, activation="relu"), MaxPooling2D(2), Dropout(dropout),
    ]


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def kmnist_gap(*, num_classes: int = 10, dropout: float = 0.25, image_size: int = 28) -> nn.Module:
    """Two conv blocks, a 'same' Conv2D to one map per class, GlobalAveragePooling2D, softmax."""
    check_positive("num_classes", num_classes)
    features = _features(1, dropout)
    output_shape(nn.Sequential(*features), (1, image_size, image_size))
    model = nn.Sequential(
        *features,
        Conv2D(64, num_classes, 3, padding="same", activation="relu"),
        GlobalAveragePooling2D(),
        Activation("softmax"),
    )
    model.input_shape = (1, image_size, image_size)
    return model


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def kmnist_traditional(*, num_classes: int = 10, dropout: float = 0.25, hidden: int = 256) -> nn.Module:
    """The control: the same two conv blocks, Flatten, Dense(256, relu), Dense(10, softmax)."""
    check_positive("num_classes", num_classes)
    check_positive("hidden", hidden)
    features = nn.Sequential(*_features(1, dropout), Flatten())
    (flat,) = output_shape(features, (1, 28, 28))
    return nn.Sequential(
        *features,
        Dense(flat, hidden, activation="relu"),
        Dense(hidden, num_classes, activation="softmax"),
    )

"""MNIST networks of "How to reduce training parameters in CNNs while keeping accuracy >99%"
(Towards Data Science): three approaches under 10,000 parameters.

No code is published, only prose and (missing) summary screenshots. Approach 2's prose
lists filters "4–8–16–10" for five blocks; approach 3 says its first three are halved and
its last two identical to approach 2's, which makes approach 2 4-8-16-16-10: the only
reading that gives the stated 5,490 / 5,382 parameters. Both readings can be built.
"""

from __future__ import annotations

from torch import nn

from models._util import check_positive, check_rate, output_shape
from models.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
)
from models.registry import register_model, require

SOURCE = "tds-mnist-10k"


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def mnist_approach1(*, filters: tuple[int, int] = (32, 14), dropout: float = 0.1,
                    pool: bool = True) -> nn.Module:
    """Two (Conv2D 3x3 relu, BatchNorm, MaxPool 2) blocks, Flatten, Dropout, Dense(10, softmax).

    ``pool=False`` drops the MaxPooling layers (to measure what pooling saves).
    """
    require(len(filters) == 2, f"filters must name the two conv blocks, got {filters!r}")
    layers: list[nn.Module] = []
    channels = 1
    for f in filters:
        layers += [Conv2D(channels, check_positive("filters", f), 3, activation="relu"),
                   BatchNormalization(f)]
        if pool:
            layers.append(MaxPooling2D(2))
        channels = f
    layers += [Flatten(), Dropout(check_rate("dropout", dropout))]
    (flat,) = output_shape(nn.Sequential(*layers), (1, 28, 28))
    return nn.Sequential(*layers, Dense(flat, 10, activation="softmax"))


def _conv_gap(filters: tuple[int, ...], dropout: float, pool_after: int,
              batchnorm: bool = True, dense_head: bool = False) -> nn.Module:
    require(len(filters) >= 1 and filters[-1] == 10,
            f"filters must end with 10 maps, one per class, for GAP; got {filters!r}")
    require(isinstance(pool_after, int) and 0 <= pool_after <= len(filters),
            f"pool_after must be a block number, or 0 for no pooling, got {pool_after!r}")
    check_rate("dropout", dropout)
    layers: list[nn.Module] = []
    channels = 1
    for block, f in enumerate(filters, start=1):
        layers.append(Conv2D(channels, check_positive("filters", f), 3, activation="relu"))
        if batchnorm:
            layers.append(BatchNormalization(f))
        if dropout and block > len(filters) - 3:  # "the last layer of the last three blocks"
            layers.append(Dropout(dropout))
        if block == pool_after:
            layers.append(MaxPooling2D(2))
        channels = f
    if dense_head:  # Flatten and Dense(10, softmax) in place of GAP: what the GAP head saves
        layers.append(Flatten())
        (flat,) = output_shape(nn.Sequential(*layers), (1, 28, 28))
        layers.append(Dense(flat, 10, activation="softmax"))
    else:
        layers += [GlobalAveragePooling2D(), Activation("softmax")]
    model = nn.Sequential(*layers)
    output_shape(model, (1, 28, 28))  # rejects more blocks than a 28x28 image admits
    return model


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def mnist_approach2(*, filters: tuple[int, ...] = (4, 8, 16, 16, 10), dropout: float = 0.1,
                    pool_after: int = 2, batchnorm: bool = True, dense_head: bool = False) -> nn.Module:
    """Five (Conv2D 3x3 relu, BatchNorm) blocks, MaxPool after the second, Dropout 10% ending
    the last three, GlobalAveragePooling2D, softmax. ``batchnorm=False`` leaves out every
    BatchNormalization layer (the ablation of "By using Batch normalization, the accuracy
    converges faster"); ``dense_head=True`` classifies with Flatten and Dense(10, softmax)
    instead of GlobalAveragePooling2D (what "replaces the Dense-Layer" saves)."""
    return _conv_gap(tuple(filters), dropout, pool_after, batchnorm, dense_head)


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def mnist_approach3(*, filters: tuple[int, ...] = (2, 4, 8, 16, 10), dropout: float = 0.0,
                    pool_after: int = 2, batchnorm: bool = True) -> nn.Module:
    """Approach 2 with filters 2-4-8-16-10 and no dropout. ``dropout=0.1`` puts approach 2's
    dropouts back (10% ending each of the last three blocks); ``batchnorm=False`` leaves out
    every BatchNormalization layer."""
    return _conv_gap(tuple(filters), dropout, pool_after, batchnorm)

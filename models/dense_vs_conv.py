"""MNIST networks of the notebook "Convolutional versus Dense layers in neural networks -
Part 1" (TensorFlow 2): the TensorFlow-tutorial Dense network and its variants, and the
ReLU LeNet on 32x32 padded digits, with its dropout, L1-L2 and halved variants.
"""

from __future__ import annotations

from torch import nn

from models._util import check_positive, check_rate, output_shape
from models.layers import AveragePooling2D, Conv2D, Dense, Dropout, Flatten
from models.registry import register_model, require

SOURCE = "dense-vs-conv-notebook"


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def mnist_dense(*, hidden: int = 512, input_dropout: float | None = None,
                hidden_dropout: float = 0.2) -> nn.Module:
    """Flatten, [Dropout], Dense(hidden, relu), Dropout, Dense(10, softmax).

    Defaults are model #0 (the TensorFlow tutorial); #1 adds ``input_dropout=0.2`` and
    ``hidden_dropout=0.5``; #2 is #1 with ``hidden=128``.
    """
    layers: list[nn.Module] = [Flatten()]
    if input_dropout is not None:
        layers.append(Dropout(check_rate("input_dropout", input_dropout)))
    layers += [Dense(28 * 28, check_positive("hidden", hidden), activation="relu"),
               Dropout(check_rate("hidden_dropout", hidden_dropout)),
               Dense(hidden, 10, activation="softmax")]
    return nn.Sequential(*layers)


@register_model(source=SOURCE, input_shape=(1, 32, 32))
def lenet(*, dense: tuple[int, int] = (120, 84), dropout: tuple[float, float] | None = None,
          l1_l2: tuple[float, float] | None = None) -> nn.Module:
    """Conv2D(6, 3x3 relu), AvgPool, Conv2D(16, 3x3 relu), AvgPool, Flatten,
    [Dropout], Dense(120, relu), [Dropout], Dense(84, relu), Dense(10, softmax).

    ``dense=(60, 42)`` is the halved model; ``dropout=(r1, r2)`` inserts the two Dropout
    layers of the grid; ``l1_l2=(l1, l2)`` puts that penalty on the first Dense kernel and
    the notebook's fixed (1e-6, 1e-6) on the second.
    """
    require(len(dense) == 2, f"dense must give the two hidden widths, got {dense!r}")
    features = nn.Sequential(
        Conv2D(1, 6, 3, activation="relu"), AveragePooling2D(),
        Conv2D(6, 16, 3, activation="relu"), AveragePooling2D(), Flatten())
    (flat,) = output_shape(features, (1, 32, 32))
    first = Dense(flat, check_positive("dense[0]", dense[0]), activation="relu")
    second = Dense(dense[0], check_positive("dense[1]", dense[1]), activation="relu")
    if l1_l2 is not None:
        require(len(l1_l2) == 2 and min(l1_l2) >= 0, f"l1_l2 must be two penalties >= 0, got {l1_l2!r}")
        first.regularizer = tuple(l1_l2)
        second.regularizer = (1e-6, 1e-6)
    layers: list[nn.Module] = [*features]
    if dropout is not None:
        require(len(dropout) == 2, f"dropout must give the two rates, got {dropout!r}")
        layers += [Dropout(check_rate("dropout[0]", dropout[0])), first,
                   Dropout(check_rate("dropout[1]", dropout[1])), second]
    else:
        layers += [first, second]
    return nn.Sequential(*layers, Dense(dense[1], 10, activation="softmax"))

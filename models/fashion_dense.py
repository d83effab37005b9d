"""Fashion-MNIST networks of "Fine-Tuning Shallow Networks with Keras for Efficient Image
Classification" (Abdul Hasib Uddin, Paperspace blog).

Its Dense layers act on a (28, 28, 1) input, so each hidden layer is applied to every pixel
separately (a 1x1 convolution in effect) and Flatten comes after them: 784 x n features
reach the output layer. The post's prose reports runs "with ReLU activation", but its
``dense_activation()`` returns nothing except for 'default'; ``fashion_dense_as_coded``
builds what that code builds.
"""

from __future__ import annotations

from torch import nn

from models._util import check_positive, check_rate
from models.layers import Dense, Dropout, Flatten, InputLayer
from models.registry import register_model, require

SOURCE = "paperspace-shallow-fashion"
PIXELS = 28 * 28
ACTIVATION_CHOICES = ("default", "relu", "LeakyReLU", "PReLU", "ELU")


def neurons(percentile: float) -> int:
    """``NUM_NEURONS = 784 * percentile``, truncated to an int as Keras' Dense does."""
    return int(PIXELS * percentile)


def dense_activation_as_coded(choice: str) -> str | None:
    """A transcription of the post's ``dense_activation()``.

    Its 'relu', 'LeakyReLU', 'PReLU' and 'ELU' branches construct a Keras layer and
    discard it (no ``return``), so the function returns None for every choice, and
    ``Dense(NUM_NEURONS, activation=None)`` is linear whatever DENSE_ACTIVATION_FUNCTION says.
    """
    require(choice in ACTIVATION_CHOICES,
            f"unknown DENSE_ACTIVATION_FUNCTION {choice!r}; valid: {', '.join(ACTIVATION_CHOICES)}")
    # 'default' returns None explicitly; every other branch builds a layer object and falls
    # off the end of the function, which returns None as well.
    return None


def _per_pixel(hidden: int, layers: int, dropout: float, activation: str | None) -> nn.Module:
    check_positive("hidden", hidden)
    require(layers in (0, 1, 2), f"layers must be 1 or 2 (the post's architectures) or 0 (no hidden "
            f"layer: a multinomial logistic regression on the pixels), got {layers!r}")
    check_rate("dropout", dropout)
    body: list[nn.Module] = [InputLayer()]
    width = 1
    for _ in range(layers):
        body += [Dense(width, hidden, activation=activation), Dropout(dropout)]
        width = hidden
    body += [Flatten(), Dense(PIXELS * width, 10, activation="softmax")]
    return nn.Sequential(*body)


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def fashion_dense(*, hidden: int = 392, layers: int = 1, dropout: float = 0.5,
                  activation: str | None = None) -> nn.Module:
    """Per-pixel Dense(hidden) x layers, each with Dropout, Flatten, Dense(10, softmax).

    ``activation`` is what the prose describes: None (linear) or 'relu'. ``layers=0`` is the
    baseline without a hidden layer: Flatten, Dense(10, softmax), a multinomial logistic
    regression on the 784 pixels (``hidden`` and ``dropout`` unused).
    """
    require(activation in (None, "relu"), f"activation must be None or 'relu', got {activation!r}")
    return _per_pixel(hidden, layers, dropout, activation)


@register_model(source=SOURCE, input_shape=(1, 28, 28))
def fashion_dense_as_coded(*, hidden: int = 392, layers: int = 1, dropout: float = 0.5,
                           activation: str = "default") -> nn.Module:
    """The same network with the activation chosen through the post's ``dense_activation()``."""
    return _per_pixel(hidden, layers, dropout, dense_activation_as_coded(activation))


def parameter_count(hidden: int, layers: int = 1) -> int:
    """Closed form of the per-pixel network's parameters (tests check builders against it)."""
    if layers == 0:
        return PIXELS * 10 + 10
    first = 2 * hidden
    second = hidden * hidden + hidden if layers == 2 else 0
    return first + second + PIXELS * hidden * 10 + 10

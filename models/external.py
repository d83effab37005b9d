"""Models the sources quote numbers for but do not build: AlexNet and VGG-16.

``alexnet`` and ``vgg16`` are torchvision's builders (random weights, nothing downloaded).
torchvision's AlexNet is the single-GPU variant of "One weird trick" (64-192-384-256-256
filters); ``alexnet_paper`` is the network of Krizhevsky et al. (2012) as the paper draws
it: 96-256-384-384-256 filters on a 227x227 input, with conv2, conv4 and conv5 split
into two groups, one per GPU.

torchvision is imported inside the two builders that use it: importing it costs seconds,
and ``import models`` (every command, every test) should not pay for it.
"""

from __future__ import annotations

from torch import nn

from models._util import output_shape
from models.registry import register_model


@register_model(source="external", input_shape=(3, 224, 224), keras=False)
def alexnet(*, num_classes: int = 1000) -> nn.Module:
    """torchvision's AlexNet."""
    import torchvision

    return torchvision.models.alexnet(weights=None, num_classes=num_classes)


@register_model(source="external", input_shape=(3, 224, 224), keras=False)
def vgg16(*, num_classes: int = 1000) -> nn.Module:
    """torchvision's VGG-16 (configuration D, no batch norm)."""
    import torchvision

    return torchvision.models.vgg16(weights=None, num_classes=num_classes)


@register_model(source="external", input_shape=(3, 227, 227), keras=False)
def alexnet_paper(*, grouped: bool = True, num_classes: int = 1000) -> nn.Module:
    """AlexNet as in Krizhevsky, Sutskever & Hinton (2012), two-GPU grouping included."""
    groups = 2 if grouped else 1
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=groups), nn.ReLU(),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=groups), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=groups), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(),
    )
    (flat,) = output_shape(features, (3, 227, 227))
    return nn.Sequential(
        *features,
        nn.Dropout(0.5), nn.Linear(flat, 4096), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )

"""PyTorch builders for every architecture of the five sources, in one registry.

    >>> import models
    >>> model = models.build("kmnist_gap")
    >>> models.names()[:3]
    ['alexnet', 'alexnet_paper', 'cats_dogs_dense']
"""

from models import cats_dogs, dense_vs_conv, external, fashion_dense, kmnist_gap, mnist_small  # noqa: F401  (registers)
from models._util import largest_output
from models.layers import keras_init_, output_activation, penalty, probabilities
from models.registry import ModelEntry, build, entry, names, register_model
from models.summary import Summary, summarize

__all__ = [
           "ModelEntry",
           "Summary",
           "build",
           "entry",
           "keras_init_",
           "largest_output",
           "names",
           "output_activation",
           "penalty",
           "probabilities",
           "register_model",
           "summarize",
]

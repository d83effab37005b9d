"""How Keras code reads, for the code listings (``claims.listing``): the layer calls, their
positional parameters and the defaults that decide what a layer computes, the optimizers'
defaults, the keys that name recipe fields, and the small ``ast`` helpers a listing line needs.
"""

from __future__ import annotations

import ast
from typing import Any

#: Keras layer calls, by the name the code calls them; ``Input`` makes an InputLayer.
LAYERS = {"Conv2D": "Conv2D", "MaxPooling2D": "MaxPooling2D", "AveragePooling2D": "AveragePooling2D",
          "GlobalAveragePooling2D": "GlobalAveragePooling2D", "Dense": "Dense", "Dropout": "Dropout",
          "Flatten": "Flatten", "Activation": "Activation", "BatchNormalization": "BatchNormalization",
          "Input": "InputLayer"}
#: Keras' positional parameters of each layer call.
POSITIONAL = {"Conv2D": ("filters", "kernel_size", "strides", "padding"),
              "MaxPooling2D": ("pool_size", "strides", "padding"),
              "AveragePooling2D": ("pool_size", "strides", "padding"),
              "Dense": ("units", "activation"), "Dropout": ("rate",), "Activation": ("activation",),
              "Input": ("input_shape",)}
#: Keras defaults that decide what a layer computes; each becomes a claim when the call omits it.
DEFAULTS = {"Conv2D": {"strides": [1, 1], "padding": "valid", "activation": "linear"},
            "MaxPooling2D": {"pool_size": [2, 2], "padding": "valid"},
            "AveragePooling2D": {"pool_size": [2, 2], "padding": "valid"},
            "Dense": {"activation": "linear"},
            "BatchNormalization": {"momentum": 0.99, "epsilon": 0.001}}
#: Pooling layers, whose ``strides`` default to their ``pool_size``.
POOLS = ("MaxPooling2D", "AveragePooling2D")
#: Arguments that do not change what is checked (a layer's name) or that Keras fills in.
IGNORED_ARGUMENTS = {"name"}
PAIRS = {"kernel_size", "pool_size", "strides"}
#: Optimizers the code constructs; Keras' defaults (TF 2) stand where the call omits them.
OPTIMIZERS = {"Adam": {"learning_rate": 0.001, "epsilon": 1e-7}, "RMSprop": {}, "SGD": {}}
#: Optimizer arguments no recipe varies: the trainer fixes Keras' default for every run, and a
#: listing's argument is checked against the trainer's setting (statistic ``trainer_setting``).
TRAINER_SETTINGS = {"Adam": ("beta_1", "beta_2", "amsgrad"), "fit": ("shuffle",)}
#: Code keys that name a recipe field the same way in every source; ``fields`` adds more.
FIELDS = {"batch_size": "batch_size", "epochs": "epochs", "validation_split": "validation_split",
          "loss": "loss", "optimizer": "optimizer", "learning_rate": "learning_rate",
          "epsilon": "epsilon", "steps_per_epoch": "steps_per_epoch",
          "validation_steps": "validation_steps", "patience": "early_stopping_patience",
          "monitor": "monitor"}
#: Keywords of fit, compile and callbacks that log, name or wire things up: no hyper-parameter.
PLUMBING = {"verbose", "metrics", "callbacks", "validation_data", "filepath", "mode", "save_weights_only",
            "name"}
#: Modules whose attributes name a Keras function by its name (activations.relu, losses.mse).
LIBRARIES = {"activations", "losses", "optimizers", "tensorflow", "tf", "keras"}

ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b}


def root_name(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def parse_line(text: str) -> ast.Module | None:
    """The line as Python; the closing ``])`` or ``,`` of an enclosing list is dropped."""
    code = text.strip()
    while code:
        try:
            return ast.parse(code)
        except SyntaxError:
            if code[-1] not in ",;)] ":
                return None
            code = code[:-1]
    return None


def normalise(param: str, value: Any) -> tuple[Any, dict[str, Any]]:
    """Keras' spelling of an argument, as a claimable value, and any measure option it needs."""
    if param in PAIRS and isinstance(value, (int, float)):
        value = [value, value]
    if param == "activation" and value is None:
        value = "linear"
    extra = {}
    if param == "input_shape" and isinstance(value, list) and len(value) == 2:
        extra = {"channel_axis": False}  # Keras' (28, 28): images without a channel axis
    return claimable(value), extra


def claimable(value: Any) -> Any:
    """Strings are claimed as one-item lists: a claimed value is a number, a bool or a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple):
        return list(value)
    return value

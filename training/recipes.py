"""Training recipes as the sources give them, read from the claim files' ``[recipes.NAME]`` tables.

A recipe is data: the model and its options, the dataset, and the Keras ``compile``/``fit``
arguments and callbacks of the source's code. Keras' defaults fill what a source leaves
unsaid (Adam epsilon 1e-7, batch size 32, ReduceLROnPlateau factor 0.1, ...), so that a
run here is comparable with the source's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomllib

#: The claim files: each source's ``[recipes.NAME]`` tables sit beside its claims. Read here as
#: plain files, so that training never imports the claims layer above it.
DATA_DIR = Path(__file__).resolve().parents[1] / "claims" / "data"

LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy")
#: Keys a recipe table may hold that only document the source (not used by the trainer).
DOCUMENTATION_KEYS = {"source_file", "normalize", "metrics", "split_percent", "image_size",
                      "shuffle_buffer", "validation_steps"}
#: Keys that name the network in figures (claims.figures): neither used nor stored, so adding
#: one changes no result file and no checkpoint's key.
DISPLAY_KEYS = {"title", "point_title"}
#: Keys the GPU planner reads (training.estimate), neither used nor stored: the epochs the
#: source reports for this very run, where it gives them.
PLANNING_KEYS = {"expected_epochs"}


class RecipeError(ValueError):
    """A recipe table is malformed or names something that does not exist."""


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file, parsed once per process for each content it has had (the registry, the
    recipes, the listings and the planner all read the same claim files; parsing them
    again for each was most of the fast suite's collection). The result is shared: read it,
    never change it."""
    return _parse(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=128)
def _parse(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def own_tables(directory: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """Every recipe table as written (``base`` unresolved), with the file that holds it."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.toml")):
        for name, table in read_toml(path).get("recipes", {}).items():
            if name in out:
                raise RecipeError(f"{path}: recipe {name!r} is defined twice "
                                  f"(also in {out[name]['source_file']})")
            out[name] = {"source_file": path.name, **table}
    return out


def recipe_tables(directory: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """The training recipes the sources give, by name, each ``base`` resolved."""
    tables = own_tables(directory)
    return {name: _resolve(name, tables, ()) for name in tables}


def _resolve(name: str, tables: dict[str, dict[str, Any]], seen: tuple[str, ...]) -> dict[str, Any]:
    """A recipe with ``base = "OTHER"`` is OTHER's table with its own keys on top: the
    sources vary one or two settings between runs, and the tables say only that."""
    table = tables[name]
    if "base" not in table:
        return table
    base = table["base"]
    if base not in tables or base in seen or base == name:
        problem = "a cycle" if base in (*seen, name) else "an unknown recipe"
        raise RecipeError(f"{table['source_file']}: recipe {name!r}: base {base!r} is {problem}")
    own = {k: v for k, v in table.items() if k != "base"}
    return {**_resolve(base, tables, (*seen, name)), **own}


#: Evaluation batch where the recipe names none (Keras' ``evaluate`` defaults to 32: the same
#: means up to float rounding, in many more, slower batches).
EVAL_BATCH = 1000


@dataclass(frozen=True)
class Recipe:
    """One ``model.compile(...); model.fit(...)`` of a source, Keras defaults filled in."""

    name: str
    model: str
    dataset: str
    epochs: int
    loss: str
    options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adam"
    learning_rate: float = 0.001
    epsilon: float = 1e-7
    batch_size: int = 32
    #: Keras ``validation_split``: the LAST fraction of the training arrays, before shuffling.
    validation_split: float | None = None
    #: Keras ``steps_per_epoch`` over a repeated dataset; None: one pass per epoch.
    steps_per_epoch: int | None = None
    validation_batch_size: int | None = None
    #: What the callbacks watch: val_loss, val_accuracy, test_loss or test_accuracy (the MNIST
    #: post passes the test set as ``validation_data``, so its val_* are test_*).
    monitor: str = "val_loss"
    early_stopping_patience: int | None = None
    early_stopping_baseline: float | None = None
    restore_best: bool = False
    reduce_lr_patience: int | None = None
    reduce_lr_factor: float = 0.1
    #: name -> list of values, or {"product": values} for every pair of two values.
    grid: dict[str, Any] = field(default_factory=dict)
    #: option -> recipe whose best grid point supplies it (run that recipe first).
    best_of: dict[str, str] = field(default_factory=dict)
    pruning: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_batch(self) -> int:
        """The evaluation batch: ``validation_batch_size``, else ``EVAL_BATCH``."""
        return self.validation_batch_size or EVAL_BATCH

    @property
    def mode(self) -> str:
        """'min' for losses, 'max' for accuracies: Keras' ``mode='auto'``."""
        return "min" if self.monitor.endswith("loss") else "max"

    def grid_points(self) -> list[dict[str, Any]]:
        """Every option set of the grid (one empty set without a grid), in the source's order."""
        axes = []
        for key, values in self.grid.items():
            if isinstance(values, dict):
                values = [tuple(pair) for pair in itertools.product(values["product"], repeat=2)]
            axes.append([(key, v) for v in values])
        return [dict(point) for point in itertools.product(*axes)]


def _check(name: str, recipe: Recipe) -> Recipe:
    def need(ok: bool, problem: str) -> None:
        if not ok:
            raise RecipeError(f"recipe {name!r} ({recipe.extra.get('source_file', '?')}): {problem}")

    import models  # the registry of builders; imported here so recipes load without torch work

    need(recipe.model in models.names(), f"unknown model {recipe.model!r}")
    need(recipe.loss in LOSSES, f"unknown loss {recipe.loss!r}; valid: {', '.join(LOSSES)}")
    need(recipe.optimizer == "adam", f"only the Adam optimizer is implemented, got {recipe.optimizer!r}")
    need(recipe.epochs >= 1 and recipe.batch_size >= 1, "epochs and batch_size must be >= 1")
    need(recipe.validation_split is None or 0 < recipe.validation_split < 1,
         f"validation_split must be in (0, 1), got {recipe.validation_split!r}")
    need(recipe.monitor in ("val_loss", "val_accuracy", "test_loss", "test_accuracy"),
         f"monitor must be val_loss, val_accuracy, test_loss or test_accuracy, got {recipe.monitor!r}")
    need(not recipe.monitor.startswith("val") or recipe.validation_split is not None
         or (recipe.early_stopping_patience is None and recipe.reduce_lr_patience is None),
         f"monitor {recipe.monitor!r} needs a validation_split")
    for key, values in recipe.grid.items():
        need(isinstance(values, list) or (isinstance(values, dict) and list(values) == ["product"]),
             f"grid {key!r} must be a list or {{ product = [...] }}")
    return recipe


def parse(name: str, table: dict[str, Any]) -> Recipe:
    """A recipe from its TOML table; unknown keys are an error unless they only document."""
    known = {f.name for f in fields(Recipe)} - {"name", "extra"}
    unknown = sorted(set(table) - known - DOCUMENTATION_KEYS - DISPLAY_KEYS - PLANNING_KEYS)
    if unknown:
        raise RecipeError(f"recipe {name!r} ({table.get('source_file', '?')}): unknown keys "
                          f"{', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    args = {k: v for k, v in table.items() if k in known and v is not None}
    extra = {k: v for k, v in table.items() if k in DOCUMENTATION_KEYS}
    try:
        recipe = Recipe(name=name, extra=extra, **args)
    except TypeError as error:
        raise RecipeError(f"recipe {name!r}: {error}") from None
    return _check(name, recipe)


def names() -> list[str]:
    return sorted(recipe_tables())


def get(name: str) -> Recipe:
    tables = recipe_tables()
    if name not in tables:
        raise RecipeError(f"unknown recipe {name!r}; recipes: {', '.join(sorted(tables))}")
    return parse(name, tables[name])


def batch_sizes() -> dict[str, int]:
    """The batch size each model's source trains it with (its first recipe's)."""
    sizes: dict[str, int] = {}
    for recipe in map(get, names()):
        sizes.setdefault(recipe.model, recipe.batch_size)
    return sizes

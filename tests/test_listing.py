"""Code listings as claims (claims/listing.py): the parser on made-up lines, its errors, and
that a changed argument in a pasted line is a refuted claim, so every check can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
import torch

from claims import listing, sources
from claims.measures import MeasureError, measure
from claims.registry import DATA_DIR, ClaimError, Source, load_file, registry
from claims.verdict import HOLDS, REFUTED, judge

pytestmark = pytest.mark.unit

HEADER = """\
[source]
id = "src"
title = "A post"
author = "Someone"
venue = "A blog"
dataset = "KMNIST"
"""

#: The KMNIST GAP model's code, as a made-up source might print it.
GAP_LINES = [
    "img_width, img_height = 28, 28",
    "no_classes = 10",
    "input_shape = (img_width, img_height, 1)",
    "model.add(Conv2D(32, kernel_size=(3, 3), activation='relu', input_shape=input_shape))",
    "model.add(MaxPooling2D(pool_size=(2, 2)))",
    "model.add(Dropout(0.25))",
    "model.add(Conv2D(64, 3, activation='relu'))",
    "head.add(layers.MaxPooling2D())",
    "layers.Dropout(0.25, name='dropout_1'),",
    "model.add(Conv2D(no_classes, kernel_size=(3, 3), padding='same', activation='relu'))",
    "model.add(GlobalAveragePooling2D())",
    "layers.Activation(activation='softmax')])",
]


def block(lines: list, **keys) -> str:
    """A [[listing]] table; ``keys`` are raw TOML values."""
    fields = {"id": '"src.code"', "model": '"kmnist_gap"', **keys}
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    return f"[[listing]]\n{body}\nlines = [{', '.join(_toml(line) for line in lines)}]\n"


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # a JSON string or number is a TOML one


def load(tmp_path: Path, *blocks: str, extra: str = "") -> dict:
    path = tmp_path / "src.toml"
    path.write_text(HEADER + extra + "".join(blocks), encoding="utf-8")
    return {c.id: c for c in load_file(path)}


def test_layer_lines_become_one_claim_per_argument_and_default(tmp_path):
    claims = load(tmp_path, block(GAP_LINES))
    assert claims["src.code.0.type"].claimed == ["Conv2D"]
    assert claims["src.code.0.filters"].claimed == 32
    assert claims["src.code.0.kernel_size"].claimed == [3, 3]
    assert claims["src.code.0.activation"].claimed == ["relu"]
    assert claims["src.code.0.padding"].claimed == ["valid"]  # Keras' default, a claim too
    assert claims["src.code.0.input_shape"].claimed == [28, 28, 1]
    assert claims["src.code.3.kernel_size"].claimed == [3, 3]  # an int kernel is square
    assert claims["src.code.4.pool_size"].claimed == [2, 2]  # MaxPooling2D() pools 2x2
    assert claims["src.code.4.strides"].claimed == [2, 2]  # ...with strides = pool_size
    assert claims["src.code.5.rate"].claimed == 0.25  # a list item, its closing ']' dropped
    assert claims["src.code.6.filters"].claimed == 10
    assert claims["src.code.8.activation"].claimed == ["softmax"]
    assert claims["src.code.layers"].claimed == 9
    assert all(c.kind == "layer" and c.marker == "fast" for c in claims.values())
    assert all(judge(c).verdict == "holds" for c in claims.values()), \
        [(c.id, judge(c).reason) for c in claims.values() if judge(c).verdict != "holds"]


def test_a_claim_quotes_its_line_and_the_lines_whose_names_it_reads(tmp_path):
    claims = load(tmp_path, block(GAP_LINES))
    assert claims["src.code.0.filters"].quote == GAP_LINES[3]
    assert claims["src.code.6.filters"].quote == f"{GAP_LINES[1]} [...] {GAP_LINES[9]}"
    assert claims["src.code.0.input_shape"].quote == " [...] ".join(GAP_LINES[i] for i in (0, 2, 3))


@pytest.mark.parametrize(("index", "changed", "claim_id"), [
    (3, "model.add(Conv2D(33, (3, 3), activation='relu', input_shape=input_shape))", "0.filters"),
    (3, "model.add(Conv2D(32, (5, 5), activation='relu', input_shape=input_shape))", "0.kernel_size"),
    (3, "model.add(Conv2D(32, (3, 3), activation='tanh', input_shape=input_shape))", "0.activation"),
    (3, "model.add(Conv2D(32, (3, 3), padding='same', input_shape=input_shape))", "0.padding"),
    (3, "model.add(Conv2D(32, (3, 3), 2, activation='relu', input_shape=input_shape))", "0.strides"),
    (0, "img_width, img_height = 32, 32", "0.input_shape"),  # through two bindings
    (3, "model.add(Conv2D(32, kernel_size=(3, 3), input_shape=input_shape))", "0.activation"),  # a default
    (4, "model.add(MaxPooling2D(pool_size=(3, 3)))", "1.pool_size"),
    (4, "model.add(AveragePooling2D(pool_size=(2, 2)))", "1.type"),
    (5, "model.add(Dropout(0.5))", "2.rate"),
    (1, "no_classes = 12", "6.filters"),  # through the name the layer line reads
    (11, "model.add(Dense(10, activation='softmax'))", "8.type"),
])
def test_a_changed_argument_in_a_pasted_line_is_a_refuted_claim(tmp_path, index, changed, claim_id):
    lines = [*GAP_LINES]
    lines[index] = changed
    claim = load(tmp_path, block(lines))[f"src.code.{claim_id}"]
    verdict = judge(claim)
    assert verdict.verdict == "refuted", (claim.id, claim.claimed, verdict.measured)


def test_a_dense_line_and_a_missing_or_extra_layer_are_refuted(tmp_path):
    claims = load(tmp_path, block(["model.add(Flatten())", "model.add(Dense(256, activation='relu'))",
                                   "model.add(Dense(10, activation='softmax'))"],
                                  model='"kmnist_traditional"', first_layer="6"))
    assert {k: judge(c).verdict for k, c in claims.items()} == dict.fromkeys(claims, "holds")
    claims = load(tmp_path, block(["model.add(Flatten())", "model.add(Dense(128, activation='relu'))"],
                                  model='"kmnist_traditional"', first_layer="6"))
    assert judge(claims["src.code.7.units"]).verdict == "refuted"
    assert judge(claims["src.code.layers"]).verdict == "refuted"  # 2 lines, 3 layers from row 6


RECIPE_LINES = [
    "batch_size = 25",
    "no_epochs = 25",
    "model.compile(loss=keras.losses.categorical_crossentropy, optimizer=keras.optimizers.Adam())",
    "history = model.fit(x, y, batch_size=batch_size, epochs=no_epochs, validation_split=0.2)",
]


def test_hyper_parameter_lines_become_claims_on_the_recipe_and_on_the_run(tmp_path):
    claims = load(tmp_path, block(RECIPE_LINES, recipe='"kmnist_gap"'))
    assert claims["src.code.epochs"].claimed == 25
    assert claims["src.code.epochs"].quote == f"{RECIPE_LINES[1]} [...] {RECIPE_LINES[3]}"
    assert claims["src.code.batch_size"].quote == f"{RECIPE_LINES[0]} [...] {RECIPE_LINES[3]}"
    assert claims["src.code.loss"].claimed == ["categorical_crossentropy"]
    assert claims["src.code.optimizer"].claimed == ["adam"]
    assert claims["src.code.learning_rate"].claimed == 0.001  # Adam()'s Keras default
    assert claims["src.code.epochs"].measure == {"statistic": "recipe_data", "recipe": "kmnist_gap",
                                                 "field": "epochs"}
    assert claims["src.code.epochs.used"].measure["statistic"] == "recipe"
    assert claims["src.code.epochs.used"].marker == "gpu"
    assert all(judge(c).verdict == "holds" for k, c in claims.items() if not k.endswith(".used"))
    changed = [*RECIPE_LINES]
    changed[1] = "no_epochs = 30"
    changed[2] = changed[2].replace("categorical_crossentropy", "binary_crossentropy")
    claims = load(tmp_path, block(changed, recipe='"kmnist_gap"'))
    assert judge(claims["src.code.epochs"]).verdict == "refuted"
    assert judge(claims["src.code.loss"]).verdict == "refuted"


def test_a_keyword_no_recipe_field_holds_is_listed_unchecked(tmp_path):
    lines = ["optimizer_2 = keras.optimizers.Adam(lr=0.001, rho=0.9)",
             "model.compile(optimizer=optimizer_2, loss='categorical_crossentropy', metrics=['accuracy'])"]
    load(tmp_path, block(lines, recipe='"kmnist_gap"'))
    data = tomllib.loads((tmp_path / "src.toml").read_text())
    skipped = listing.unchecked(data["listing"][0], Source("src", "A post", "", "", ""), tmp_path)
    assert [(u.quote, u.reason) for u in skipped] == [(lines[0], "rho=0.9: no recipe field holds it")]


def test_adams_betas_and_amsgrad_are_checked_against_the_trainer(tmp_path):
    """No recipe varies them; the trainer fixes Keras' defaults (training/keras.py), so a
    listing's Adam(beta_1=..., beta_2=..., amsgrad=...) is a claim on the trainer's settings."""
    lines = ["optimizer_2 = keras.optimizers.Adam(lr=0.001, beta_1=0.9, beta_2=0.99, amsgrad=False)",
             "model.compile(optimizer=optimizer_2, loss='categorical_crossentropy', metrics=['accuracy'])"]
    claims = load(tmp_path, block(lines, recipe='"kmnist_gap"'))
    checked = {k: claims[f"src.code.trainer.{k}"] for k in ("beta_1", "beta_2", "amsgrad")}
    assert all(c.measure == {"statistic": "trainer_setting", "name": k} for k, c in checked.items())
    assert judge(checked["beta_1"]).verdict == HOLDS and judge(checked["amsgrad"]).verdict == HOLDS
    assert judge(checked["beta_2"]).verdict == REFUTED  # the trainer's is Keras' 0.999


def test_a_setting_a_claims_entry_already_checks_is_not_repeated(tmp_path):
    explicit = """\
[[claims]]
id = "src.epochs"
kind = "recipe"
quote = "no_epochs = 25"
claimed = 25
measure = { statistic = "recipe", recipe = "kmnist_gap", field = "epochs" }
"""
    claims = load(tmp_path, block(RECIPE_LINES, recipe='"kmnist_gap"'), extra=explicit)
    assert "src.code.epochs" in claims and "src.code.epochs.used" not in claims
    prose = explicit.replace('"no_epochs = 25"', '"the number of epochs is 25"')
    claims = load(tmp_path, block(RECIPE_LINES, recipe='"kmnist_gap"'), extra=prose)
    assert "src.code.epochs.used" in claims  # the prose's words are another claim


def test_names_and_unresolved_words(tmp_path):
    lines = ["x = Dense(n_hidden, activation=pick())(x)", "x = Dropout(iii)(x)", "x = Flatten()(x)",
             "outputs = Dense(10, activation='softmax')(x)"]
    names = ('{ n_hidden = { value = 784, quote = "n_hidden = 784" }, '
             '"pick()" = { value = "linear", quote = "return None" } }')
    raw = block(["inputs = Input(shape=(28, 28, 1))", *lines], model='"fashion_dense"',
                options="{ hidden = 784 }", names=names, unresolved='{ iii = "spun text" }')
    claims = load(tmp_path, raw)
    assert claims["src.code.1.units"].quote == "n_hidden = 784 [...] " + lines[0]
    assert claims["src.code.1.activation"].claimed == ["linear"]
    assert claims["src.code.0.input_shape"].claimed == [28, 28, 1]
    assert "src.code.2.rate" not in claims
    data = tomllib.loads((tmp_path / "src.toml").read_text())
    (skipped,) = listing.unchecked(data["listing"][0], Source("src", "A post", "", "", ""), tmp_path)
    assert (skipped.quote, skipped.reason) == (lines[1], "rate=iii: spun text")
    assert all(judge(c).verdict == "holds" for c in claims.values())


@pytest.mark.parametrize(("lines", "keys", "problem"), [
    (["head.add together(layers.Conv2D(32, (3, 3)))"], {}, "does not parse"),
    (["model.add(Conv2D(no_classes, 3))"], {}, "cannot read 'no_classes'"),
    (["model.add(Conv2D(32, (3, iii)))"], {}, "cannot read 'iii'"),
    (["model.add(Dense(10)); model.add(Dense(10))"], {}, "2 layer calls"),
    (["epochs = 3", "model.fit(x, y, epochs=4)"], {"recipe": '"kmnist_gap"'}, "to 3 and to 4"),
    (["model.fit(x, y, epochs=4)"], {}, "needs 'recipe'"),
    (["verbosity = 1", "model.add(Flatten())"], {}, "check nothing"),
    ([{"line": "head.add together(x)"}], {}, "unchecked"),
    (["model.add(Flatten())"], {"modle": '"x"'}, "unknown keys"),
])
def test_a_bad_listing_is_a_claim_error_naming_file_and_block(tmp_path, lines, keys, problem):
    with pytest.raises(ClaimError, match=problem) as error:
        load(tmp_path, block(lines, **keys))
    assert "src.toml" in str(error.value) and "'src.code'" in str(error.value)


def test_an_unparseable_line_listed_unchecked_still_counts_its_layers(tmp_path):
    lines = [{"line": "head.add together(layers.Conv2D(32, (3, iii)))", "unchecked": "spun", "layers": 1},
             "model.add(MaxPooling2D(pool_size=(2, 2)))"]
    claims = load(tmp_path, block(lines))
    assert claims["src.code.1.type"].claimed == ["MaxPooling2D"]
    assert judge(claims["src.code.1.type"]).verdict == "holds"


def test_fits_shuffle_is_observed_in_what_a_real_trainer_feeds(monkeypatch):
    """fit(shuffle=True) is checked against the indices a trainer's steps are fed, so a trainer
    that fed one order every epoch, dropped an image, or gave every seed the same order would
    refute it."""
    from claims.measures_weights import _shuffles_every_epoch
    from training.trainer import Trainer

    def measured(trainer_batches) -> bool:  # the measurement is kept per process: measure afresh
        _shuffles_every_epoch.cache_clear()
        with monkeypatch.context() as m:
            m.setattr(Trainer, "_batches", trainer_batches)
            return measure(spec)

    spec = {"statistic": "trainer_setting", "name": "shuffle"}
    assert measure(spec) is True
    batches = Trainer._batches
    assert measured(batches) is True
    # the same order every epoch
    assert measured(lambda self, n: list(torch.arange(n).expand(2, n).split(4, dim=1))) is False
    # an image left out
    assert measured(lambda self, n: [b[:, :-1] if i == 0 else b
                                     for i, b in enumerate(batches(self, n))]) is False
    # every seed's run in one order
    assert measured(lambda self, n: [b[:1].expand_as(b) for b in batches(self, n)]) is False
    _shuffles_every_epoch.cache_clear()  # no altered trainer's answer is left for other tests


def test_layer_config_rejects_an_unknown_attribute_and_misses_an_absent_one():
    spec = {"statistic": "layer_config", "model": "kmnist_gap", "row": 0}
    with pytest.raises(MeasureError, match="unknown attribute"):
        measure({**spec, "attribute": "colour"})
    assert measure({**spec, "attribute": "units"}) is None  # a Conv2D has no units
    assert measure({**spec, "row": 40, "attribute": "type"}) is None  # a layer the builder lacks


# -- the registry's own listings -----------------------------------------------------------------
def _listing_blocks():
    for path in sorted(DATA_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for raw in data.get("listing", []):
            yield path, data["source"]["title"], raw


@pytest.mark.skipif(not sources.available(), reason="the source documents are not beside the checkout")
def test_every_listing_line_checked_or_not_is_word_for_word_in_its_source():
    texts = sources.texts()
    missing = [(raw["id"], entry if isinstance(entry, str) else entry["line"])
               for _, title, raw in _listing_blocks() for entry in raw["lines"]
               if not sources.quoted_in(entry if isinstance(entry, str) else entry["line"], texts[title])]
    assert not missing, f"listing lines not found word for word in their source: {missing}"


def test_every_listing_claim_measures_or_waits_for_a_run():
    blocks = tuple(f"{raw['id']}." for _, _, raw in _listing_blocks())
    claims = [c for c in registry() if c.id.startswith(blocks)]
    assert claims
    for claim in claims:
        spec = claim.measure.get("of", claim.measure)
        if spec["statistic"] == "layer_config":
            measure(spec)  # a build on the meta device; raises on an attribute it cannot read
        elif spec["statistic"] in ("recipe_data", "trainer_setting"):
            measure(spec)  # a field the recipe lacks, or a setting the trainer lacks, is a MeasureError
        else:
            assert spec["statistic"] == "recipe" and claim.marker == "gpu", claim.id


def test_a_listing_builds_the_model_its_recipe_trains():
    from claims.registry import recipes

    table = recipes()
    for path, _, raw in _listing_blocks():
        if "recipe" in raw:
            recipe = table[raw["recipe"]]
            assert (recipe["model"], recipe.get("options", {})) == (raw["model"], raw.get("options", {})) \
                or "grid" in recipe or "best_of" in recipe, (path.name, raw["id"])

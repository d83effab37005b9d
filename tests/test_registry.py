"""Tests of the claims loader, the expression evaluator and the verdict comparison."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims import registry, sources
from claims.measures import MeasureError, evaluate
from claims.registry import Claim, ClaimError, Source, load, load_file
from claims.verdict import compare

SOURCE = """\
[source]
id = "src"
title = "A post"
author = "Someone"
venue = "A blog"
dataset = "MNIST"
"""

CLAIM_FIELDS = {
    "id": '"src.c1"',
    "kind": '"parameter_count"',
    "quote": '"The model has 320 parameters."',
    "claimed": "320",
    "measure": '{ statistic = "params", model = "kmnist_gap" }',
}


def claim_toml(drop: tuple[str, ...] = (), **overrides: str) -> str:
    """One [[claims]] table; values are raw TOML."""
    fields = {**CLAIM_FIELDS, **overrides}
    lines = [f"{key} = {value}" for key, value in fields.items() if key not in drop]
    return "[[claims]]\n" + "\n".join(lines) + "\n"


def write(directory: Path, text: str, name: str = "claims.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly."""
    out = []
    for ch in text:
        if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# --- valid files -----------------------------------------------------------------------------

@pytest.mark.unit
def test_minimal_file_loads(tmp_path):
    path = write(tmp_path, SOURCE + claim_toml())
    (claim,) = load_file(path)
    assert claim.id == "src.c1"
    assert claim.source == Source("src", "A post", "Someone", "A blog", "MNIST")
    assert (claim.kind, claim.claimed) == ("parameter_count", 320)
    assert claim.quote == "The model has 320 parameters."
    assert claim.measure == {"statistic": "params", "model": "kmnist_gap"}
    assert (claim.relation, claim.marker, claim.expect, claim.tolerance, claim.note) == \
        ("==", "fast", "holds", {}, "")
    assert load(tmp_path) == [claim]


@pytest.mark.unit
def test_optional_keys_and_default_markers(tmp_path):
    text = (SOURCE
            + claim_toml(tolerance="{ abs = 1, rel = 0.01 }", relation='"in"', claimed="[300, 340]",
                         marker='"gpu"', expect='"refuted"', note='"300 + 40 = 340"')
            + claim_toml(id='"src.c2"', kind='"dataset"')
            + claim_toml(id='"src.c3"', kind='"accuracy"'))
    first, second, third = load_file(write(tmp_path, text))
    assert first.tolerance == {"abs": 1, "rel": 0.01}
    assert (first.relation, first.claimed, first.marker, first.expect) == ("in", [300, 340], "gpu", "refuted")
    assert second.marker == "data" and third.marker == "gpu"


@pytest.mark.unit
def test_the_shipped_registry_loads_with_unique_ids():
    claims = load()
    assert claims
    assert len({c.id for c in claims}) == len(claims)


# --- malformed files -------------------------------------------------------------------------

MALFORMED = [
    # (test id, file text, claim id the message must name or None, word about the problem)
    ("missing-source", claim_toml(), None, "[source]"),
    ("source-not-a-table", 'source = "src"\n' + claim_toml(), None, "[source]"),
    ("source-missing-key", SOURCE.replace('author = "Someone"\n', "") + claim_toml(), None, "author"),
    ("unknown-top-level", SOURCE + "[extras]\nx = 1\n" + claim_toml(), None, "extras"),
    ("unknown-kind", SOURCE + claim_toml(kind='"vibes"'), "src.c1", "kind"),
    ("kind-not-a-string", SOURCE + claim_toml(kind="3"), "src.c1", "kind"),
    ("id-uppercase", SOURCE + claim_toml(id='"Src.C1"'), "Src.C1", "lower-case"),
    ("id-space", SOURCE + claim_toml(id='"src c1"'), "src c1", "lower-case"),
    ("id-missing", SOURCE + claim_toml(drop=("id",)), None, "id"),
    ("id-not-a-string", SOURCE + claim_toml(id="7"), None, "id"),
    ("missing-quote", SOURCE + claim_toml(drop=("quote",)), "src.c1", "quote"),
    ("empty-quote", SOURCE + claim_toml(quote='"   "'), "src.c1", "quote"),
    ("quote-not-a-string", SOURCE + claim_toml(quote="12"), "src.c1", "quote"),
    ("missing-claimed", SOURCE + claim_toml(drop=("claimed",)), "src.c1", "claimed"),
    ("missing-measure", SOURCE + claim_toml(drop=("measure",)), "src.c1", "measure"),
    ("measure-without-statistic", SOURCE + claim_toml(measure='{ model = "kmnist_gap" }'),
     "src.c1", "statistic"),
    ("measure-not-a-table", SOURCE + claim_toml(measure='"params"'), "src.c1", "statistic"),
    ("tolerance-negative", SOURCE + claim_toml(tolerance="{ abs = -1 }"), "src.c1", "tolerance"),
    ("tolerance-unknown-key", SOURCE + claim_toml(tolerance="{ pct = 1 }"), "src.c1", "tolerance"),
    ("tolerance-not-a-number", SOURCE + claim_toml(tolerance='{ rel = "1%" }'), "src.c1", "tolerance"),
    ("tolerance-not-a-table", SOURCE + claim_toml(tolerance="0.1"), "src.c1", "tolerance"),
    ("unknown-relation", SOURCE + claim_toml(relation='"~"'), "src.c1", "relation"),
    ("in-with-scalar", SOURCE + claim_toml(relation='"in"'), "src.c1", "[low, high]"),
    ("in-with-triple", SOURCE + claim_toml(relation='"in"', claimed="[1, 2, 3]"), "src.c1", "[low, high]"),
    ("unknown-marker", SOURCE + claim_toml(marker='"slow"'), "src.c1", "marker"),
    ("unknown-expect", SOURCE + claim_toml(expect='"maybe"'), "src.c1", "expect"),
    ("refuted-without-note", SOURCE + claim_toml(expect='"refuted"'), "src.c1", "note"),
    ("refuted-with-blank-note", SOURCE + claim_toml(expect='"refuted"', note='"  "'), "src.c1", "note"),
    ("unknown-claim-key", SOURCE + claim_toml(claimd="320"), "src.c1", "claimd"),
    ("claims-entry-not-a-table", "claims = [1]\n" + SOURCE, None, "table"),
    ("invalid-toml", SOURCE + "[[claims]]\nid = \n", None, "TOML"),
    ("summary-bad-line", SOURCE + '[[summary]]\nid = "sum"\nmodel = "kmnist_gap"\n'
     'lines = ["conv2d (Conv2D)  (None, 26, 26, 32)  320", "this is not a summary line"]\n',
     "sum", "neither"),
    ("summary-without-model", SOURCE + '[[summary]]\nid = "sum"\nlines = ["Total params: 1"]\n',
     "sum", "model"),
    ("summary-without-lines", SOURCE + '[[summary]]\nid = "sum"\nmodel = "kmnist_gap"\nlines = []\n',
     "sum", "lines"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("text", "claim_id", "word"), [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_malformed_file_names_file_claim_and_problem(tmp_path, text, claim_id, word):
    path = write(tmp_path, text)
    with pytest.raises(ClaimError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    problem = message[len(str(path)):]
    if claim_id is not None:
        assert repr(claim_id) in problem
    assert word in problem
    # load() reports the same problem
    with pytest.raises(ClaimError, match=r"claims\.toml"):
        load(tmp_path)


@pytest.mark.unit
def test_duplicate_id_across_files(tmp_path):
    first = write(tmp_path, SOURCE + claim_toml(), "a.toml")
    second = write(tmp_path, SOURCE.replace('id = "src"', 'id = "other"') + claim_toml(), "b.toml")
    assert len(load_file(first)) == len(load_file(second)) == 1
    with pytest.raises(ClaimError) as info:
        load(tmp_path)
    message = str(info.value)
    assert str(second) in message and str(first) in message
    assert "'src.c1'" in message and "duplicate" in message


@pytest.mark.unit
def test_duplicate_id_from_summary_and_claim(tmp_path):
    text = (SOURCE + claim_toml(id='"sum.total"')
            + '[[summary]]\nid = "sum"\nmodel = "kmnist_gap"\nlines = ["Total params: 1"]\n')
    write(tmp_path, text)
    with pytest.raises(ClaimError, match="duplicate"):
        load(tmp_path)


@pytest.mark.unit
def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(ClaimError, match="no claim files"):
        load(tmp_path)


@pytest.mark.unit
@pytest.mark.parametrize("text", [
    SOURCE + claim_toml(expect='"refuted"', note="5"),
    "claims = 5\n" + SOURCE,
    'summary = "x"\n' + SOURCE,
    SOURCE + '[[summary]]\nid = "sum"\nmodel = "kmnist_gap"\nlines = [5]\n',
], ids=["note-not-a-string", "claims-not-a-list", "summary-not-a-list", "summary-line-not-a-string"])
def test_wrong_types_raise_claim_error(tmp_path, text):
    with pytest.raises(ClaimError):
        load_file(write(tmp_path, text))


@pytest.mark.unit
def test_summary_id_is_validated(tmp_path):
    text = SOURCE + '[[summary]]\nid = "Bad Id"\nmodel = "kmnist_gap"\nlines = ["Total params: 1"]\n'
    with pytest.raises(ClaimError, match="Bad Id"):
        load_file(write(tmp_path, text))


KIND_SETTINGS = settings(max_examples=60, deadline=None)


def test_source_arithmetic_is_an_expression_over_constants(tmp_path):
    constants = '{ statistic = "expression", expr = "1 + 1" }'
    (claim,) = load_file(write(tmp_path, SOURCE + claim_toml(kind='"source_arithmetic"', measure=constants)))
    assert claim.kind == "source_arithmetic"
    measured = claim_toml(kind='"arithmetic"', measure='{ statistic = "expression", expr = "1 + 1" }')
    with pytest.raises(ClaimError, match="kind must be 'source_arithmetic'"):
        load_file(write(tmp_path, SOURCE + measured))


def test_a_claimed_value_in_quotes_is_refused_at_load(tmp_path):
    with pytest.raises(ClaimError, match="write a number without quotes"):
        load_file(write(tmp_path, SOURCE + claim_toml(claimed='"7968"')))


@pytest.mark.unit
@KIND_SETTINGS
@given(kind=st.one_of(st.text(max_size=30), st.sampled_from(registry.KINDS)))
def test_any_kind_is_valid_or_a_claim_error(kind):
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), SOURCE + claim_toml(kind=toml_string(kind)))
        if kind == "source_arithmetic":  # needs an expression over constants
            with pytest.raises(ClaimError, match="expression over constants only"):
                load_file(path)
        elif kind in registry.KINDS:
            (claim,) = load_file(path)
            assert claim.kind == kind
        else:
            with pytest.raises(ClaimError) as info:
                load_file(path)
            assert str(path) in str(info.value) and "'src.c1'" in str(info.value)


@pytest.mark.unit
@KIND_SETTINGS
@given(cid=st.one_of(st.text(max_size=20), st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,15}", fullmatch=True)))
def test_any_id_is_valid_or_a_claim_error(cid):
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory), SOURCE + claim_toml(id=toml_string(cid)))
        valid = bool(cid) and cid[0] in "abcdefghijklmnopqrstuvwxyz0123456789" and all(
            c in "abcdefghijklmnopqrstuvwxyz0123456789_.-" for c in cid)
        if valid:
            assert load_file(path)[0].id == cid
        else:
            with pytest.raises(ClaimError, match="lower-case"):
                load_file(path)


# --- printed Keras summaries -----------------------------------------------------------------

@pytest.mark.unit
def test_summary_expands_rows_and_totals(tmp_path):
    text = SOURCE + """
[[summary]]
id = "kmnist-gap"
model = "kmnist_gap"
lines = [
  "conv2d (Conv2D)              (None, 26, 26, 32)        320",
  "max_pooling2d_1 (MaxPooling2 (None, 5, 5, 64)          0",
  "Total params: 320",
]
"""
    claims = load_file(write(tmp_path, text))
    assert [c.id for c in claims] == [
        "kmnist-gap.conv2d.shape", "kmnist-gap.conv2d.params",
        "kmnist-gap.max_pooling2d_1.shape", "kmnist-gap.max_pooling2d_1.params",
        "kmnist-gap.total"]
    assert [c.claimed for c in claims] == [[26, 26, 32], 320, [5, 5, 64], 0, 320]
    assert [c.kind for c in claims] == ["output_shape", "parameter_count"] * 2 + ["parameter_count"]
    base = {"model": "kmnist_gap", "options": {}}
    assert [c.measure for c in claims] == [
        {**base, "statistic": "output_shape", "row": 0},
        {**base, "statistic": "layer_params", "row": 0},
        {**base, "statistic": "output_shape", "row": 1},
        {**base, "statistic": "layer_params", "row": 1},
        {**base, "statistic": "params", "which": "total"}]
    assert claims[0].quote == "conv2d (Conv2D)              (None, 26, 26, 32)        320"
    assert all(c.source.id == "src" and c.expect == "holds" and c.marker == "fast" for c in claims)


@pytest.mark.unit
def test_summary_input_rows_commas_and_options(tmp_path):
    text = SOURCE + """
[[summary]]
id = "fashion"
model = "fashion_dense"
options = { hidden = 784 }
lines = [
  "input_6 (InputLayer)         [(None, 28, 28, 1)]       0",
  "flatten_4 (Flatten)          (None, 614656)            0",
  "Total params: 6,148,106",
  "Trainable params: 6,148,106",
  "Non-trainable params: 0",
]
"""
    claims = load_file(write(tmp_path, text))
    by_id = {c.id: c for c in claims}
    assert by_id["fashion.input_6.shape"].claimed == [28, 28, 1]
    assert by_id["fashion.flatten_4.shape"].claimed == [614656]
    assert by_id["fashion.flatten_4.shape"].measure["row"] == 1
    assert by_id["fashion.total"].claimed == 6148106
    assert by_id["fashion.trainable"].measure["which"] == "trainable"
    assert by_id["fashion.non_trainable"].claimed == 0
    assert all(c.measure["options"] == {"hidden": 784} for c in claims)


# --- expressions -----------------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize(("expr", "names", "expected"), [
    ("1 + 2 * 3", {}, 7),
    ("(1 + 2) * 3", {}, 9),
    ("7 / 2", {}, 3.5),
    ("7 // 2", {}, 3),
    ("7 % 3", {}, 1),
    ("-x + 1", {"x": 4}, -3),
    ("a - b", {"a": 10, "b": 4}, 6),
    ("a / b", {"a": 8060, "b": 7968}, 8060 / 7968),
    ("a < b", {"a": 1, "b": 2}, True),
    ("a >= b", {"a": 1, "b": 2}, False),
    ("a == 3", {"a": 3}, True),
    ("1 < 2 < 3", {}, True),
    ("1 < 3 < 2", {}, False),
    ("a < b and b <= c", {"a": 1, "b": 2, "c": 2}, True),
    ("a < b and c < b", {"a": 1, "b": 2, "c": 2}, False),
    ("min(a, b) + max(a, b)", {"a": 3, "b": 5}, 8),
    ("abs(a - b)", {"a": 3, "b": 5}, 2),
    ("round(a / 3)", {"a": 10}, 3),
    ("round(a / 3, 2)", {"a": 10}, 3.33),
    ("int(2.9)", {}, 2),
    ("1.5e3", {}, 1500.0),
])
def test_evaluate_allows_arithmetic_comparisons_and_names(expr, names, expected):
    assert evaluate(expr, names) == expected


@pytest.mark.unit
@pytest.mark.parametrize("expr", [
    "__import__('os')",
    "10 ** 10 ** 10",
    "open('x')",
    "(1).__class__",
    "x.real",
    "import os",
    "lambda: 1",
    "(lambda: 1)()",
    "eval('1')",
    "getattr(x, 'real')",
    "unknown + 1",
    "'text'",
    "[1, 2]",
    "x or 1",
    "not x",
    "x != 1",
    "1 if x else 2",
    "round(x, ndigits=1)",
    "x[0]",
    "",
    "1 +",
])
def test_evaluate_rejects_everything_else(expr):
    with pytest.raises(MeasureError):
        evaluate(expr, {"x": 1})


# --- verdict comparison ----------------------------------------------------------------------

def claim(claimed, relation="==", **tolerance) -> Claim:
    source = Source("src", "t", "a", "v", "d")
    return Claim("src.c", source, "parameter_count", "q", claimed, {"statistic": "params"},
                 tolerance, relation)


@pytest.mark.unit
@pytest.mark.parametrize(("c", "measured", "expected"), [
    (claim(100), 100, True),
    (claim(100), 100.0, True),
    (claim(100), 101, False),
    (claim(0.1 + 0.2), 0.3, True),  # float noise is not a refutation
    (claim(100, abs=1), 101, True),
    (claim(100, abs=1), 99, True),
    (claim(100, abs=1), 101.5, False),
    (claim(100, rel=0.01), 101, True),
    (claim(100, rel=0.01), 98.9, False),
    (claim(-200, rel=0.01), -202, True),
    (claim(100, abs=1, rel=0.01), 102, True),
    (claim(100, abs=1, rel=0.01), 102.5, False),
    (claim([26, 26, 32]), [26, 26, 32], True),
    (claim([26, 26, 32]), (26, 26, 32), True),
    (claim([26, 26, 32]), [26, 32, 26], False),
    (claim([126]), [350], False),
    (claim(True), True, True),
    (claim(True), False, False),
    (claim(False), False, True),
    (claim(10000, "<"), 9999, True),
    (claim(10000, "<"), 10000, False),
    (claim(10000, "<="), 10000, True),
    (claim(0.99, ">="), 0.99, True),
    (claim(0.99, ">="), 0.98, False),
    (claim(0.5, ">"), 0.5, False),
    (claim([1, 2], "in"), 1.5, True),
    (claim([1, 2], "in"), 1, True),
    (claim([1, 2], "in"), 2, True),
    (claim([1, 2], "in"), 2.5, False),
    (claim([1, 2], "in"), 0.5, False),
    (claim([100, 200], "in", rel=0.1), 215, True),
    (claim([100, 200], "in", rel=0.1), 221, False),
    (claim([100, 200], "in", abs=5), 95, True),
    (claim([100, 200], "in", abs=5), 94, False),
])
def test_compare(c, measured, expected):
    assert compare(c, measured) is expected


SOURCES = sources.directory()


@pytest.mark.unit
def test_quoted_in_keeps_fragments_in_order():
    text = "alpha beta gamma delta"
    assert sources.quoted_in("beta   gamma", text)
    assert sources.quoted_in("alpha [...] delta", text)
    assert not sources.quoted_in("delta [...] alpha", text)
    assert not sources.quoted_in("beta delta", text)


@pytest.mark.unit
def test_every_quote_is_word_for_word_in_its_source():
    if not (SOURCES / "README.md").is_file():
        pytest.skip(f"the source documents are not at {SOURCES}: set LEAN_CNN_SOURCES to their folder")
    texts = sources.texts()
    claims = registry.registry()
    titles = {claim.source.title for claim in claims}
    assert titles <= texts.keys(), f"sources missing from {SOURCES / 'README.md'}: {titles - texts.keys()}"
    misquoted = [f"{claim.id}: {claim.quote!r}" for claim in claims
                 if not sources.quoted_in(claim.quote, texts[claim.source.title])]
    assert not misquoted, "quotes not found word for word in their source:\n" + "\n".join(misquoted)

"""Code listings as claims: a source's code lines pasted verbatim in a ``[[listing]]`` block
and expanded here into one claim per checkable argument of each layer call and per
hyper-parameter, the code-listing twin of a printed summary's ``[[summary]]`` block.

A block names the ``model`` (and ``options``) its layer lines build, and optionally the
``recipe`` its hyper-parameter lines set::

    [[listing]]
    id = "kmnist-gap.code"
    model = "kmnist_gap"
    recipe = "kmnist_gap"
    lines = [
      "no_classes = 10",
      "model.add(Conv2D(no_classes, kernel_size=(3, 3), padding='same', activation='relu'))",
      { line = "head.add together(layers.Conv2D(32, (3, iii)))", layers = 1, unchecked = "spun text" },
    ]

Each line is parsed with ``ast`` (a trailing ``,``, ``;``, ``)`` or ``]`` of an enclosing
``Sequential([...])`` is dropped until it parses). A line holding a Keras layer call is the
next layer of the model, in Keras' order, and gives ``<id>.<row>.type`` plus one claim per
argument the call sets (``filters``, ``kernel_size``, ``strides``, ``padding``,
``activation``, ``pool_size``, ``units``, ``rate``, ``input_shape``, ``kernel_regularizer``)
and per Keras default that decides the layer's arithmetic (a pool's 2x2, a convolution's
'valid' padding and linear activation), measured by the ``layer_config`` statistic. An
assignment binds a name for later lines. A keyword of a call (``fit``, ``compile``, an
optimizer, a callback), an assignment or a dataset method (``.batch(n)``) whose key ``fields``
maps to a recipe field is a hyper-parameter: ``<id>.<field>`` checks it against the recipe
table (``recipe_data``, the code as the registry transcribed it) and ``<id>.<field>.used``
against the recipe the trainer ran (``recipe``, from the result file), unless a ``[[claims]]``
entry of the file already checks that very measure. A claim's quote is its line, preceded by
the lines whose bindings it used (joined with ``[...]``), so the quote holds the evidence.

Names the lines cannot compute come from ``names`` (``{ value, quote }``: the value and the
source's words that give it); names whose value varies or was garbled (a grid's loop
variable, a spun word such as ``iii``) are listed in ``unresolved`` with the reason, and an
argument that uses one is left unchecked with that reason. A line that does not parse must
be given as ``{ line, unchecked, layers }``: the reason, and how many layers it adds.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claims.keras_code import (
    ARITHMETIC,
    DEFAULTS,
    FIELDS,
    IGNORED_ARGUMENTS,
    LAYERS,
    LIBRARIES,
    OPTIMIZERS,
    PLUMBING,
    POOLS,
    POSITIONAL,
    TRAINER_SETTINGS,
    callee,
    claimable,
    normalise,
    parse_line,
    root_name,
)
from claims.registry import Claim, ClaimError, Source
from claims.sources import fragments
from training.recipes import DOCUMENTATION_KEYS

_KEYS = {"id", "model", "options", "recipe", "lines", "names", "unresolved", "fields", "first_layer"}


@dataclass(frozen=True)
class UncheckedLine:
    """A listing line, or one argument of it, that no claim checks, and why."""

    source: Source
    listing: str
    quote: str
    reason: str


@dataclass(frozen=True)
class Unresolved:
    """A value the code does not state in words this suite can read (spun, a loop variable)."""

    text: str
    reason: str


@dataclass(frozen=True)
class Value:
    value: Any
    lines: frozenset[int]  # the listing lines whose bindings it used
    quotes: tuple[str, ...] = ()  # source words from ``names``


class _Block:
    """One ``[[listing]]`` block being expanded: its bindings and its outputs."""

    def __init__(self, raw: dict[str, Any], source: Source, path: Path) -> None:
        self.raw, self.source, self.path = raw, source, path
        self.id: str = raw["id"]
        self.bindings: dict[str, Value] = {}
        self.names = {k: Value(v["value"], frozenset(), (v["quote"],))
                      for k, v in raw.get("names", {}).items()}
        self.unresolved: dict[str, str] = raw.get("unresolved", {})
        self.fields = {**FIELDS, **raw.get("fields", {})}
        self.texts: list[str] = []
        self.used: set[int] = set()
        self.claims: list[Claim] = []
        self.skipped: list[UncheckedLine] = []
        self.settings: dict[str, tuple[Value, list[int], str]] = {}
        self.keys: dict[str, str] = {}  # recipe field -> the code's key that first set it

    def _skip(self, text: str, reason: str) -> None:
        self.skipped.append(UncheckedLine(self.source, self.id, " ".join(text.split()), reason))

    def fail(self, problem: str) -> None:
        raise ClaimError(self.path, self.id, problem)

    # -- values --------------------------------------------------------------------------------
    def resolve(self, node: ast.AST) -> Value | Unresolved:
        text = ast.unparse(node)
        if text in self.unresolved:
            return Unresolved(text, self.unresolved[text])
        if text in self.bindings:
            return self.bindings[text]
        if text in self.names:
            return self.names[text]
        if isinstance(node, ast.Constant):
            return Value(node.value, frozenset())
        if isinstance(node, (ast.Tuple, ast.List)):
            return self._combine([self.resolve(e) for e in node.elts], list)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._combine([self.resolve(node.operand)], lambda v: -v[0])
        if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
            op = ARITHMETIC[type(node.op)]
            return self._combine([self.resolve(node.left), self.resolve(node.right)], lambda v: op(*v))
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Attribute) and root_name(node) in LIBRARIES:
            return Value(node.attr, frozenset())  # a library reference: activations.relu, losses.mse
        if isinstance(node, ast.Call):
            func = callee(node)
            if func in OPTIMIZERS:
                return Value(func.lower(), frozenset())
            if func == "l1_l2":
                return self._combine([self.resolve(a) for a in node.args], list)
        self.fail(f"cannot read {text!r} in a listing line: bind it in an earlier line, give it in "
                  f"names = {{ {text!r} = {{ value = ..., quote = \"...\" }} }}, or list it in "
                  f"unresolved with the reason")
        raise AssertionError  # unreachable

    def _subscript(self, node: ast.Subscript) -> Value | Unresolved:
        base = self.resolve(node.value)
        if isinstance(node.slice, ast.Slice):
            parts = [self.resolve(p) if p is not None else Value(None, frozenset())
                     for p in (node.slice.lower, node.slice.upper)]
            return self._combine([base, *parts], lambda v: list(v[0][v[1]:v[2]]))
        return self._combine([base, self.resolve(node.slice)], lambda v: v[0][v[1]])

    @staticmethod
    def _combine(parts: list[Value | Unresolved], fn) -> Value | Unresolved:
        for part in parts:
            if isinstance(part, Unresolved):
                return part
        lines = frozenset().union(*(p.lines for p in parts)) if parts else frozenset()
        quotes = tuple(dict.fromkeys(q for p in parts for q in p.quotes))
        return Value(fn([p.value for p in parts]), lines, quotes)

    # -- lines ---------------------------------------------------------------------------------
    def quote(self, index: int, value: Value) -> str:
        earlier = [self.texts[i] for i in sorted(value.lines | {index})]
        return " [...] ".join(dict.fromkeys([*value.quotes, *earlier]))

    def expand(self) -> None:
        row = self.raw.get("first_layer", 0)
        first_row = row
        layer_lines: list[int] = []
        for index, entry in enumerate(self.raw["lines"]):
            text, reason, layers = self._entry(entry)
            self.texts.append(text)
            if reason is not None:
                self._skip(text, reason)
                self.used.add(index)
                layer_lines += [index] if layers else []
                row += layers
                continue
            tree = parse_line(text)
            if tree is None:
                self.fail(f"line {index + 1} does not parse as Python: {text!r}; give it as "
                          f"{{ line = ..., unchecked = \"why\", layers = N }}")
            calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and callee(n) in LAYERS]
            if len(calls) > 1:
                self.fail(f"line {index + 1} holds {len(calls)} layer calls; paste one layer a line: "
                          f"{text!r}")
            if calls:
                self._layer(index, row, calls[0])
                layer_lines.append(index)
                row += 1
            else:
                self._statement(index, tree)
        if layer_lines:
            self._count(layer_lines, first_row, row)
        self._settings_to_claims()
        idle = [self.texts[i] for i in range(len(self.texts)) if i not in self.used]
        if idle:
            self.fail(f"lines that check nothing (no layer, no mapped setting, no binding a checked line "
                      f"uses): {idle}; map them in fields, or drop them from the listing")

    def _entry(self, entry: Any) -> tuple[str, str | None, int]:
        if isinstance(entry, str) and entry.strip():
            return entry, None, 0
        ok = (isinstance(entry, dict) and set(entry) <= {"line", "unchecked", "layers"}
              and isinstance(entry.get("line"), str) and isinstance(entry.get("unchecked"), str)
              and entry["unchecked"].strip() and isinstance(entry.get("layers", 0), int))
        if not ok:
            self.fail(f"a listing line is a string, or {{ line, unchecked, layers }} for a line left "
                      f"unchecked (its reason, and the layers it adds); got {entry!r}")
        return entry["line"], entry["unchecked"], entry.get("layers", 0)

    def _layer(self, index: int, row: int, call: ast.Call) -> None:
        name = callee(call)
        keras = LAYERS[name]
        given: dict[str, ast.AST] = {}
        for param, arg in zip(POSITIONAL.get(name, ()), call.args, strict=False):
            given[param] = arg
        if len(call.args) > len(POSITIONAL.get(name, ())):
            self.fail(f"line {index + 1}: {name} takes at most {len(POSITIONAL.get(name, ()))} "
                      f"positional arguments here: {self.texts[index]!r}")
        given.update({("input_shape" if k.arg == "shape" else k.arg): k.value
                      for k in call.keywords if k.arg not in IGNORED_ARGUMENTS})
        base = {"statistic": "layer_config", "model": self.raw["model"],
                "options": self.raw.get("options", {}), "row": row}
        self.used.add(index)
        self._claim(f"{row}.type", "layer", self.texts[index], [keras], {**base, "attribute": "type"})
        for param, node in given.items():
            value = self.resolve(node)
            if isinstance(value, Unresolved):
                self._skip(self.texts[index], f"{param}={value.text}: {value.reason}")
                continue
            self.used |= value.lines
            claimed, extra = normalise(param, value.value)
            self._claim(f"{row}.{param}", "layer", self.quote(index, value), claimed,
                        {**base, "attribute": param, **extra})
        defaults = dict(DEFAULTS.get(name, {}))
        if name in POOLS and "strides" not in given:
            pool = self.resolve(given["pool_size"]) if "pool_size" in given else Value([2, 2], frozenset())
            if isinstance(pool, Value):
                defaults["strides"] = pool.value
        for param, default in defaults.items():
            if param not in given:
                claimed, _ = normalise(param, default)
                self._claim(f"{row}.{param}", "layer", self.texts[index], claimed,
                            {**base, "attribute": param}, note=f"Keras' default for {name}: {default!r}")

    def _count(self, layer_lines: list[int], first: int, end: int) -> None:
        quote = " [...] ".join(dict.fromkeys([self.texts[layer_lines[0]], self.texts[layer_lines[-1]]]))
        self._claim("layers", "layer", quote, end - first,
                    {"statistic": "layer_config", "model": self.raw["model"],
                     "options": self.raw.get("options", {}), "row": first, "attribute": "count"},
                    note="the Keras layers the listing's lines add, against the layers the builder has "
                         "from the listing's first")

    def _statement(self, index: int, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(index, target, node.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self._call_settings(index, node)

    def _bind(self, index: int, target: ast.AST, value: ast.AST) -> None:
        pairs = isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
        if pairs and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts, strict=True):
                self._bind(index, t, v)
            return
        key = ast.unparse(target)
        if key in self.fields:
            self._setting(index, key, value)
        resolved = self._try(value)
        if isinstance(resolved, Value):
            self.bindings[key] = Value(resolved.value, resolved.lines | {index}, resolved.quotes)

    def _try(self, node: ast.AST) -> Value | Unresolved | None:
        """Resolve a binding's value if it can be; a binding no checked line uses need not."""
        try:
            return self.resolve(node)
        except ClaimError:
            return None

    def _call_settings(self, index: int, call: ast.Call) -> None:
        func = callee(call)
        for keyword in call.keywords:
            key = "learning_rate" if keyword.arg == "lr" else keyword.arg
            if key in self.fields:
                self._setting(index, key, keyword.value)
            elif key in TRAINER_SETTINGS.get(func, ()):
                self._trainer_setting(index, func, key, keyword.value)
            elif key not in PLUMBING:
                self._skip(self.texts[index], f"{key}={ast.unparse(keyword.value)}: no recipe field holds it")
        if isinstance(call.func, ast.Attribute) and call.args and f"{func}()" in self.fields:
            self._setting(index, f"{func}()", call.args[0])
        given = {"learning_rate" if k.arg == "lr" else k.arg for k in call.keywords}
        for key, default in OPTIMIZERS.get(func, {}).items():
            if key not in given and key in self.fields:
                self._record(index, key, Value(default, frozenset()),
                             f"Keras' default for {func}(): {default!r}")

    def _trainer_setting(self, index: int, func: str, key: str, node: ast.AST) -> None:
        """An argument every run here shares (Adam's betas): checked against the trainer's."""
        value = self.resolve(node)
        if isinstance(value, Unresolved):
            self._skip(self.texts[index], f"{key}={value.text}: {value.reason}")
        else:
            how = ("observed in what a real trainer of two seeds feeds its steps over two epochs: "
                   "every training image once an epoch, in an order new each epoch and each run"
                   if key == "shuffle" else
                   "which is Keras' default for every recipe (training/keras.py)")
            self._claim(f"trainer.{key}", "recipe", self.quote(index, value), claimable(value.value),
                        {"statistic": "trainer_setting", "name": key},
                        f"the code's {func}({key}=...) against the trainer's, {how}")
        self.used |= {index}

    def _setting(self, index: int, key: str, node: ast.AST) -> None:
        value = self.resolve(node)
        if isinstance(value, Unresolved):
            self._skip(self.texts[index], f"{key}={value.text}: {value.reason}")
            self.used.add(index)
            return
        self._record(index, key, value, "")

    def _record(self, index: int, key: str, value: Value, note: str) -> None:
        field = self.fields[key]
        self.keys.setdefault(field, key)
        if field in self.settings:
            old, indices, old_note = self.settings[field]
            if old.value != value.value:
                self.fail(f"the listing sets recipe field {field!r} to {old.value!r} and to {value.value!r}")
            quotes = tuple(dict.fromkeys(old.quotes + value.quotes))
            merged = Value(old.value, old.lines | value.lines, quotes)
            self.settings[field] = (merged, [*indices, index], old_note or note)
        else:
            self.settings[field] = (value, [index], note)
        self.used |= value.lines | {index}

    def _settings_to_claims(self) -> None:
        if self.settings and not isinstance(self.raw.get("recipe"), str):
            self.fail(f"lines set hyper-parameters {sorted(self.settings)}: the block needs 'recipe', "
                      f"the recipe they set")
        for field, (value, indices, note) in self.settings.items():
            note = note or f"the code's {self.keys[field]} is the recipe's {field!r}"
            lines = value.lines | set(indices[1:])
            quote = self.quote(indices[0], Value(value.value, frozenset(lines), value.quotes))
            claimed = claimable(value.value)
            spec = {"recipe": self.raw["recipe"], "field": field}
            checks = ((field, "recipe_data", "fast"), (f"{field}.used", "recipe", "gpu"))
            if field in DOCUMENTATION_KEYS:  # no trainer code reads it: a '.used' check would be vacuous
                checks = checks[:1]
            for suffix, statistic, marker in checks:
                how = {"statistic": statistic, **spec}
                if isinstance(value.value, str):  # claimed as a one-item list
                    how = {"statistic": "as_list", "of": how}
                self._claim(suffix, "recipe", quote, claimed, how, note, marker)

    def _claim(self, suffix: str, kind: str, quote: str, claimed: Any, measure: dict[str, Any],
               note: str = "", marker: str = "fast") -> None:
        quote = " ".join(quote.split())  # whitespace does not count in a quote
        self.claims.append(Claim(f"{self.id}.{suffix}", self.source, kind, quote, claimed, measure,
                                 marker=marker, note=note))


def claims(raw: Any, source: Source, path: Path, explicit: list[Claim]) -> list[Claim]:
    """The claims of one ``[[listing]]`` block, less those a ``[[claims]]`` entry already makes."""
    block = _expanded(raw, source, path)
    return [c for c in block.claims if not any(_same_check(c, e) for e in explicit)]


def _same_check(mine: Claim, other: Claim) -> bool:
    """Does ``other`` already check this: the same measure, quoting the same code?"""
    if other.measure not in (mine.measure, mine.measure.get("of")):
        return False
    return any(f in g or g in f for f in fragments(other.quote) for g in fragments(mine.quote))


def unchecked(raw: Any, source: Source, path: Path) -> list[UncheckedLine]:
    """The lines and arguments of one block that no claim checks, each with its reason."""
    return _expanded(raw, source, path).skipped


def _expanded(raw: Any, source: Source, path: Path) -> _Block:
    lid = raw.get("id") if isinstance(raw, dict) else None
    if not (isinstance(lid, str) and lid and lid == lid.lower() and " " not in lid):
        raise ClaimError(path, None, f"a [[listing]] needs an id of lower-case letters, digits, '.', "
                                     f"'_' or '-', got {lid!r}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ClaimError(path, lid, f"unknown keys {unknown} in [[listing]]; valid: {sorted(_KEYS)}")
    if not isinstance(raw.get("model"), str):
        raise ClaimError(path, lid, "a listing needs 'model', the builder its layer lines build")
    if not (isinstance(raw.get("lines"), list) and raw["lines"]):
        raise ClaimError(path, lid, "a listing needs 'lines', the source's code lines word for word")
    names = raw.get("names", {})
    if not (isinstance(names, dict) and all(isinstance(v, dict) and set(v) == {"value", "quote"}
                                            for v in names.values())):
        raise ClaimError(path, lid, "names must be a table of "
                                    "{ value = ..., quote = \"the source's words\" }")
    block = _Block(raw, source, path)
    block.expand()
    return block

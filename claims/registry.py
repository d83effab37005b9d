"""The claims registry: one TOML file per source under ``claims/data/``, loaded and validated.

A claim is data: its source, the exact quote, the kind, what to measure, the claimed value,
the tolerance, its marker, and the verdict the registry expects (``refuted`` for the
contradictions this project found, with the arithmetic in ``note``). A claim that only
compares the source's own numbers with each other (an expression over constants) is of kind
``source_arithmetic``: a consistency check of the text, reported apart from measurements. Printed Keras
summaries are kept as their printed lines (``[[summary]]``) and expanded here into one
output-shape claim and one parameter claim per row, plus the three totals, so the quote
and the claimed value can never drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import tomllib

from training.recipes import DATA_DIR, RecipeError, read_toml, recipe_tables

KINDS = ("parameter_count", "output_shape", "ratio", "arithmetic", "source_arithmetic", "dataset",
         "recipe", "accuracy", "comparison", "pruning", "external", "layer")
MARKERS = ("fast", "gpu", "data")
EXPECTATIONS = ("holds", "refuted")
RELATIONS = ("==", "<", "<=", ">", ">=", "in")
_DEFAULT_MARKER = {"dataset": "data", "recipe": "gpu", "accuracy": "gpu"}
_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


class ClaimError(ValueError):
    """A malformed claim file: names the file, the claim and what is wrong."""

    def __init__(self, path: Path | str, claim_id: str | None, problem: str) -> None:
        where = f"{path}" + (f", claim {claim_id!r}" if claim_id else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    author: str
    venue: str
    dataset: str


@dataclass(frozen=True)
class Claim:
    id: str
    source: Source
    kind: str
    quote: str
    claimed: Any
    measure: dict[str, Any]
    tolerance: dict[str, float] = field(default_factory=dict)
    relation: str = "=="
    marker: str = "fast"
    expect: str = "holds"
    note: str = ""
    #: The claim file it was loaded from, for messages.
    file: str = ""

    def as_expected(self, verdict: str) -> bool:
        """Only decided verdicts (the ones the registry can expect) are held to the expectation."""
        return verdict not in EXPECTATIONS or verdict == self.expect


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _plain_claimed(x: Any) -> bool:
    if isinstance(x, list):
        return all(_is_number(v) or isinstance(v, str) for v in x)
    return _is_number(x) or isinstance(x, bool)


def _require(ok: bool, path: Path, claim_id: str | None, problem: str) -> None:
    if not ok:
        raise ClaimError(path, claim_id, problem)


_CLAIM_KEYS = {"id", "kind", "quote", "claimed", "measure", "tolerance", "relation", "marker",
               "expect", "note"}


def _claim(raw: dict[str, Any], source: Source, path: Path) -> Claim:
    cid = raw.get("id")
    _require(isinstance(cid, str) and bool(_ID.match(cid)), path, None,
             f"claim id {cid!r} must be a lower-case string of letters, digits, '.', '_' or '-'")
    unknown = sorted(set(raw) - _CLAIM_KEYS)
    _require(not unknown, path, cid, f"unknown keys {unknown}; valid keys: {sorted(_CLAIM_KEYS)}")
    for key in ("kind", "quote", "claimed", "measure"):
        _require(key in raw, path, cid, f"missing required key {key!r}")
    kind = raw["kind"]
    _require(kind in KINDS, path, cid, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    _require(isinstance(raw["quote"], str) and raw["quote"].strip() != "", path, cid,
             "quote must be the source's exact words, a non-empty string")
    measure = raw["measure"]
    _require(isinstance(measure, dict) and isinstance(measure.get("statistic"), str), path, cid,
             "measure must be a table with a 'statistic' naming what to measure")
    tolerance = raw.get("tolerance", {})
    _require(isinstance(tolerance, dict) and set(tolerance) <= {"abs", "rel"}
             and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                     for v in tolerance.values()),
             path, cid, f"tolerance must be a table of 'abs' and/or 'rel' >= 0, got {tolerance!r}")
    relation = raw.get("relation", "==")
    _require(relation in RELATIONS, path, cid, f"relation {relation!r} is not one of {RELATIONS}")
    if relation == "in":
        claimed = raw["claimed"]
        _require(isinstance(claimed, list) and len(claimed) == 2, path, cid,
                 "relation 'in' needs claimed = [low, high]")
    claimed = raw["claimed"]
    _require(_plain_claimed(claimed), path, cid,
             f"claimed must be a number, a boolean or a list of numbers or strings, got {claimed!r}"
             + (" (write a number without quotes)" if isinstance(claimed, str) else ""))
    _require(relation in ("==", "in") or _is_number(claimed), path, cid,
             f"relation {relation!r} needs a number as claimed, got {claimed!r}")
    constants_only = measure["statistic"] == "expression" and not measure.get("refs")
    _require(constants_only == (kind == "source_arithmetic"), path, cid,
             "an expression over constants only compares the source's own numbers: its kind must be "
             "'source_arithmetic'" if constants_only else
             "kind 'source_arithmetic' is for an expression over constants only (no refs)")
    marker = raw.get("marker", _DEFAULT_MARKER.get(kind, "fast"))
    _require(marker in MARKERS, path, cid, f"marker {marker!r} is not one of {MARKERS}")
    expect = raw.get("expect", "holds")
    _require(expect in EXPECTATIONS, path, cid, f"expect {expect!r} is not one of {EXPECTATIONS}")
    note = raw.get("note", "")
    _require(isinstance(note, str), path, cid, "note must be a string")
    _require(expect != "refuted" or bool(note.strip()), path, cid,
             "a claim expected refuted needs a note with the arithmetic that refutes it")
    return Claim(cid, source, kind, raw["quote"], raw["claimed"], measure, tolerance, relation,
                 marker, expect, note)


# "name (Type)  (None, a, b)  params"; Keras cuts long type names short, closing paren included.
_SUMMARY_ROW = re.compile(r"^(?P<name>\S+) \((?P<type>[^()]*?)\)?\s+"
                          r"\[?\((?P<shape>None(?:, \d+)*)\)\]?\s+(?P<params>[\d,]+)$")
_TOTAL = re.compile(r"^(?P<which>Total|Trainable|Non-trainable) params: (?P<count>[\d,]+)$")


def _summary_claims(raw: dict[str, Any], source: Source, path: Path) -> list[Claim]:
    """Expand a printed Keras summary into per-row shape and parameter claims and totals."""
    sid = raw.get("id") if isinstance(raw, dict) else None
    _require(isinstance(sid, str) and bool(_ID.match(sid)), path, None,
             f"a [[summary]] needs an id of lower-case letters, digits, '.', '_' or '-', got {sid!r}")
    _require(isinstance(raw.get("model"), str), path, sid, "a summary needs 'model'")
    _require(isinstance(raw.get("lines"), list) and raw["lines"]
             and all(isinstance(line, str) for line in raw["lines"]), path, sid,
             "a summary needs 'lines', the printed rows and totals as strings")
    base = {"model": raw["model"], "options": raw.get("options", {})}
    claims, row = [], 0
    for line in raw["lines"]:
        line = line.strip()
        if m := _SUMMARY_ROW.match(line):
            name = m["name"]
            shape = [int(s) for s in m["shape"].split(", ")[1:]]
            claims.append(Claim(f"{sid}.{name}.shape", source, "output_shape", line, shape,
                                {**base, "statistic": "output_shape", "row": row}))
            claims.append(Claim(f"{sid}.{name}.params", source, "parameter_count", line,
                                int(m["params"].replace(",", "")),
                                {**base, "statistic": "layer_params", "row": row}))
            row += 1
        elif m := _TOTAL.match(line):
            which = {"Total": "total", "Trainable": "trainable", "Non-trainable": "non_trainable"}[m["which"]]
            claims.append(Claim(f"{sid}.{which}", source, "parameter_count", line,
                                int(m["count"].replace(",", "")),
                                {**base, "statistic": "params", "which": which}))
        else:
            raise ClaimError(path, sid, f"summary line is neither a layer row nor a total: {line!r}")
    return claims


def load_file(path: Path) -> list[Claim]:
    try:
        data = read_toml(path)
    except tomllib.TOMLDecodeError as error:
        raise ClaimError(path, None, f"not valid TOML: {error}") from None
    raw_source = data.get("source")
    _require(isinstance(raw_source, dict), path, None, "missing the [source] table")
    missing = [k for k in ("id", "title", "author", "venue", "dataset") if k not in raw_source]
    _require(not missing, path, None, f"[source] lacks {missing}")
    source = Source(**{k: raw_source[k] for k in ("id", "title", "author", "venue", "dataset")})
    unknown = sorted(set(data) - {"source", "claims", "summary", "recipes", "unchecked", "listing"})
    _require(not unknown, path, None, f"unknown top-level tables {unknown}")
    for table in ("summary", "claims", "unchecked", "listing"):
        _require(isinstance(data.get(table, []), list), path, None,
                 f"'{table}' must be an array of tables: write [[{table}]]")
    claims: list[Claim] = []
    for raw in data.get("summary", []):
        claims += _summary_claims(raw, source, path)
    for raw in data.get("claims", []):
        _require(isinstance(raw, dict), path, None, "each [[claims]] entry must be a table")
        claims.append(_claim(raw, source, path))
    from claims import listing  # code listings expand into claims (claims/listing.py)

    explicit = list(claims)
    for raw in data.get("listing", []):
        claims += listing.claims(raw, source, path, explicit)
    for raw in data.get("unchecked", []):
        _unchecked(raw, source, path)
    return [replace(c, file=str(path)) for c in claims]


@dataclass(frozen=True)
class Unchecked:
    """A checkable-looking statement of a source that no claim checks, and why not."""

    source: Source
    quote: str
    reason: str


def _unchecked(raw: Any, source: Source, path: Path) -> Unchecked:
    _require(isinstance(raw, dict) and set(raw) == {"quote", "reason"}, path, None,
             f"each [[unchecked]] entry needs exactly 'quote' and 'reason', got {raw!r}")
    _require(all(isinstance(raw[k], str) and raw[k].strip() for k in ("quote", "reason")), path, None,
             f"[[unchecked]] quote and reason must be non-empty strings: {raw!r}")
    return Unchecked(source, raw["quote"], raw["reason"])


def unchecked(directory: Path = DATA_DIR) -> list[Unchecked]:
    """Every source's statements that are left unchecked on purpose, each with its reason."""
    out = []
    for path in sorted(directory.glob("*.toml")):
        data = read_toml(path)
        raw_source = data["source"]
        source = Source(**{k: raw_source[k] for k in ("id", "title", "author", "venue", "dataset")})
        out += [_unchecked(raw, source, path) for raw in data.get("unchecked", [])]
        from claims import listing  # a listing's lines and arguments left unchecked, with why

        out += [Unchecked(source, u.quote, u.reason)
                for raw in data.get("listing", []) for u in listing.unchecked(raw, source, path)]
    return out


def load(directory: Path = DATA_DIR) -> list[Claim]:
    """Every claim of every source file, ids unique across the registry."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ClaimError(directory, None, "no claim files (*.toml) found")
    claims: list[Claim] = []
    seen: dict[str, Path] = {}
    for path in files:
        for claim in load_file(path):
            _require(claim.id not in seen, path, claim.id, f"duplicate id (also in {seen.get(claim.id)})")
            seen[claim.id] = path
            claims.append(claim)
    return claims


def recipes(directory: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """The training recipes the sources give, by name (training.recipes reads them)."""
    try:
        return recipe_tables(directory)
    except RecipeError as error:
        raise ClaimError(directory, None, str(error)) from None


@cache
def registry() -> tuple[Claim, ...]:
    """The default registry, loaded once per process."""
    return tuple(load())

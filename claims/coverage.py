"""Is every checkable sentence of a source accounted for?

A source is split into units: the sentences of its prose and the statements of its code
listings. A unit is *checkable* when it states a number, names a layer, sets a
hyper-parameter or makes a comparison; a checkable unit must be quoted (in part or whole) by
a claim, or listed under ``[[unchecked]]`` in its source's TOML with the reason it is not
checked (an opinion, a citation, a figure that is not in the text). What is not a statement
at all is skipped by rule: headings, figure captions, reference lists, links, imports and
comments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from claims.sources import fragments, squeeze


def _words(alternatives: str) -> re.Pattern[str]:
    r"""Any of the whitespace-separated regex ``alternatives`` as a whole word, case ignored
    (a space inside one is written ``\s`` or ``[\s_-]``)."""
    return re.compile(r"\b(" + "|".join(alternatives.split()) + r")\b", re.I)


#: What makes a unit checkable, by category; the first that matches names it. Case is ignored,
#: a layer may be named as code or in words ("MaxPooling2D", "max pooling", "Global Average
#: Pooling", "dense layers"), words are matched in their inflected forms ("dropouts", "reduces",
#: "decreasing") and numbers written out count as numbers ("two iterations").
CHECKABLE: dict[str, re.Pattern[str]] = {
    "layer": _words(r"""conv(2d|olution\w*|nets?|s)? dense (global[\s_-]?)?(max|average|avg)[\s_-]?pool\w*
                    pool(ing)?[\s_-]?layers? flatten\w* dropouts? batch[\s_-]?norm\w* activations? softmax
                    sigmoid relu (hidden|output|input|fully[\s-]connected)\slayers? neurons?"""),
    "hyper-parameter": _words(r"""learning[\s_]rates? batch[\s_]size epochs? optimi[sz]\w* adam sgd kernels?
                              filters? strides? padding patience momentum loss(es)? regulari[sz]\w*
                              initiali[sz]\w* l1 l2 weight\sdecay"""),
    "preprocessing": _words(r"""normali[sz]\w* standardi[sz]\w* shuffl\w* one-hot encod\w* rescal\w* resiz\w*
                            augment\w* re-?cent(er|re)\w* cent(er|re)\sof\smass"""),
    # a numeric literal, not part of a name (modelDense0) and not a citation ([1, 2]), or a number word
    "number": re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*%?(?!\w)|" + _words(
        r"""two three four five six seven eight nine ten eleven twelve \w+teen twenty thirty forty fifty
        sixty seventy eighty ninety hundreds? thousands? millions? twice half double[sd]?""").pattern, re.I),
    "comparison": _words(r"""better worse faster slower higher lower fewer than outperform\w* beat(s|ing)?
                         best worst improv\w* increas\w* decreas\w* reduc\w* drop(s|ped|ping)? smaller larger
                         bigger same similar\w* identical equal\w* close\sto exceed\w* surpass\w*
                         compared\s(to|with)"""),
}
_CODE = re.compile(r"^\s*(#|import\s|from\s+\S+\s+import\s|def\s|return\s|@|"
                   r"[\w.\[\]]+(\s*,\s*[\w.]+)*\s*=[^=]|[\w.]+\.(add|compile|fit|evaluate|summary|append|show|plot|figure)\b|[\w.]+\(.*\)\s*$)")
_STATEMENT_BREAK = re.compile(r"\s{2,}|(?<=\))\s+(?=[A-Za-z_][\w.]*\s*(?:=[^=]|\.\w|\())")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(\[])")
_CITATION = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
#: Code that sets nothing a claim could check: plotting, printing, inspecting.
_PLUMBING = re.compile(r"^(for|if|else|def|return)\b|^[)\]]|plt\.|\bax\.|\baxes\b|\bfig\b|print\(|plot|"
                       r"\.evaluate\(|\.predict|\.summary\(|get_weights|\.append\(|verbose\s*=|lambda|\"\"\"|"
                       r"cell_size|\.show\(")
_SKIP = (
    re.compile(r"^(Fig\.?|Figure|Table)\s*\d|^(Source|Photo|Image)\s*(by|credit|:)", re.I),  # captions
    re.compile(r"^\[\d+\]"),                                            # a reference list entry
    re.compile(r"https?://|www\."),                                     # links
    re.compile(r"^\s*(#|import\s|from\s+\S+\s+import\s)"),              # comments, imports
)


@dataclass(frozen=True)
class Unit:
    """A sentence of prose or a statement of code, whitespace squeezed, with its line."""

    text: str
    kind: str
    line: int


def _is_code(line: str) -> bool:
    return bool(_CODE.match(line)) and not re.search(r"[a-z]{3,}\. [A-Z]", line)


def _is_heading(line: str) -> bool:
    words = line.split()
    return len(words) <= 8 and not re.search(r"[.:;!?]$", line.strip()) and not _is_code(line)


def units(text: str) -> list[Unit]:
    """The source's sentences and code statements, in order."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip().lstrip("•-").rstrip("¶").strip()
        if not line or _is_heading(line):
            continue
        if _is_code(line):
            parts, kind = _STATEMENT_BREAK.split(line), "code"
        else:
            parts, kind = _SENTENCE_BREAK.split(line), "sentence"
        out += [Unit(squeeze(p), kind, number) for p in parts if p and p.strip()]
    return out


def checkable(unit: Unit) -> str | None:
    """The category that makes a unit checkable, or None (including the skipped kinds)."""
    if any(rule.search(unit.text) for rule in _SKIP):
        return None
    if unit.kind == "code" and _PLUMBING.search(unit.text):
        return None
    text = _CITATION.sub("", unit.text)
    return next((name for name, rule in CHECKABLE.items() if rule.search(text)), None)


def covers(quote_fragments: Iterable[str], unit: Unit) -> bool:
    """A quote covers a unit when one of its fragments lies in the unit or holds it."""
    return any((len(f) >= 12 or f == unit.text) and (f in unit.text or unit.text in f)
               for f in quote_fragments)


def uncovered(text: str, quotes: Iterable[str]) -> list[tuple[Unit, str]]:
    """Checkable units of ``text`` that none of ``quotes`` covers, with their category."""
    parts = [f for q in quotes for f in fragments(q)]
    out = []
    for unit in units(text):
        category = checkable(unit)
        if category and not covers(parts, unit):
            out.append((unit, category))
    return out


def report(source_id: str | None = None) -> str:
    """Each source's checkable statements that nothing accounts for (``python -m claims.coverage``)."""
    from claims.registry import registry, unchecked
    from claims.sources import files

    lines = []
    for title, path in files().items():
        claims = [c for c in registry() if c.source.title == title]
        if not claims or (source_id and claims[0].source.id != source_id):
            continue
        quotes = [c.quote for c in claims] + [u.quote for u in unchecked() if u.source.title == title]
        missing = uncovered(path.read_text(encoding="utf-8"), quotes)
        lines.append(f"{claims[0].source.id}: {len(missing)} checkable statements unaccounted for")
        lines += [f"  line {u.line} ({category}, {u.kind}): {u.text}" for u, category in missing]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from claims.registry import registry

    parser = argparse.ArgumentParser(
        prog="python -m claims.coverage",
        description="List each source's checkable statements (numbers, counts, shapes, comparisons) "
                    "that no claim, listing or unchecked entry quotes: where the registry may have "
                    "missed a claim.")
    ids = sorted({c.source.id for c in registry()})
    parser.add_argument("source", nargs="?", choices=ids, metavar="SOURCE",
                        help=f"only this source ({', '.join(ids)})")
    args = parser.parse_args(argv)
    print(report(args.source))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The claims report on a terminal: one line per claim that fits the width, grouped by source,
the verdict as a colour and a symbol, and at the end what the pending claims wait for.
``claims.report`` makes the rows; this prints them."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from claims.registry import Claim
from claims.report import (
    ASCII_MARKS,
    MARKS,
    SOURCE_ARITHMETIC,
    Row,
    _claims,
    _rows,
    _split,
    by_source,
    counts_text,
    source_heading,
)
from training import datasets, recipes, results

#: Stand-ins for the other symbols the report prints, where the output cannot write them.
ASCII_TEXT = str.maketrans({"→": "->", "—": "-", "…": "...", "“": '"', "”": '"', "×": "x", "Δ": "d",
                            "±": "+/-", "≤": "<=", "≥": ">=", "’": "'"})
#: Below this many columns a claim's line shows its verdict as symbol and letter ("✓ H"); the
#: counts above the lines say what each stands for.
WIDE = 100
#: ANSI SGR colours by verdict, for a terminal.
COLOURS = {"holds": "32", "refuted": "1;31", "inconclusive": "33", "pending": "36", "unmeasurable": "2"}


def width() -> int:
    """The terminal's width ($COLUMNS first, as shutil reads it), 80 when unknown, 40 at least."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def use_colour(choice: str = "auto", stream: Any = None) -> bool:
    """'always', 'never', or 'auto': a terminal, unless $NO_COLOR is set or TERM is dumb."""
    if choice != "auto":
        return choice == "always"
    stream = stream or sys.stdout
    return (hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ
            and os.environ.get("TERM") != "dumb")


def _marks(stream: Any = None) -> dict[str, str]:
    """The symbols, or ASCII stand-ins where the output's encoding cannot write them."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(MARKS.values()).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII_MARKS
    return MARKS


def _cut(text: str, n: int, ascii_out: bool = False) -> str:
    """``text`` on one line, at most ``n`` characters, an ellipsis where cut; in ASCII where the
    output cannot write the symbols."""
    text = " ".join(_plain(text, ascii_out).split())
    ellipsis = "..." if ascii_out else "…"
    return text if len(text) <= n else text[:max(n - len(ellipsis), 0)] + ellipsis


def _plain(text: str, ascii_out: bool) -> str:
    return text.translate(ASCII_TEXT) if ascii_out else text


def _value(row: Row) -> str:
    """What was measured, or why nothing was; and a surprise the registry did not expect."""
    if row.verdict in ("pending", "unmeasurable"):
        measured = row.reason
    else:
        measured = row.measured_text
    text = f"{row.claimed_text} → {measured}"
    if not row.as_expected:
        text += f" [registry expects {row.claim.expect}]"
    return text


def _line(row: Row, total: int, id_width: int, value_width: int, marks: dict[str, str],
          colour: bool) -> str:
    mark, ascii_out = marks[row.verdict], marks == ASCII_MARKS
    status = f"{mark} {row.verdict[0].upper()}" if total < WIDE else f"{mark} {row.verdict:<12}"
    room = total - 2 - len(status) - 1 - id_width - 2
    if colour:
        status = f"\x1b[{COLOURS[row.verdict]}m{status}\x1b[0m"
    ident = row.claim.id.ljust(id_width)
    if len(ident) > id_width:  # an id is never cut (it is what --id takes): the rest goes below
        ident = f"{ident}\n{' ' * (total - room - 2)}"
    if room >= 90:  # wide: the value, then as much of the quote as fits
        value = _cut(_value(row), value_width, ascii_out).ljust(value_width)
        quote = _cut(f"“{' '.join(row.claim.quote.split())}”", room - value_width - 2, ascii_out)
        return f"  {status} {ident}  {value}  {quote}".rstrip()
    return f"  {status} {ident}  {_cut(_value(row), room, ascii_out)}".rstrip()


def _details(row: Row, total: int, ascii_out: bool = False) -> list[str]:
    indent = " " * 6
    out = []
    for label, text in (("quote", f"“{row.claim.quote}”"), ("claimed", row.claimed_text),
                        ("measured", row.measured_text if row.measured is not None else "-"),
                        ("rule", row.rule), ("reason", row.reason),
                        ("evidence", ", ".join(row.evidence))):
        if text:
            out += textwrap.wrap(_plain(f"{label}: {text}", ascii_out), max(total - len(indent), 20),
                                 initial_indent=indent, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False)  # URLs, paths, ids whole
    return out


def as_terminal(items: Sequence[Any], total: int | None = None, verbose: bool = False,
                colour: bool = False, marks: dict[str, str] | None = None) -> str:
    """One line per claim that fits ``total`` columns (the terminal's by default), grouped by
    source, each source named once with its counts; ``verbose`` adds the full quote, the rule,
    the reason and the evidence under each line."""
    items = _rows(items)
    total = max(40, total) if total else width()
    marks = marks or _marks()
    ascii_out = marks == ASCII_MARKS
    status_width = 3 if total < WIDE else 14
    share = (total - 6 - status_width) // 2 if total < WIDE else (total - 17) * 3 // 5
    id_width = min(max((len(v.claim.id) for v in items), default=10), max(16, share))
    room = total - 2 - status_width - 1 - id_width - 2
    value_width = min(max((len(_value(v)) for v in items), default=10), max(40, room // 2))
    out: list[str] = []
    for src, group in by_source(items):
        heading = textwrap.wrap(_plain(source_heading(src), ascii_out), total)
        out += [f"\x1b[1m{line}\x1b[0m" for line in heading] if colour else heading
        out += textwrap.wrap(counts_text(group, marks), total, initial_indent="  ", subsequent_indent="  ")
        measured, apart = _split(group)
        for row in measured:
            out.append(_line(row, total, id_width, value_width, marks, colour))
            if verbose:
                out += _details(row, total, ascii_out)
        if apart:
            out.append("  " + _cut("source arithmetic (the source's own numbers against each other):",
                                   total - 2))
            for row in apart:
                out.append(_line(row, total, id_width, value_width, marks, colour))
                if verbose:
                    out += _details(row, total, ascii_out)
        out.append("")
    out += textwrap.wrap(f"{_claims(len(items))}. {counts_text(items, marks)}", total)
    out += waiting(items, total)
    return "\n".join(out)


#: What a pending claim's ``waits_for`` may start with, besides 'data': a group each in the summary.
WAITS = ("repair", "train", "retrain", "benchmarks")


def damaged(items: Sequence[Row]) -> list[str]:
    """The recipes whose result files are damaged, as the claims that read them say."""
    return sorted({r.waits_for.partition(" ")[2] for r in items if r.waits_for.startswith("repair ")})


def repair(names: Sequence[str]) -> str:
    """The damaged files of ``names`` (recipes, or benchmark files by stem) and how to mend them."""
    where = results.results_dir()
    into = "" if where.resolve() == (results.REPO / "results").resolve() else f" --results {where}"
    timed = [name for name in names if name.startswith("benchmarks-")]
    trained = [name for name in names if name not in timed]
    files = ", ".join(str(results.path_for(name, where)) for name in names)
    how = [f"retrain {'them' if len(trained) > 1 else 'it'}: python -m claims train "
           f"{' '.join(trained)} --replace{into}"] if trained else []
    how += ["rerun the benchmarks (the reasons give the command, -v)"] if timed else []
    them = "them" if len(names) > 1 else "it"
    return f"{files}: restore {them} from git (git checkout -- FILE) or {', or '.join(how)}"


def waiting(items: Sequence[Row], total: int) -> list[str]:
    """What the pending claims wait for, each with the command that supplies it, in the order to
    run them (datasets before the training that reads them): a new machine without the
    datasets learns so here, not from a hundred cut reasons."""
    pending = [r for r in items if r.verdict == "pending"]
    groups: dict[str, list[Row]] = {}
    for row in pending:
        kind = row.waits_for.partition(" ")[0]
        key = row.waits_for if kind == "data" else kind if kind in WAITS else ""
        groups.setdefault(key, []).append(row)
    order = {"repair": 0, "data": 1, "train": 2, "retrain": 3, "benchmarks": 4, "": 5}
    tables = recipes.recipe_tables() if pending else {}  # the TOML tables: no models, no torch
    where = results.results_dir()
    into = "" if where.resolve() == (results.REPO / "results").resolve() else f" --results {where}"
    lines = []
    for key, group in sorted(groups.items(), key=lambda kv: (order[kv[0].partition(" ")[0]], -len(kv[1]))):
        n = _claims(len(group))
        kind, _, name = key.partition(" ")
        if kind == "repair":
            lines.append(f"damaged files ({n}): {repair(damaged(group))}")
        elif kind == "data":
            lines.append(f"the {name} dataset ({n}): {_fetch_hint(name)}")
        elif kind in ("train", "retrain"):
            what, flag = (("training results", "") if kind == "train"
                          else ("full runs in place of capped ones", " --replace"))
            listed = {k.partition(" ")[2] for k in groups if k.startswith("data ")}
            for dataset, part in _by_missing_dataset(group, tables).items():
                names = _dependencies_first({r.waits_for.partition(" ")[2] for r in part} - {""}, tables)
                after = ""
                if dataset:
                    after = (f", once the {dataset} dataset is there"
                             + ("" if dataset in listed else f" ({_fetch_hint(dataset)})"))
                lines.append(f"{what}{after} ({_claims(len(part))}): python -m claims train "
                             f"{' '.join(names)}{flag}{into} (add --device cpu to train without a GPU)")
        elif kind == "benchmarks":
            lines.append(f"benchmark timings ({n}): the reasons give the pytest-benchmark command (-v)")
        else:
            lines.append(f"something else ({n}): the reasons say what (-v)")
    if not lines:
        return []
    out = ["", f"The {len(pending)} pending wait for:"]
    for line in lines:
        out += textwrap.wrap(line, total, initial_indent="  ", subsequent_indent="    ",
                             break_long_words=False, break_on_hyphens=False)
    return out


def _fetch_hint(name: str) -> str:
    how = f"python -m claims data fetch {name}"
    if datasets.entry(name).instructions:
        how = f"download by hand (python -m claims data list says where), then: {how} --from ZIP"
    return how


def _by_missing_dataset(rows: Sequence[Row], tables: dict[str, dict]) -> dict[str, list[Row]]:
    """The rows waiting for training, by the dataset their recipe reads where it is not on disk
    ('' where it is, or the recipe is not defined): the command for them would stop at once."""
    parts: dict[str, list[Row]] = {}
    for row in rows:
        dataset = tables.get(row.waits_for.partition(" ")[2], {}).get("dataset", "")
        missing = dataset if dataset and not datasets.on_disk(dataset) else ""
        parts.setdefault(missing, []).append(row)
    return dict(sorted(parts.items()))


def _dependencies_first(names: set[str], tables: dict[str, dict]) -> list[str]:
    """Recipe names in alphabetical order, each after the recipes its ``best_of`` reads (a
    result file of a recipe no longer defined is named as it is)."""
    ordered: list[str] = []

    def add(name: str) -> None:
        if name in ordered:
            return
        dependencies = (tables.get(name, {}).get("best_of") or {}).values()
        for dependency in sorted(dependencies):
            if dependency in names:
                add(dependency)
        ordered.append(name)
    for name in sorted(names):
        add(name)
    return ordered


def list_sources(claims: Sequence[Claim], total: int | None = None) -> str:
    """The source ids (for --source) with their titles and claim counts."""
    total = total or width()
    out = []
    for _, group in groupby(claims, key=lambda c: c.source.id):
        group = list(group)
        apart = sum(c.kind == SOURCE_ARITHMETIC for c in group)
        out.append(group[0].source.id)
        out += textwrap.wrap(f"{source_heading(group[0].source)}; {len(group) - apart} claims"
                             + (f" and {apart} source arithmetic" if apart else ""), total,
                             initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out)

"""The source documents: the specification every claim quotes, read as plain text.

They live beside the checkout (``../shared/sources``) or wherever ``$LEAN_CNN_SOURCES`` points,
indexed by title in the table of their README. A quote is the source's words exactly, with
``[...]`` marking what it leaves out; whitespace does not count.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

ELISION = "[...]"


def directory() -> Path:
    """``$LEAN_CNN_SOURCES``, else ``../shared/sources`` beside the checkout."""
    default = Path(__file__).resolve().parents[2] / "shared" / "sources"
    return Path(os.environ.get("LEAN_CNN_SOURCES", default))


def available() -> bool:
    return (directory() / "README.md").is_file()


def squeeze(text: str) -> str:
    return " ".join(text.split())


@cache
def files(root: Path | None = None) -> dict[str, Path]:
    """Title -> file, from the index table of the sources' README."""
    root = root or directory()
    out = {}
    for line in (root / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0].endswith(".txt") and (root / cells[0]).is_file():
            out[cells[1]] = root / cells[0]
    return out


def texts(root: Path | None = None) -> dict[str, str]:
    """Title -> whitespace-squeezed text."""
    return {title: squeeze(path.read_text(encoding="utf-8")) for title, path in files(root).items()}


def fragments(quote: str) -> list[str]:
    """The parts of a quote between its '[...]' elisions, whitespace squeezed."""
    return [f for f in (squeeze(part) for part in quote.split(ELISION)) if f]


def quoted_in(quote: str, text: str) -> bool:
    """Whether ``quote`` is in ``text`` word for word, its '[...]' elisions skipping text in order."""
    position = 0
    for fragment in fragments(quote):
        found = text.find(fragment, position)
        if found < 0:
            return False
        position = found + len(fragment)
    return True


def _squeezed_with_offsets(raw: str) -> tuple[str, list[int]]:
    """``squeeze(raw)`` and, for each of its characters, the index of that character in ``raw``
    (a squeezed space maps to the first blank of the run it stands for)."""
    chars: list[str] = []
    offsets: list[int] = []
    blank = False
    for i, ch in enumerate(raw):
        if ch.isspace():
            blank = bool(chars)
            continue
        if blank:
            chars.append(" ")
            offsets.append(i - 1)
            blank = False
        chars.append(ch)
        offsets.append(i)
    return "".join(chars), offsets


def spans(quote: str, raw: str,
          squeezed: tuple[str, list[int]] | None = None) -> list[tuple[int, int]] | None:
    """Where each part of ``quote`` stands in the unsqueezed text ``raw``: one (start, end) per
    part between '[...]' elisions, found in order as ``quoted_in`` finds them; None when the
    quote is not there. ``squeezed`` is ``raw``'s squeezed text and offsets, to reuse."""
    text, offsets = squeezed or _squeezed_with_offsets(raw)
    out, position = [], 0
    for fragment in fragments(quote):
        found = text.find(fragment, position)
        if found < 0:
            return None
        end = found + len(fragment)
        out.append((offsets[found], offsets[end - 1] + 1))
        position = end
    return out


def raw_text(title: str, root: Path | None = None) -> str | None:
    """The source's text as stored (line breaks kept), or None when it is not in the index."""
    path = files(root).get(title) if (root or directory()).joinpath("README.md").is_file() else None
    return path.read_text(encoding="utf-8") if path else None

"""The claims report: every claim, what its source says, what was measured, the verdict.

Verdicts become ``Row`` records: plain data (the measurement as JSON would write it, and as
the report prints it), so that they can be cached (``claims.cache``) and printed without
importing torch. Printers: one line per claim for a terminal (``claims.terminal``), markdown
for a README (``as_markdown``, ``readme_summary``), JSON (``as_json``); HTML is ``claims.html``.
Claims of kind ``source_arithmetic`` compare a source's own numbers with each other: they are
counted apart from measured claims everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from claims import cache
from claims.registry import Claim, Source

FORMATS = ("table", "markdown", "json", "html")
VERDICTS = ("holds", "refuted", "inconclusive", "pending", "unmeasurable")
DECIDED = ("holds", "refuted")
SOURCE_ARITHMETIC = "source_arithmetic"
#: Verdicts are told apart by a symbol as well as a colour.
MARKS = {"holds": "✓", "refuted": "✗", "inconclusive": "?", "pending": "○", "unmeasurable": "∅"}
ASCII_MARKS = {"holds": "+", "refuted": "x", "inconclusive": "?", "pending": ".", "unmeasurable": "-"}


@dataclass(frozen=True)
class Row:
    """A verdict as the report shows it: plain data, cacheable as JSON."""

    claim: Claim
    verdict: str
    #: The measurement as JSON writes it (None when nothing was measured).
    measured: Any
    measured_text: str
    claimed_text: str
    reason: str
    rule: str = ""
    evidence: tuple[str, ...] = ()
    #: The drawn plots that show the claim's run (``claims.figures.figures_for``).
    figures: tuple[str, ...] = ()
    #: What a pending claim waits for (``claims.verdict.Verdict.waits_for``).
    waits_for: str = ""

    @property
    def as_expected(self) -> bool:
        return self.claim.as_expected(self.verdict)

    @property
    def apart(self) -> bool:
        """A check of the source against itself, not a measurement."""
        return self.claim.kind == SOURCE_ARITHMETIC

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "measured": self.measured, "measured_text": self.measured_text,
                "claimed_text": self.claimed_text, "reason": self.reason, "rule": self.rule,
                "evidence": list(self.evidence), "figures": list(self.figures), "waits_for": self.waits_for}

    @classmethod
    def from_json(cls, claim: Claim, data: dict[str, Any]) -> Row:
        """The row ``to_json`` wrote; TypeError for anything else (a cache written by another
        version, or damaged), so that the claim is measured again."""
        texts = [data[k] for k in ("verdict", "measured_text", "claimed_text", "reason", "rule", "waits_for")]
        lists = [data[k] for k in ("evidence", "figures")]
        if (data["verdict"] not in VERDICTS or not all(isinstance(t, str) for t in texts)
                or not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in lists)):
            raise TypeError(f"not a cached row of {claim.id}")
        return cls(claim, data["verdict"], data["measured"], data["measured_text"], data["claimed_text"],
                   data["reason"], data["rule"], tuple(data["evidence"]), tuple(data["figures"]),
                   data["waits_for"])


def _plain(value: Any) -> Any:
    """Measurements JSON does not know: seed statistics as a table, anything else as text."""
    from training.metrics import AllOf, Difference, Picks, Ranking, Seeds

    if isinstance(value, Seeds):
        return {"values": list(value.values), "mean": value.mean, "std": value.std,
                "lower_bound": value.lower_bound, "files": list(value.files)}
    if isinstance(value, Difference):
        held = value.held_out
        return {"a": list(value.a), "b": list(value.b), "paired": value.paired, "what": value.what,
                "files": list(value.files),
                **({"held_out": {"what": held.what, "runs": list(held.names), "a": list(held.a),
                                 "b": list(held.b)}} if held else {})}
    if isinstance(value, AllOf):
        return {"all_of": [_plain(i) for i in value.items]}
    if isinstance(value, Ranking):
        return {"top": [{"error": cell, "count": n} for cell, n in value.top(4)],
                "seeds": len(value.matrices), "files": list(value.files)}
    if isinstance(value, Picks):
        return {"picked": [{"value": v, "runs": n} for v, n in value.counts()], "runs": len(value.picks),
                "what": value.what, "files": list(value.files)}
    return str(value)


def row_of(verdict: Any) -> Row:
    """A ``claims.verdict.Verdict`` as a row (imports the measuring side, hence torch)."""
    from claims.figures import figures_for
    from claims.verdict import claimed_text, show

    claim = verdict.claim
    return Row(claim, verdict.verdict, json.loads(json.dumps(verdict.measured, default=_plain)),
               show(verdict.measured), claimed_text(claim), verdict.reason, verdict.rule,
               tuple(verdict.evidence), tuple(str(p) for p in figures_for(claim)), verdict.waits_for)


def _rows(items: Iterable[Any]) -> list[Row]:
    return [i if isinstance(i, Row) else row_of(i) for i in items]


def judge_all(claims: Iterable[Claim]) -> list[Any]:
    """Every claim measured and judged (``claims.verdict.Verdict``), no cache."""
    from claims.verdict import judge

    return [judge(c) for c in claims]


def rows(claims: Sequence[Claim], registry_dirs: Iterable[Path], cache_path: Path | None = None,
         costs: bool = False) -> tuple[list[Row], list[tuple[str, ...]] | None]:
    """Rows of ``claims`` (and the cost table's rows when ``costs``), from the cache where it
    holds them under the current key, else measured (and the cache rewritten). ``cache_path``
    None measures everything."""
    digest = cache.key(registry_dirs) if cache_path is not None else ""
    entry = cache.load(cache_path, digest) if cache_path is not None else {}
    stored = entry.get("rows") if isinstance(entry.get("rows"), dict) else {}
    out: dict[str, Row] = {}
    for claim in claims:
        try:
            out[claim.id] = Row.from_json(claim, stored[claim.id])
        except (KeyError, TypeError, IndexError):
            pass  # not cached, or written by something else: measured below
    missing = [c for c in claims if c.id not in out]
    changed = bool(missing)
    for row in _rows(judge_all(missing)) if missing else []:
        out[row.claim.id] = row
        stored[row.claim.id] = row.to_json()
    table = entry.get("costs")
    if costs and not (isinstance(table, list) and all(isinstance(r, list) for r in table)):
        table, changed = [list(r) for r in cost_rows()], True
    if cache_path is not None and changed:
        cache.save(cache_path, digest, {"rows": stored, "costs": table})
    return [out[c.id] for c in claims], ([tuple(r) for r in table] if costs and table else None)


# --- counting ----------------------------------------------------------------------------------

def counts(items: Iterable[Any]) -> dict[str, int]:
    out = dict.fromkeys(VERDICTS, 0)
    for v in items:
        out[v.verdict] += 1
    return out


def _claims(n: int) -> str:
    return f"{n} claim" + ("" if n == 1 else "s")


def _split(items: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(measured claims, source-arithmetic claims)."""
    return ([v for v in items if v.claim.kind != SOURCE_ARITHMETIC],
            [v for v in items if v.claim.kind == SOURCE_ARITHMETIC])


def counts_text(items: Sequence[Any], marks: dict[str, str] = MARKS) -> str:
    """'12 on models and data: 9 ✓ holds, 3 ✗ refuted; 2 source arithmetic: 2 ✓ holds' (zeros
    left out). Pending claims count among the first: claims about models and data, not yet
    measured."""
    def part(group: Sequence[Any], what: str) -> str:
        c = counts(group)
        inner = ", ".join(f"{n} {marks[k]} {k}" for k, n in c.items() if n)
        return f"{len(group)} {what}: {inner}"
    measured, apart = _split(items)
    parts = [part(measured, "on models and data")] if measured else []
    if apart:
        parts.append(part(apart, "source arithmetic"))
    return "; ".join(parts)


def by_source(items: Sequence[Any]) -> list[tuple[Source, list[Any]]]:
    return [(group[0].claim.source, group) for _, g in groupby(items, key=lambda v: v.claim.source.id)
            for group in [list(g)]]


def source_heading(src: Source) -> str:
    """Title, author, venue and dataset, each said once (a venue inside the author's name is not
    repeated)."""
    who = src.author if src.venue in src.author else f"{src.author}, {src.venue}"
    return f"{src.title} — {who} ({src.dataset})"


# --- markdown and JSON -------------------------------------------------------------------------

def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def as_markdown(items: Sequence[Any]) -> str:
    """One table per source (for a README or an issue)."""
    from tabulate import tabulate

    items = _rows(items)
    parts = []
    for src, group in by_source(items):
        parts.append(f"## {source_heading(src)}\n\n{counts_text(group)}\n")
        body = [tuple(_md(cell) for cell in (
            v.claim.id + (" (source arithmetic)" if v.apart else ""), v.claim.quote, v.claimed_text,
            v.measured_text, f"{MARKS[v.verdict]} {v.verdict}" + (
                "" if v.as_expected else f" (registry expects {v.claim.expect})"), v.reason))
            for v in group]
        parts.append(tabulate(body, headers=("id", "quote", "claimed", "measured", "verdict", "reason"),
                              tablefmt="github", disable_numparse=True))
        parts.append("")
    parts.append(f"{_claims(len(items))}. {counts_text(items)}")
    return "\n".join(parts)


def readme_summary(items: Sequence[Any]) -> str:
    """Verdict counts per source as a markdown table, for the README: the measured claims by
    verdict, and the source-arithmetic checks in a column of their own."""
    from tabulate import tabulate

    def cells(group: Sequence[Any]) -> list[Any]:
        measured, apart = _split(group)
        c, a = counts(measured), counts(apart)
        arithmetic = ", ".join(f"{n} {k}" for k, n in a.items() if n) or "-"
        return [len(measured), *(c[k] for k in VERDICTS), arithmetic]

    table = [[f"{src.title} ({src.author})", *cells(group)] for src, group in by_source(list(items))]
    table.append(["**all sources**", *cells(list(items))])
    headers = ("source", "on models and data", *(f"{MARKS[k]} {k}" for k in VERDICTS), "source arithmetic")
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


#: The README's name for it, kept.
summary_table = readme_summary


def as_json(items: Sequence[Any]) -> str:
    return json.dumps([{
        "id": v.claim.id, "source": v.claim.source.id, "kind": v.claim.kind,
        "quote": v.claim.quote, "claimed": v.claim.claimed, "relation": v.claim.relation,
        "tolerance": v.claim.tolerance, "measured": v.measured, "verdict": v.verdict,
        "rule": v.rule, "evidence": list(v.evidence), "reason": v.reason, "marker": v.claim.marker,
    } for v in _rows(items)], indent=2)


# --- model costs -------------------------------------------------------------------------------

COST_HEADERS = ("model", "trainable", "MFLOPs/image", "layer outputs/image", "batch", "peak training step")


def cost_rows() -> list[tuple[str, ...]]:
    """Every model's counted costs (models.cost, on the meta device) at its source's batch size,
    or Keras' default of 32 where no recipe trains it."""
    import torch

    import models
    from models import cost
    from training.recipes import batch_sizes

    sizes, out = batch_sizes(), []
    for name in models.names():
        with torch.device("meta"):
            model = models.build(name)
        c = cost.cost(model, sizes.get(name, 32))
        out.append((name, f"{c.trainable:,}", f"{c.flops_per_image / 1e6:,.2f}",
                    cost.size(c.activation_bytes_per_image), str(c.batch), cost.size(c.peak_training.total)))
    return out


def cost_table(fmt: str = "table", table: Sequence[Sequence[str]] | None = None) -> str:
    from tabulate import tabulate

    body = cost_rows() if table is None else table
    text = tabulate(body, headers=COST_HEADERS, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True, colalign=("left", "right", "right", "right", "right", "right"))
    title = "Model costs (counted on the meta device: FLOPs by torch.utils.flop_counter, peak memory " \
            "of one Adam step by torch's MemTracker)"
    return f"{'## ' if fmt == 'markdown' else ''}{title}\n\n{text}"

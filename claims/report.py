"""The claims report: every claim, what its source says, what was measured, the verdict."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from tabulate import tabulate

from claims.registry import Claim
from claims.verdict import VERDICTS, Verdict, judge, show
from training.metrics import AllOf, Difference, Ranking, Seeds

FORMATS = ("table", "markdown", "json")


def judge_all(claims: Iterable[Claim]) -> list[Verdict]:
    return [judge(c) for c in claims]


def _claimed(claim: Claim) -> str:
    if claim.relation == "in":
        return f"in [{show(claim.claimed[0])}, {show(claim.claimed[1])}]"
    prefix = "" if claim.relation == "==" else f"{claim.relation} "
    return prefix + show(claim.claimed)


def _verdict_cell(v: Verdict) -> str:
    return v.verdict if v.as_expected else f"{v.verdict} (registry expects {v.claim.expect})"


def counts(verdicts: list[Verdict]) -> dict[str, int]:
    out = dict.fromkeys(VERDICTS, 0)
    for v in verdicts:
        out[v.verdict] += 1
    return out


def as_json(verdicts: list[Verdict]) -> str:
    return json.dumps([{
        "id": v.claim.id, "source": v.claim.source.id, "kind": v.claim.kind,
        "quote": v.claim.quote, "claimed": v.claim.claimed, "relation": v.claim.relation,
        "tolerance": v.claim.tolerance, "measured": v.measured, "verdict": v.verdict,
        "rule": v.rule, "evidence": list(v.evidence), "reason": v.reason, "marker": v.claim.marker,
    } for v in verdicts], indent=2, default=_plain)


def _plain(value: Any) -> Any:
    """Measurements JSON does not know: seed statistics as a table, anything else as text."""
    if isinstance(value, Seeds):
        return {"values": list(value.values), "mean": value.mean, "std": value.std,
                "lower_bound": value.lower_bound, "files": list(value.files)}
    if isinstance(value, Difference):
        return {"a": list(value.a), "b": list(value.b), "paired": value.paired, "what": value.what,
                "files": list(value.files)}
    if isinstance(value, AllOf):
        return {"all_of": [_plain(i) for i in value.items]}
    if isinstance(value, Ranking):
        return {"top": [{"error": cell, "count": n} for cell, n in value.top(4)],
                "seeds": len(value.matrices), "files": list(value.files)}
    return str(value)


def as_text(verdicts: list[Verdict], fmt: str = "table", width: int = 60) -> str:
    """One table per source (tabulate's 'grid' for a terminal, 'github' for a README)."""
    tablefmt = "github" if fmt == "markdown" else "simple_grid"
    widths = (28, width, 16, 16, 10, width)
    parts = []
    for _, group in groupby(verdicts, key=lambda v: v.claim.source.id):
        group = list(group)
        src = group[0].claim.source
        c = counts(group)
        title = f"{src.title} — {src.author}, {src.venue} ({src.dataset})"
        header = f"## {title}" if fmt == "markdown" else title
        parts.append(f"{header}\n\n{c['holds']} hold, {c['refuted']} refuted, {c['pending']} pending\n")
        rows = [(v.claim.id, v.claim.quote, _claimed(v.claim), show(v.measured),
                 _verdict_cell(v), v.reason) for v in group]
        if fmt == "markdown":
            rows = [tuple(cell.replace("|", "\\|").replace("\n", " ") for cell in row) for row in rows]
        else:  # tabulate's own maxcolwidths chokes on '1,560,000'; wrap before
            rows = [tuple(textwrap.fill(c, w) for c, w in zip(row, widths, strict=True)) for row in rows]
        parts.append(tabulate(rows, headers=("id", "quote", "claimed", "measured", "verdict", "reason"),
                              tablefmt=tablefmt, disable_numparse=True))
        parts.append("")
    c = counts(verdicts)
    parts.append(f"{len(verdicts)} claims: {c['holds']} hold, {c['refuted']} refuted, {c['pending']} pending")
    return "\n".join(parts)


def summary_table(verdicts: list[Verdict]) -> str:
    """Verdict counts per source, as a markdown table (for the README)."""
    rows = []
    for _, group in groupby(verdicts, key=lambda v: v.claim.source.id):
        group = list(group)
        c = counts(group)
        src = group[0].claim.source
        rows.append((f"{src.title} ({src.author})", len(group), c["holds"], c["refuted"], c["pending"]))
    c = counts(verdicts)
    rows.append(("**all sources**", len(verdicts), c["holds"], c["refuted"], c["pending"]))
    return tabulate(rows, headers=("source", "claims", "holds", "refuted", "pending"), tablefmt="github")


def cost_table(fmt: str = "table") -> str:
    """Every model's counted costs (models.cost, on the meta device) at its source's batch size,
    or Keras' default of 32 where no recipe trains it."""
    import torch

    import models
    from models import cost
    from training.recipes import batch_sizes

    sizes, rows = batch_sizes(), []
    for name in models.names():
        with torch.device("meta"):
            model = models.build(name)
        c = cost.cost(model, sizes.get(name, 32))
        rows.append((name, f"{c.trainable:,}", f"{c.flops_per_image / 1e6:,.2f}",
                     cost.size(c.activation_bytes_per_image), c.batch, cost.size(c.peak_training.total)))
    table = tabulate(rows, headers=("model", "trainable", "MFLOPs/image", "layer outputs/image", "batch",
                                    "peak training step"),
                     tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True,
                     colalign=("left", "right", "right", "right", "right", "right"))
    title = "Model costs (counted on the meta device: FLOPs by torch.utils.flop_counter, peak memory " \
            "of one Adam step by torch's MemTracker)"
    return f"{'## ' if fmt == 'markdown' else ''}{title}\n\n{table}"

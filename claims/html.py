"""The annotated edition: each source's full text with every claim's quote highlighted in place
and its verdict beside it, plus an index of every claim. Static files only (HTML, one CSS
file, a few lines of plain JavaScript for the index's filters; readable without them), the
plots and result files copied in, so the folder can be opened from disk or served as is.

A quote is found as the quote test finds it (``claims.sources``): whitespace squeezed, each
part between '[...]' elisions in order. Quotes that overlap are highlighted once, as one
mark listing every claim it carries; the claims' cards follow the line the mark ends on.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from claims import sources
from claims.registry import Source
from claims.report import MARKS, VERDICTS, Row, by_source, counts, counts_text, source_heading

LETTERS = {v: v[0].upper() for v in VERDICTS}
#: The verdict a mark carrying several claims is coloured by: the one a reader must see first.
PRIORITY = ("refuted", "inconclusive", "holds", "pending", "unmeasurable")

CSS = """\
:root { --holds: #d6f0d0; --refuted: #ffd3cf; --inconclusive: #fdeeb0; --pending: #d8e6fb;
  --unmeasurable: #e4e4e4; --holds-ink: #1d6b12; --refuted-ink: #a3160b; --inconclusive-ink: #7a5a00;
  --pending-ink: #1f4f99; --unmeasurable-ink: #555; }
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 66rem; padding: 1rem 1.5rem;
  color: #1a1a1a; background: #fff; }
h1 { font-size: 1.5rem; line-height: 1.25; } h2 { font-size: 1.2rem; margin-top: 2rem; }
a { color: #0b57a4; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } th.n { text-align: center; } .counts td:first-child { min-width: 14rem; }
.counts td:last-child { white-space: nowrap; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.claims td { font-size: .9rem; } .claims code { font-size: .85rem; }
.badge { display: inline-block; border-radius: .25rem; padding: 0 .35rem; font-weight: 600;
  white-space: nowrap; border: 1px solid currentColor; }
.v-holds { background: var(--holds); color: var(--holds-ink); }
.v-refuted { background: var(--refuted); color: var(--refuted-ink); }
.v-inconclusive { background: var(--inconclusive); color: var(--inconclusive-ink); }
.v-pending { background: var(--pending); color: var(--pending-ink); }
.v-unmeasurable { background: var(--unmeasurable); color: var(--unmeasurable-ink); }
.text { white-space: pre-wrap; overflow-wrap: anywhere; font: 15px/1.6 Georgia, serif; }
.text mark { color: inherit; padding: 0 .05rem; border-bottom: 2px solid; }
mark.v-refuted { border-bottom-style: double; border-bottom-width: 3px; }
mark.v-inconclusive, mark.v-pending, mark.v-unmeasurable { border-bottom-style: dashed; }
sup.tags { font: 600 .75rem system-ui, sans-serif; margin-left: .1rem; white-space: nowrap; }
sup.tags a { text-decoration: none; padding: 0 .15rem; border-radius: .2rem; }
.cards { white-space: normal; font: 14px/1.45 system-ui, sans-serif; margin: .4rem 0 .9rem 1.2rem;
  padding-left: .8rem; border-left: 3px solid #bbb; }
.card { margin: .3rem 0; } .card summary { cursor: pointer; }
.card summary code { font-size: .85rem; }
.card dl { display: grid; grid-template-columns: 6.5rem 1fr; gap: .1rem .6rem; margin: .3rem 0 .3rem 1rem; }
.card dt { font-weight: 600; color: #444; } .card dd { margin: 0; overflow-wrap: anywhere; }
.card img, .figures img { max-width: 100%; height: auto; border: 1px solid #ddd; margin: .3rem 0; }
.figures { display: flex; flex-wrap: wrap; gap: .5rem; }
.figures figure { margin: 0; flex: 1 1 100%; }
.figures figure.square { flex: 0 1 24rem; }
.figures figcaption { font-size: .8rem; color: #555; }
.legend span { margin-right: .6rem; } .note { color: #555; font-size: .9rem; }
#filters { margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; }
"""

FILTER_JS = """\
// The index's filters: a text box (words of the id, quote, kind, values) and one checkbox per
// verdict; rows that do not match hide. The address can set them: index.html#v=refuted&q=epochs
(function () {
  var box = document.getElementById("filters");
  if (!box) return;
  box.hidden = false;
  var text = document.getElementById("q");
  var checks = box.querySelectorAll("input[type=checkbox]");
  var rows = document.querySelectorAll("table.claims tbody tr");
  var shown = document.getElementById("shown");
  var given = new URLSearchParams(location.hash.slice(1));
  if (given.has("q")) text.value = given.get("q");
  if (given.has("v")) {
    var wanted = given.get("v").split(",");
    checks.forEach(function (c) { c.checked = wanted.indexOf(c.value) >= 0; });
  }
  function apply() {
    var words = text.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var allowed = {};
    checks.forEach(function (c) { allowed[c.value] = c.checked; });
    var n = 0;
    rows.forEach(function (row) {
      var hay = (row.textContent + " " + row.dataset.quote).toLowerCase();
      var ok = allowed[row.dataset.verdict] && words.every(function (w) { return hay.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = n + " of " + rows.length + " claims shown";
  }
  text.addEventListener("input", apply);
  checks.forEach(function (c) { c.addEventListener("change", apply); });
  apply();
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def badge(verdict: str, short: bool = False) -> str:
    """A verdict as symbol, letter and word (or symbol and letter): never colour alone."""
    label = f"{MARKS[verdict]} {LETTERS[verdict]}" + ("" if short else f" {verdict}")
    return f'<span class="badge v-{verdict}" title="{verdict}">{_e(label)}</span>'


def page_name(source: Source) -> str:
    return f"{source.id}.html"


def anchor(claim_id: str) -> str:
    return "c-" + claim_id


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<link rel=\"stylesheet\" href=\"style.css\">\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def _legend() -> str:
    return '<p class="legend">' + " ".join(badge(v) for v in VERDICTS) + "</p>"


@dataclass
class _Files:
    """The plots and result files copied into the output folder, by original path."""

    out: Path
    copied: dict[str, str] = field(default_factory=dict)

    def copy(self, path: Path, folder: str) -> str | None:
        key = str(path)
        if key not in self.copied:
            if not path.is_file():
                return None
            (self.out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.out / folder / path.name)
            self.copied[key] = f"{folder}/{path.name}"
        return self.copied[key]


def _evidence_path(name: str) -> Path:
    """A verdict's evidence ('results/x.json') as a file: beside the results directory."""
    from training import results

    where = results.results_dir()
    for candidate in (where.parent / name, where / Path(name).name):
        if candidate.is_file():
            return candidate
    return where / Path(name).name


def _card(row: Row, files: _Files, figures: bool = True) -> str:
    c = row.claim
    expected = "" if row.as_expected else f' <strong>(the registry expects {_e(c.expect)})</strong>'
    kind = "source arithmetic" if row.apart else c.kind.replace("_", " ")
    items = [("claimed", _e(row.claimed_text)),
             ("measured", _e(row.measured_text) if row.measured is not None else ""),
             ("rule", _e(row.rule)), ("reason", _e(row.reason))]
    links = []
    for name in row.evidence:
        target = files.copy(_evidence_path(name), "evidence")
        links.append(f'<a href="{_e(target)}">{_e(name)}</a>' if target else _e(name))
    if links:
        items.append(("evidence", ", ".join(links)))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items if v)
    plots = ""
    if figures:
        plots = _figures(row.figures, files)
    is_open = " open" if row.verdict != "holds" or plots else ""
    return (f'<details class="card" id="{_e(anchor(c.id))}" data-claim="{_e(c.id)}"{is_open}>'
            f"<summary>{badge(row.verdict)} <code>{_e(c.id)}</code> <span class=\"note\">{_e(kind)}</span> "
            f"{_e(row.claimed_text)} → {_e(row.measured_text if row.measured is not None else '-')}"
            f"{expected}</summary><dl>{body}</dl>{plots}</details>")


def _figures(paths: Sequence[str], files: _Files) -> str:
    shown = []
    for path in paths:
        target = files.copy(Path(path), "plots")
        if target:
            square = ' class="square"' if Path(path).stem.endswith("_confusion") else ""
            shown.append(f'<figure{square}><img src="{_e(target)}" alt="plot {_e(Path(path).stem)}">'
                         f"<figcaption>{_e(Path(path).name)}</figcaption></figure>")
    return f'<div class="figures">{"".join(shown)}</div>' if shown else ""


@dataclass
class _Region:
    start: int
    end: int
    claims: list[str]


def regions(spans_by_claim: dict[str, list[tuple[int, int]]]) -> list[_Region]:
    """Every quoted stretch of text once: overlapping parts of quotes merge into one region that
    lists each claim it carries (in the order the claims come)."""
    parts = sorted((s, e, cid) for cid, spans in spans_by_claim.items() for s, e in spans)
    out: list[_Region] = []
    for start, end, cid in parts:
        if out and start < out[-1].end:
            last = out[-1]
            last.end = max(last.end, end)
            if cid not in last.claims:
                last.claims.append(cid)
        else:
            out.append(_Region(start, end, [cid]))
    order = {cid: i for i, cid in enumerate(spans_by_claim)}
    for region in out:
        region.claims.sort(key=order.__getitem__)
    return out


def _worst(verdicts: Sequence[str]) -> str:
    return min(verdicts, key=PRIORITY.index)


def _tags(rows: Sequence[Row]) -> str:
    """The verdicts of a mark's claims, each a link to its card; past three claims, one link
    per verdict with its count (a sentence many claims quote stays readable)."""
    def tag(verdict: str, ids: list[str]) -> str:
        count = f"×{len(ids)}" if len(ids) > 1 else ""
        return (f'<a class="v-{verdict}" href="#{_e(anchor(ids[0]))}" title="{_e(verdict)}: '
                f'{_e(", ".join(ids))}">{_e(MARKS[verdict])}{LETTERS[verdict]}{count}</a>')
    if len(rows) <= 3:
        return "".join(tag(r.verdict, [r.claim.id]) for r in rows)
    return "".join(tag(v, ids) for v in VERDICTS
                   if (ids := [r.claim.id for r in rows if r.verdict == v]))


def annotate(raw: str, group: Sequence[Row], files: _Files) -> tuple[str, list[Row]]:
    """The source text as HTML with its claims' quotes marked and their cards after the lines
    the marks end on; and the rows whose quotes are not in the text."""
    squeezed = sources._squeezed_with_offsets(raw)
    found: dict[str, list[tuple[int, int]]] = {}
    missing = []
    for row in group:
        spans = sources.spans(row.claim.quote, raw, squeezed)
        if spans:
            found[row.claim.id] = spans
        else:
            missing.append(row)
    by_id = {row.claim.id: row for row in group}
    marked = regions(found)
    # cards go after the line on which a claim's last part ends; claims sharing it share one box
    cards_at: dict[int, list[str]] = {}
    for cid, spans in found.items():
        end = raw.find("\n", spans[-1][1] - 1)
        cards_at.setdefault(len(raw) if end < 0 else end, []).append(cid)
    events = sorted([(r.start, 0, r) for r in marked] + [(at, 1, ids) for at, ids in cards_at.items()],
                    key=lambda e: (e[0], e[1]))
    out, position = [], 0
    part_of: dict[str, int] = {}
    for at, what, item in events:
        if what == 0:
            region = item
            out.append(_e(raw[position:region.start]))
            verdicts = [by_id[c].verdict for c in region.claims]
            parts = []
            for cid in region.claims:
                part_of[cid] = part_of.get(cid, 0) + 1
                parts.append(f"{cid}#{part_of[cid]}")
            title = "; ".join(f"{by_id[c].verdict}: {c}" for c in region.claims)
            tags = _tags([by_id[c] for c in region.claims])
            out.append(f'<mark class="v-{_worst(verdicts)}" data-claims="{_e(" ".join(region.claims))}" '
                       f'data-parts="{_e(" ".join(parts))}" title="{_e(title)}">'
                       f"{_e(raw[region.start:region.end])}</mark><sup class=\"tags\">{tags}</sup>")
            position = region.end
        else:
            if at < position:  # a card point inside a mark that runs on: after the mark
                at = position
            out.append(_e(raw[position:at]))
            position = at
            rows = [by_id[c] for c in item]
            seen: list[str] = []
            cards = []
            for row in rows:
                cards.append(_card(row, files, figures=False))
                seen += [f for f in row.figures if f not in seen]
            out.append(f'<div class="cards">{"".join(cards)}{_figures(seen, files)}</div>')
            if raw.startswith("\n", position):  # the box ends the line already
                position += 1
    out.append(_e(raw[position:]))
    return "".join(out), missing


def _source_page(src: Source, group: Sequence[Row], files: _Files) -> str:
    raw = sources.raw_text(src.title) if sources.available() else None
    head = (f'<p><a href="index.html">← all sources</a></p><h1>{_e(src.title)}</h1>'
            f"<p>{_e(source_heading(src).removeprefix(src.title + ' — '))}</p>"
            f"<p>{_e(counts_text(group))}</p>{_legend()}")
    if raw is None:
        note = (f'<p class="note">The source text is not available (looked in {_e(sources.directory())}; '
                f"set LEAN_CNN_SOURCES to the folder of the sources' README). Its claims:</p>")
        cards = "".join(_card(row, files) for row in group)
        return _document(src.title, head + note + f'<div class="cards">{cards}</div>')
    text, missing = annotate(raw, group, files)
    lost = ""
    if missing:
        lost = ("<h2>Quotes not found in the text</h2>"
                + f'<div class="cards">{"".join(_card(row, files) for row in missing)}</div>')
    return _document(src.title, head + lost + f'<h2>The text, annotated</h2><div class="text">{text}</div>')


def _counts_table(groups: Sequence[tuple[Source, list[Row]]], rows: Sequence[Row]) -> str:
    head = "".join(f'<th class="n">{badge(v, short=True)}<br><small>{v}</small></th>' for v in VERDICTS)
    body = []
    for src, group in [*groups, (None, list(rows))]:
        measured = [r for r in group if not r.apart]
        apart = [r for r in group if r.apart]
        c, a = counts(measured), counts(apart)
        name = (f'<a href="{_e(page_name(src))}">{_e(src.title)}</a>' if src
                else "<strong>all sources</strong>")
        arithmetic = ", ".join(f"{n} {MARKS[k]} {k}" for k, n in a.items() if n) or "-"
        body.append(f"<tr><td>{name}</td><td class=\"n\">{len(measured)}</td>"
                    + "".join(f'<td class="n">{c[v] or ""}</td>' for v in VERDICTS)
                    + f"<td>{_e(arithmetic)}</td></tr>")
    return (f"<table class=\"counts\"><thead><tr><th>source</th><th>claims on models and data</th>{head}"
            f"<th>source arithmetic</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def _index(groups: Sequence[tuple[Source, list[Row]]], rows: Sequence[Row]) -> str:
    checks = "".join(f'<label><input type="checkbox" value="{v}" checked> {badge(v)}</label>'
                     for v in VERDICTS)
    filters = (f'<div id="filters" hidden><label>filter <input id="q" type="search" size="32" '
               f'placeholder="id, words of the quote, kind"></label>{checks}<span id="shown"></span></div>')
    lines = []
    for src, group in groups:
        for r in group:
            kind = "source arithmetic" if r.apart else r.claim.kind.replace("_", " ")
            lines.append(
                f'<tr data-verdict="{r.verdict}" data-quote="{_e(" ".join(r.claim.quote.split()))}">'
                f"<td>{badge(r.verdict)}</td>"
                f'<td><a href="{_e(page_name(src))}#{_e(anchor(r.claim.id))}">'
                f"<code>{_e(r.claim.id)}</code></a></td>"
                f"<td>{_e(src.id)}</td><td>{_e(kind)}</td><td>{_e(r.claimed_text)}</td>"
                f"<td>{_e(r.measured_text if r.measured is not None else '-')}</td></tr>")
    body = (f"<h1>Claims about small CNNs, measured</h1>"
            f"<p>Every numeric claim of five blog posts and notebooks, with what this project measured "
            f"and the verdict. Claims of kind <em>source arithmetic</em> check a source's own numbers "
            f"against each other and are counted apart from measurements.</p>{_legend()}"
            f"<h2>Verdicts per source</h2>{_counts_table(groups, rows)}"
            f"<h2>Every claim</h2>{filters}"
            f"<table class=\"claims\"><thead><tr><th>verdict</th><th>claim</th><th>source</th><th>kind</th>"
            f"<th>claimed</th><th>measured</th></tr></thead><tbody>{''.join(lines)}</tbody></table>"
            f'<script src="filter.js"></script>')
    return _document("Claims about small CNNs, measured", body)


def write(rows: Sequence[Row], out: Path) -> Path:
    """Write index.html, one page per source, style.css, filter.js, and the plots and result
    files the verdicts rest on, under ``out``; return the index's path."""
    out.mkdir(parents=True, exist_ok=True)
    files = _Files(out)
    groups = by_source(list(rows))
    (out / "style.css").write_text(CSS, encoding="utf-8")
    (out / "filter.js").write_text(FILTER_JS, encoding="utf-8")
    for src, group in groups:
        (out / page_name(src)).write_text(_source_page(src, group, files), encoding="utf-8")
    index = out / "index.html"
    index.write_text(_index(groups, rows), encoding="utf-8")
    return index

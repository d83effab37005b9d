"""The annotated edition (claims.html): quotes highlighted in their source's text, cards with
the verdicts, an index; and, with Chromium, the real pages rendered in a headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from claims import cache, html, sources
from claims.__main__ import main
from claims.registry import Claim, Source, registry
from claims.report import Row

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "sudo apt-get install -y --no-install-recommends chromium"

TEXT = """Intro line.

The model has 3,090
   trainable parameters. It reaches 99.2% accuracy.
Some words in between, then the end: it trains in 40 epochs.

A sentence nobody quotes.
"""
SRC = Source("toy", "A toy post", "Ann", "Blog", "MNIST")


def claim(cid: str, quote: str, kind: str = "parameter_count") -> Claim:
    return Claim(cid, SRC, kind, quote, 1, {"statistic": "params"})


def row(c: Claim, verdict: str = "holds", figures: tuple[str, ...] = (),
        evidence: tuple[str, ...] = ()) -> Row:
    return Row(c, verdict, 1, "1", "1", f"reason of {c.id}", "exact", evidence, figures)


@pytest.fixture
def toy_sources(tmp_path, monkeypatch):
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "README.md").write_text(
        "| file | title | author |\n|---|---|---|\n| 000_toy.txt | A toy post | Ann |\n")
    (folder / "000_toy.txt").write_text(TEXT)
    monkeypatch.setenv("LEAN_CNN_SOURCES", str(folder))
    sources.files.cache_clear()
    yield folder
    sources.files.cache_clear()


class Marks(HTMLParser):
    """The marks (with their claims and text), the cards and the links and sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[list[str], str]] = []
        self.cards: list[str] = []
        self.urls: list[str] = []
        self.hidden_filters = None
        self._in_mark = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "mark":
            self.marks.append(((a.get("data-claims") or "").split(), ""))
            self._in_mark = True
        if a.get("data-claim"):
            self.cards.append(a["data-claim"] or "")
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]
        if a.get("id") == "filters":
            self.hidden_filters = "hidden" in a

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data: str) -> None:
        if self._in_mark:
            ids, text = self.marks[-1]
            self.marks[-1] = (ids, text + data)


def parse(text: str) -> Marks:
    parser = Marks()
    parser.feed(text)
    return parser


def check_marks(page: Marks, claims: list[Claim]) -> None:
    """Every claim: one card, and each part of its quote inside one of its marks, in order,
    with no mark of it that holds none of its parts (so nothing is highlighted twice)."""
    for c in claims:
        assert page.cards.count(c.id) == 1, c.id
        mine = [sources.squeeze(text) for ids, text in page.marks if c.id in ids]
        parts = sources.fragments(c.quote)
        assert mine, f"{c.id} is not highlighted"
        assert len(mine) <= len(parts), f"{c.id} is highlighted {len(mine)} times for {len(parts)} parts"
        assert sources.quoted_in(c.quote, " ".join(mine)), c.id


@pytest.mark.unit
def test_each_quote_is_highlighted_once_with_every_claim_listed(tmp_path, toy_sources):
    same_a = claim("toy.a", "The model has 3,090 trainable parameters.")
    same_b = claim("toy.b", "The model has 3,090 trainable parameters.", "output_shape")
    inner = claim("toy.c", "It reaches 99.2% accuracy.")
    elided = claim("toy.d", "The model has 3,090 [...] then the end: it trains in 40 epochs.")
    lost = claim("toy.e", "This sentence is not in the text.")
    rows = [row(same_a), row(same_b, "refuted"), row(inner, "inconclusive"), row(elided, "pending"),
            row(lost, "unmeasurable")]
    html.write(rows, tmp_path / "site")
    text = (tmp_path / "site" / "toy.html").read_text()
    page = parse(text)
    check_marks(page, [same_a, same_b, inner, elided])
    # the shared sentence is one mark carrying three claims (a, b, and d's first part)
    shared = [ids for ids, t in page.marks if "toy.a" in ids]
    assert shared == [["toy.a", "toy.b", "toy.d"]]
    assert sum("toy.d" in ids for ids, _ in page.marks) == 2  # each part of the elided quote
    assert page.cards.count("toy.e") == 1 and "Quotes not found in the text" in text
    assert "A sentence nobody quotes." in text and "<mark" not in text.split("A sentence nobody")[1]
    # verdicts by more than colour: symbol and letter
    assert "✗ R refuted" in text and "? I inconclusive" in text and "○ P pending" in text


@pytest.mark.unit
def test_regions_merge_overlapping_quotes():
    merged = html.regions({"a": [(0, 10)], "b": [(5, 20)], "c": [(30, 40)], "d": [(20, 25)]})
    assert [(r.start, r.end, r.claims) for r in merged] == [(0, 20, ["a", "b"]), (20, 25, ["d"]),
                                                            (30, 40, ["c"])]


@pytest.mark.unit
def test_spans_map_back_to_the_unsqueezed_text():
    raw = "alpha  beta\n gamma\n\n delta"
    assert [raw[a:b] for a, b in sources.spans("beta gamma", raw)] == ["beta\n gamma"]
    assert [raw[a:b] for a, b in sources.spans("alpha [...] delta", raw)] == ["alpha", "delta"]
    assert sources.spans("delta [...] alpha", raw) is None


@pytest.mark.unit
def test_plots_and_result_files_are_copied_and_nothing_is_fetched(tmp_path, toy_sources, monkeypatch):
    results = tmp_path / "results"
    (results / "plots").mkdir(parents=True)
    (results / "plots" / "run.png").write_bytes(b"\x89PNG fake")
    (results / "run.json").write_text("{}")
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(results))
    c = claim("toy.a", "It reaches 99.2% accuracy.", "accuracy")
    html.write([row(c, figures=(str(results / "plots" / "run.png"),), evidence=("results/run.json",))],
               tmp_path / "site")
    site = tmp_path / "site"
    assert (site / "plots" / "run.png").read_bytes() == b"\x89PNG fake"
    assert (site / "evidence" / "run.json").read_text() == "{}"
    for page in ("toy.html", "index.html"):
        parsed = parse((site / page).read_text())
        assert parsed.urls and all(not re.match(r"[a-z]+:", u) for u in parsed.urls), parsed.urls
        for url in parsed.urls:
            assert (site / url.split("#")[0]).exists() or url.startswith("#"), url
    assert 'src="plots/run.png"' in (site / "toy.html").read_text()
    assert 'href="evidence/run.json"' in (site / "toy.html").read_text()


@pytest.mark.unit
def test_the_index_counts_and_lists_every_claim(tmp_path, toy_sources):
    rows = [row(claim("toy.a", "Intro line.")),
            row(claim("toy.b", "Intro line.", "source_arithmetic"), "refuted")]
    index = html.write(rows, tmp_path / "site").read_text()
    page = parse(index)
    assert page.hidden_filters is True  # the filters show only where the script runs
    assert index.count('<tr data-verdict="') == 2 and 'href="toy.html#c-toy.a"' in index
    counts = re.search(r"<tr><td><a href=\"toy.html\">A toy post</a></td>(.*?)</tr>", index).group(1)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", counts) == ["1", "1", "", "", "", "", "1 ✗ refuted"]


@pytest.mark.unit
def test_without_the_source_text_the_claims_are_still_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAN_CNN_SOURCES", str(tmp_path / "nowhere"))
    sources.files.cache_clear()
    html.write([row(claim("toy.a", "Intro line."))], tmp_path / "site")
    text = (tmp_path / "site" / "toy.html").read_text()
    assert "source text is not available" in text and 'data-claim="toy.a"' in text


# --- in a real browser -----------------------------------------------------------------------

def chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name) or name
    pytest.skip(f"Chromium is not installed; install it with: {INSTALL}")


def browse(binary: str, url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                               "--no-first-run", "--disable-background-networking",
                               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                               "--hide-scrollbars", *extra, url],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.browser
def test_the_annotated_sources_render_in_chromium(tmp_path, tmp_path_factory, monkeypatch):
    """Every claim of the registry highlighted in its source's page as Chromium builds it,
    the index's filters running, and a screenshot of each page that is not blank."""
    binary = chromium()
    if not sources.available():
        pytest.skip(f"the source documents are not at {sources.directory()}: set LEAN_CNN_SOURCES")
    from PIL import Image

    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path_factory.getbasetemp() / "claims-report-cache.json"))
    site = tmp_path / "site"
    assert main(["report", "--format", "html", "--out", str(site)]) == 0
    shots = Path(os.environ.get("LEAN_CNN_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    claims = list(registry())
    for src in {c.source.id: c.source for c in claims}.values():
        shot = shots / f"{src.id}.png"
        page = parse(browse(binary, (site / html.page_name(src)).as_uri(), "--dump-dom",
                            f"--screenshot={shot}", "--window-size=1100,1400"))
        check_marks(page, [c for c in claims if c.source.id == src.id])
        colours = Image.open(shot).convert("RGB").getcolors(1 << 20)
        assert colours is not None and len(colours) > 50, f"{shot} looks blank"
    index = browse(binary, (site / "index.html").as_uri(), "--dump-dom",
                   f"--screenshot={shots / 'index.png'}", "--window-size=1100,1400")
    parsed = parse(index)
    assert parsed.hidden_filters is False, "the filter script did not run"
    assert re.search(rf">{len(claims)} of {len(claims)} claims shown<", index)
    assert (shots / "index.png").stat().st_size > 10_000
    # the filters, set by the address: one verdict; a word of one quote
    static = (site / "index.html").read_text()
    refuted = browse(binary, (site / "index.html").as_uri() + "#v=refuted", "--dump-dom")
    visible = re.findall(r'<tr data-verdict="(\w+)"(?![^>]*\shidden="")', refuted)
    assert visible and set(visible) == {"refuted"}
    assert len(visible) == static.count('<tr data-verdict="refuted"')
    first = claims[0]
    words = max(first.quote.split(), key=len)
    found = browse(binary, (site / "index.html").as_uri() + f"#q={first.id}%20{words}", "--dump-dom")
    assert re.search(r">1 of \d+ claims shown<", found), words
    (shots / "pages.json").write_text(json.dumps(sorted(p.name for p in shots.glob("*.png"))))


@pytest.mark.unit
def test_a_sentence_many_claims_quote_tags_them_by_verdict(tmp_path, toy_sources):
    quote = "Intro line."
    rows = [row(claim(f"toy.{i}", quote), "holds" if i < 4 else "pending") for i in range(6)]
    text = (tmp_path / "site" / "toy.html").read_text() if html.write(rows, tmp_path / "site") else ""
    tags = re.search(r'<sup class="tags">(.*?)</sup>', text).group(1)
    assert re.findall(r">([^<]+)</a>", tags) == ["✓H×4", "○P×2"]
    assert 'href="#c-toy.0"' in tags and 'href="#c-toy.4"' in tags
    check_marks(parse(text), [r.claim for r in rows])

"""The claims report, run as a user runs it: its formats, its fit to the terminal, its
filters, its start-up without torch and its cache of measurements."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from claims import cache, report, terminal
from claims.__main__ import main
from claims.registry import DATA_DIR, Claim, Source, load, registry
from claims.report import Row

ROOT = Path(__file__).resolve().parent.parent
# Tests that run the whole registry's report are not marked unit: the first of them measures
# every claim (the rest read the session's cache); tests/test_claims.py measures them in -m fast.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def shared_cache(tmp_path_factory, monkeypatch):
    """One cache for the session's report runs, outside the checkout: the first run measures,
    the others read it (as long as nothing they depend on changes)."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path_factory.getbasetemp() / "claims-report-cache.json"))


# --- made-up rows: printing needs no measurement ---------------------------------------------

SRC = Source("tds-x", "How to reduce parameters", "Towards Data Science (author not named)",
             "Towards Data Science", "MNIST")
OTHER = Source("other", "Another post", "Chris", "MachineCurve", "KMNIST")


def row(cid: str, verdict: str, kind: str = "parameter_count", source: Source = SRC, expect: str = "holds",
        quote: str = "The model has 3,090 trainable parameters, far fewer than the 431,242 of the dense one.",
        ) -> Row:
    claim = Claim(cid, source, kind, quote, 3090, {"statistic": "params"}, expect=expect)
    measured = None if verdict in ("pending", "unmeasurable") else 3090
    return Row(claim, verdict, measured, "3,090" if measured else "-", "3,090",
               "needs a training result, results/x.json: run 'python -m claims train x'"
               if measured is None else "measured 3,090; claimed 3,090")


ROWS = [row("tds-x.a3.trainable", "holds"),
        row("tds-x.a-rather-long-claim-identifier.with-parts", "refuted", expect="refuted"),
        row("tds-x.a1.best", "inconclusive"), row("tds-x.a2.best", "pending"),
        row("tds-x.hardware", "unmeasurable"),
        row("tds-x.ten-percent", "refuted", kind="source_arithmetic", expect="refuted"),
        row("other.gap", "holds", source=OTHER)]


@pytest.mark.unit
@pytest.mark.parametrize("columns", [80, 200])
def test_one_line_per_claim_within_the_width_its_id_whole(columns):
    text = terminal.as_terminal(ROWS, columns)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= columns
    claim_lines = [line for line in lines if re.match(r"  [^\w\s] \w+ +\S", line)]
    assert len(claim_lines) == len(ROWS)
    for r, line in zip(sorted(ROWS, key=lambda r: (r.claim.source.id != "tds-x", r.apart)), claim_lines,
                       strict=True):
        short = f"{report.MARKS[r.verdict]} {r.verdict[0].upper()}"
        verdict = r.verdict if columns >= terminal.WIDE else short
        assert verdict in line and f" {r.claim.id} " in f"{line} "  # whole, to be copied to --id
    long_id = next(line for line in claim_lines if "a-rather-long-claim" in line)
    if columns == 80:  # too long for its column: the value goes on the next line, in the value column
        below = lines[lines.index(long_id) + 1]
        assert long_id.endswith("with-parts") and below.lstrip().startswith("3,090 → 3,090")
        assert below.index("3,090") == lines[lines.index(claim_lines[0])].index("3,090 → 3,090")
    if columns == 200:  # room for the quote
        assert sum("“The model has 3,090" in line for line in claim_lines) == len(ROWS)


@pytest.mark.unit
def test_the_source_heading_says_each_thing_once():
    heading = report.source_heading(SRC)
    assert heading.count("Towards Data Science") == 1
    assert report.source_heading(OTHER) == "Another post — Chris, MachineCurve (KMNIST)"
    text = terminal.as_terminal(ROWS, 200)
    assert text.count(heading) == 1


@pytest.mark.unit
def test_source_arithmetic_is_counted_apart():
    text = report.counts_text([r for r in ROWS if r.claim.source is SRC])
    assert text.startswith("5 on models and data: 1 ✓ holds, 1 ✗ refuted, 1 ? inconclusive, 1 ○ pending")
    assert text.endswith("; 1 source arithmetic: 1 ✗ refuted")
    table = report.readme_summary(ROWS)
    lines = table.splitlines()
    assert "source arithmetic" in lines[0] and "✓ holds" in lines[0]
    tds = next(line for line in lines if "How to reduce" in line)
    cells = [c.strip() for c in tds.strip("|").split("|")]
    assert cells[1:] == ["5", "1", "1", "1", "1", "1", "1 refuted"]
    assert lines[-1].startswith("| **all sources**")
    assert [c.strip() for c in lines[-1].strip("|").split("|")][1:3] == ["6", "2"]


@pytest.mark.unit
def test_the_report_ends_with_what_the_pending_wait_for(monkeypatch):
    monkeypatch.setattr(terminal.datasets, "on_disk", lambda name, root=None: True)
    waiting = [replace(row(f"tds-x.p{i}", "pending"), waits_for=w) for i, w in enumerate(
        ["train b_recipe", "train a_recipe", "train b_recipe", "data kmnist", "benchmarks", "", "other",
         "retrain mnist_dense0", "data cats_vs_dogs", "train lenet3_halved", "train lenet2_dropout_grid"])]
    text = terminal.as_terminal([*ROWS[:1], *waiting], 200)
    tail = text[text.index("The 11 pending wait for:"):].splitlines()
    assert tail[1:] == [  # datasets first: the training reads them
        "  the kmnist dataset (1 claim): python -m claims data fetch kmnist",
        "  the cats_vs_dogs dataset (1 claim): download by hand (python -m claims data list says "
        "where), then: python -m claims data fetch cats_vs_dogs --from ZIP",
        # a grid before the recipe that takes its best point
        "  training results (5 claims): python -m claims train a_recipe b_recipe lenet2_dropout_grid "
        "lenet3_halved (add --device cpu to train without a GPU)",
        "  full runs in place of capped ones (1 claim): python -m claims train mnist_dense0 --replace (add "
        "--device cpu to train without a GPU)",
        "  benchmark timings (1 claim): the reasons give the pytest-benchmark command (-v)",
        "  something else (2 claims): the reasons say what (-v)"]
    narrow = terminal.as_terminal([*ROWS[:1], *waiting], 80).splitlines()
    assert max(map(len, narrow)) <= 80
    assert "wait for" not in terminal.as_terminal(ROWS[:1], 80)  # nothing pending, nothing said


@pytest.mark.unit
def test_training_that_needs_a_dataset_not_on_disk_is_listed_after_it(monkeypatch):
    """A train command naming a recipe whose dataset is missing would stop at once: those
    recipes get a line of their own, after the dataset's, with its fetch command where no
    claim of its own named it."""
    absent = {"kmnist", "mnist"}
    monkeypatch.setattr(terminal.datasets, "on_disk", lambda name, root=None: name not in absent)
    waiting = [replace(row(f"tds-x.p{i}", "pending"), waits_for=w) for i, w in enumerate(
        ["data kmnist", "train kmnist_gap", "train kmnist_traditional", "train fashion_2x392_d50",
         "train lenet3_halved", "train lenet2_dropout_grid", "train not_a_recipe"])]
    tail = terminal.as_terminal([*ROWS[:1], *waiting], 400).split("The 7 pending wait for:")[1]
    assert tail.splitlines()[1:] == [
        "  the kmnist dataset (1 claim): python -m claims data fetch kmnist",
        "  training results (2 claims): python -m claims train fashion_2x392_d50 not_a_recipe "
        "(add --device cpu to train without a GPU)",
        "  training results, once the kmnist dataset is there (2 claims): python -m claims train "
        "kmnist_gap kmnist_traditional (add --device cpu to train without a GPU)",
        "  training results, once the mnist dataset is there (python -m claims data fetch mnist) "
        "(2 claims): python -m claims train lenet2_dropout_grid lenet3_halved (add --device cpu "
        "to train without a GPU)"]


@pytest.mark.unit
def test_verbose_shows_the_whole_quote_and_reason():
    long_quote = "word " * 60 + "the end of the quote."
    r = row("tds-x.long", "pending", quote=long_quote)
    short = terminal.as_terminal([r], 80)
    assert "the end of the quote" not in short
    text = terminal.as_terminal([r], 80, verbose=True)
    flat = " ".join(text.split())
    assert "the end of the quote.”" in flat and "run 'python -m claims train x'" in flat
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.unit
def test_verbose_keeps_a_url_whole_to_be_copied():
    url = "https://download.example.org/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/archive_5340.zip"
    r = row("tds-x.url", "pending", quote=f"Download {url} and unpack it.")
    text = terminal.as_terminal([r], 60, verbose=True)
    assert any(url in line for line in text.splitlines())  # on one line, not broken at its hyphens


@pytest.mark.unit
def test_colour_on_a_terminal_only(monkeypatch):
    coloured = terminal.as_terminal(ROWS, 100, colour=True)
    assert "\x1b[1;31m✗ refuted" in coloured
    assert ANSI.sub("", coloured) == terminal.as_terminal(ROWS, 100)

    class Tty:
        def isatty(self) -> bool:
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert terminal.use_colour("auto", Tty())
    assert not terminal.use_colour("auto", io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not terminal.use_colour("auto", Tty())
    assert terminal.use_colour("always") and not terminal.use_colour("never", Tty())


@pytest.mark.unit
def test_the_width_is_the_terminal_s(monkeypatch):
    monkeypatch.setenv("COLUMNS", "123")
    assert terminal.width() == 123


@pytest.mark.unit
def test_ascii_stand_ins_where_the_output_cannot_write_the_symbols():
    class Latin1:
        encoding = "latin-1"
    assert terminal._marks(Latin1()) == report.ASCII_MARKS
    assert report.VERDICTS == __import__("claims.verdict").verdict.VERDICTS
    # every other symbol too, cut and wrapped within the width after its stand-in (an ASCII
    # terminal crashed on the source headings' dash; a reviewer's find)
    long_quote = "“The model” — far fewer… " * 8
    rows = [*ROWS, row("tds-x.long", "refuted", quote=long_quote)]
    for columns, verbose in ((80, False), (80, True), (200, False)):
        text = terminal.as_terminal(rows, columns, verbose, marks=report.ASCII_MARKS)
        assert text.isascii() and max(len(line) for line in text.splitlines()) <= columns
        assert " -> " in text and ("..." in text or verbose)


# --- the command, on the real registry ------------------------------------------------------

def test_json_lists_every_claim_with_its_keys(capsys):
    assert main(["report", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [c.id for c in registry()]
    keys = {"id", "source", "kind", "quote", "claimed", "relation", "tolerance", "measured", "verdict",
            "rule", "evidence", "reason", "marker"}
    assert all(set(r) == keys for r in rows)
    assert {r["verdict"] for r in rows} <= {"holds", "refuted", "inconclusive", "pending", "unmeasurable"}
    pending = [r for r in rows if r["verdict"] == "pending"]
    assert all(r["reason"].startswith("needs") for r in pending)
    assert all(r["reason"].startswith("not measurable") for r in rows if r["verdict"] == "unmeasurable")
    trained = [r for r in rows if r["verdict"] in ("holds", "refuted", "inconclusive") and r["evidence"]]
    assert trained and all(r["rule"] for r in trained)
    assert all(r["measured"] is None for r in pending)
    assert any(r["relation"] == ">" for r in rows)


def test_every_expected_refutation_is_refuted_with_its_arithmetic(capsys):
    main(["report", "--format", "json"])
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    refuted = [c for c in registry() if c.expect == "refuted"]
    assert len(refuted) >= 10
    for claim in refuted:
        assert rows[claim.id]["verdict"] == "refuted", claim.id
        assert claim.note in rows[claim.id]["reason"]


def test_filters_by_verdict_id_and_kind(capsys):
    assert main(["report", "--format", "json", "--verdict", "refuted"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["verdict"] for r in rows} == {"refuted"}
    assert main(["report", "--format", "json", "--id", "kmnist-gap.*", "--kind", "output_shape"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["id"].startswith("kmnist-gap.") and r["kind"] == "output_shape" for r in rows)
    assert len(rows) == sum(c.id.startswith("kmnist-gap.") and c.kind == "output_shape" for c in registry())
    assert main(["report", "--id", "no-such-claim*"]) == 2
    assert "no claim id matches 'no-such-claim*'" in capsys.readouterr().err
    # a filter that names nothing says which, and how to name something
    assert main(["report", "--id", "mnist-10k"]) == 2
    assert "--id takes a glob, e.g. 'mnist-10k.*'" in capsys.readouterr().err
    assert main(["report", "--source", "mnist-10k"]) == 2
    err = capsys.readouterr().err
    assert "unknown source 'mnist-10k'; the sources are" in err and "tds-mnist-10k" in err
    # filters that each name claims but none together: the general message
    assert main(["report", "--id", "kmnist-gap.*", "--kind", "pruning"]) == 2
    assert "no claim matches these filters" in capsys.readouterr().err


@pytest.mark.unit
def test_list_sources_measures_nothing(capsys, monkeypatch):
    monkeypatch.setattr(report, "rows", lambda *a, **k: pytest.fail("--list-sources measured"))
    assert main(["report", "--list-sources"]) == 0
    out = capsys.readouterr().out
    for source_id in {c.source.id for c in registry()}:
        assert re.search(rf"^{re.escape(source_id)}$", out, re.M)


def test_the_table_fits_80_columns_and_is_plain_when_piped(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    claim_lines = [line for line in out.splitlines() if re.match(r"  [^\w\s] \w+ +\S", line)]
    assert len(claim_lines) == len(registry())


def test_strict_passes_on_the_registry_and_fails_on_a_wrong_expectation(tmp_path, capsys):
    assert main(["report", "--strict", "--format", "json"]) == 0
    for path in DATA_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path)
    target = tmp_path / "tds-mnist-10k.toml"
    text = target.read_text().replace('claimed = 5380\nexpect = "refuted"\n', 'claimed = 5380\n')
    assert text != target.read_text()
    target.write_text(text)
    capsys.readouterr()
    assert main(["report", "--strict", "--registry", str(tmp_path), "--id", "mnist-10k.prune.*"]) == 1
    assert "mnist-10k.prune.keras-trainable is refuted" in capsys.readouterr().err
    assert main(["report", "--registry", str(tmp_path), "--id", "mnist-10k.prune.*"]) == 0


def test_markdown_has_a_table_per_source_and_the_totals(capsys):
    main(["report", "--format", "markdown"])
    out = capsys.readouterr().out
    assert all(f"## {report.source_heading(c.source)}" in out for c in registry())
    assert "| **all sources**" in out
    assert "## Model costs" in out


@pytest.mark.unit
def test_malformed_registry_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "broken.toml").write_text('[source]\nid = "x"\n')
    assert main(["report", "--registry", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "broken.toml" in err and "[source] lacks" in err


@pytest.mark.unit
def test_summary_command_prints_keras_rows(capsys):
    assert main(["summary", "mnist_approach2"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 5,490" in out and "Non-trainable params: 108" in out
    assert main(["summary", "nope"]) == 2
    assert "valid models:" in capsys.readouterr().err
    assert main(["summary", "fashion_dense", "hidden=7", "activation=relu"]) == 0
    assert "Total params: 54,904" in capsys.readouterr().out


@pytest.mark.unit
def test_help_needs_no_torch_and_shows_examples():
    script = ("import sys\nfrom claims.__main__ import main\n"
              "for argv in (['--help'], ['report', '--help']):\n"
              "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
              "print('IMPORTED', *sorted(m for m in ('torch', 'torchvision', 'scipy', 'models') "
              "if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    assert "report" in done.stdout and "summary" in done.stdout
    assert "examples:" in done.stdout and "--list-sources" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "IMPORTED"


def test_a_cached_report_imports_no_torch_even_with_pending_claims(capsys):
    """Its closing lines read the recipes' tables, not the recipes (whose checks build models):
    a reviewer found the footer importing torch, 2 s of a report meant to take a fraction."""
    assert main(["report"]) == 0  # measures, or reads this session's cache
    assert "pending wait for:" in capsys.readouterr().out
    script = ("import sys\nfrom claims.__main__ import main\nmain(['report'])\n"
              "print('IMPORTED', *sorted(m for m in ('torch', 'torchvision', 'models')\n"
              "                          if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    assert "pending wait for:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "IMPORTED"


@pytest.mark.unit
def test_the_report_process_ends_after_its_exit_handlers_and_a_flush(monkeypatch, capsys):
    """``exit_now``: exit handlers, then the streams flushed, then os._exit with the code."""
    import atexit
    import os

    from claims import __main__ as cli

    steps = []

    class Exited(Exception):
        pass

    def fake_exit(code):
        steps.append(("exit", code))
        raise Exited

    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: steps.append(("handlers",)))
    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys.stdout, "flush", lambda: steps.append(("flush",)))
    with pytest.raises(Exited):
        cli.exit_now(3)
    assert steps == [("handlers",), ("flush",), ("exit", 3)]


@pytest.mark.unit
@pytest.mark.parametrize(("failure", "code"), [(BrokenPipeError, 0), (OSError(28, "No space left"), 120),
                                               (None, 0)])
def test_the_report_process_exits_120_when_its_output_could_not_be_written(monkeypatch, failure, code):
    """A reader gone from the pipe loses nothing the user wants; a full disk loses output and
    must not look like success (Python's own exit status 120); a closed stdout is skipped."""
    import atexit
    import os

    from claims import __main__ as cli

    class Exited(Exception):
        pass

    def fake_exit(status):
        raise Exited(status)

    class Failing(io.StringIO):
        def flush(self):
            raise failure

    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: None)
    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "stdout", Failing() if failure is not None else None)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with pytest.raises(Exited) as exited:
        cli.exit_now(0)
    assert exited.value.args == (code,)
    assert ("could not write the output" in sys.stderr.getvalue()) == (code == 120)


@pytest.mark.unit
def test_python_m_claims_report_prints_all_and_exits_with_its_code():
    """The command-line report (which ends without Python's finalization) prints everything
    and exits with the report's code."""
    from claims.__main__ import QUICK_EXIT

    assert "report" in QUICK_EXIT
    done = subprocess.run([sys.executable, "-m", "claims", "report", "--id", "mnist-10k.ten-percent",
                           "--strict", "--color", "never"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "mnist-10k.ten-percent" in done.stdout and done.stdout.rstrip().endswith("1 ✓ holds")
    assert done.stderr == ""
    bad = subprocess.run([sys.executable, "-m", "claims", "report", "--id", "no-such-claim"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "no claim id matches 'no-such-claim'" in bad.stderr


# --- the cache -------------------------------------------------------------------------------

CLAIM_FILE = """\
[source]
id = "toy"
title = "Toy"
author = "A"
venue = "V"
dataset = "MNIST"

[[claims]]
id = "toy.sum"
kind = "source_arithmetic"
quote = "two and two make four"
claimed = {claimed}
measure = {{ statistic = "expression", expr = "2 + 2" }}
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A one-claim registry, its own results and data folders, and a cache file; judge_all
    counts its calls."""
    registry_dir = tmp_path / "claims"
    registry_dir.mkdir()
    (registry_dir / "toy.toml").write_text(CLAIM_FILE.format(claimed=4))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run.json").write_text('{"a": 1}')
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LEAN_CNN_DATA", str(tmp_path / "data"))
    calls = []
    real = report.judge_all

    def counting(claims):
        claims = list(claims)
        calls.append([c.id for c in claims])
        return real(claims)
    monkeypatch.setattr(report, "judge_all", counting)

    def run() -> list[Row]:
        return report.rows(load(registry_dir), [registry_dir], tmp_path / "cache.json")[0]
    return registry_dir, tmp_path, calls, run


@pytest.mark.unit
def test_the_cache_serves_an_unchanged_report_without_measuring(toy):
    _, tmp_path, calls, run = toy
    first = run()
    assert calls == [["toy.sum"]] and first[0].verdict == "holds"
    again = run()
    assert calls == [["toy.sum"]] and again == first
    stored = json.loads((tmp_path / "cache.json").read_text())  # JSON, never pickle
    assert stored["key"] == cache.key([toy[0]]) and "toy.sum" in stored["entry"]["rows"]


@pytest.mark.unit
def test_a_changed_claim_file_is_measured_again(toy):
    registry_dir, _, calls, run = toy
    run()
    (registry_dir / "toy.toml").write_text(CLAIM_FILE.format(claimed=5))
    rows = run()
    assert len(calls) == 2 and rows[0].verdict == "refuted"


@pytest.mark.unit
def test_a_changed_result_file_is_measured_again(toy):
    _, tmp_path, calls, run = toy
    run()
    (tmp_path / "results" / "run.json").write_text('{"a": 2}')
    run()
    (tmp_path / "results" / "new.json").write_text("{}")
    run()
    assert len(calls) == 3


@pytest.mark.unit
def test_a_changed_source_file_is_measured_again(toy, monkeypatch):
    _, tmp_path, calls, run = toy
    code = tmp_path / "repo"
    for name in cache.CODE_DIRS:
        (code / name).mkdir(parents=True)
        (code / name / "module.py").write_text("X = 1\n")
    monkeypatch.setattr(cache, "REPO", code)
    run()
    run()
    (code / "models" / "module.py").write_text("X = 2\n")
    run()
    assert len(calls) == 2


@pytest.mark.unit
def test_a_changed_data_file_or_torch_version_is_measured_again(toy, monkeypatch):
    _, tmp_path, calls, run = toy
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    (tmp_path / "data" / "mnist" / "x.gz").write_bytes(b"1")
    run()
    (tmp_path / "data" / "mnist" / "x.gz").write_bytes(b"22")
    run()
    monkeypatch.setattr(cache, "_version", lambda package: "9.9" if package == "torch" else "1")
    run()
    assert len(calls) == 3


@pytest.mark.parametrize("junk", [b"", b"\x80\x81 not text", b"{not json", b'["a list"]',
                                  b'{"format": 1, "key": "x", "entry": []}'])
@pytest.mark.unit
def test_a_corrupt_cache_is_ignored_and_rewritten(toy, junk):
    _, tmp_path, calls, run = toy
    (tmp_path / "cache.json").write_bytes(junk)
    assert run()[0].verdict == "holds"
    assert len(calls) == 1
    assert json.loads((tmp_path / "cache.json").read_text())["entry"]["rows"]["toy.sum"]["verdict"] == "holds"


@pytest.mark.unit
def test_a_cache_entry_of_the_wrong_shape_is_measured_again(toy):
    _, tmp_path, calls, run = toy
    run()
    stored = json.loads((tmp_path / "cache.json").read_text())
    good = stored["entry"]["rows"]["toy.sum"]
    for bad in ({"verdict": "holds"}, {**good, "verdict": "bogus"}, {**good, "evidence": "results/x.json"},
                {**good, "reason": None}, ["a", "list"]):
        stored["entry"]["rows"]["toy.sum"] = bad
        (tmp_path / "cache.json").write_text(json.dumps(stored))
        assert run()[0].reason.startswith("measured")
    assert len(calls) == 6


@pytest.mark.unit
def test_the_cache_is_written_atomically(toy, monkeypatch):
    _, tmp_path, _, run = toy
    from training import files

    written = []
    real = files.write_atomic
    monkeypatch.setattr(files, "write_atomic", lambda target, data, **k: (written.append(target),
                                                                          real(target, data, **k)))
    run()
    assert written == [tmp_path / "cache.json"]
    assert not list(tmp_path.glob(".cache.json.*"))


@pytest.mark.unit
def test_readme_summary_takes_the_verdicts_themselves():
    from claims.verdict import Verdict

    verdicts = [Verdict(r.claim, r.verdict, r.measured, r.reason) for r in ROWS]
    assert report.readme_summary(verdicts) == report.readme_summary(ROWS)


@pytest.mark.unit
def test_the_report_reads_the_results_directory_it_is_given_and_refuses_a_missing_one(tmp_path, monkeypatch,
                                                                                      capsys):
    """Found by a new-user trial: only $LEAN_CNN_RESULTS named another results directory, and a
    mistyped one turned every training claim pending without a word."""
    monkeypatch.delenv("LEAN_CNN_RESULTS", raising=False)
    assert main(["report", "--id", "mnist-10k.a1.*", "--results", str(tmp_path / "typo")]) == 2
    assert "the results directory" in capsys.readouterr().err
    monkeypatch.setenv("LEAN_CNN_RESULTS", str(tmp_path / "typo"))
    assert main(["report", "--id", "mnist-10k.a1.*"]) == 2
    assert "($LEAN_CNN_RESULTS) is not a directory" in capsys.readouterr().err
    monkeypatch.delenv("LEAN_CNN_RESULTS")
    assert main(["report", "--id", "mnist-10k.a1.*", "--results", str(tmp_path), "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert f"python -m claims train mnist_approach1 --results {tmp_path} (add" in out

"""The claims report, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from claims.__main__ import main
from claims.registry import DATA_DIR, registry

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.fast


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


def test_every_expected_refutation_is_refuted_with_its_arithmetic(capsys):
    main(["report", "--format", "json"])
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    refuted = [c for c in registry() if c.expect == "refuted"]
    assert len(refuted) >= 10
    for claim in refuted:
        assert rows[claim.id]["verdict"] == "refuted", claim.id
        assert claim.note in rows[claim.id]["reason"]


def test_strict_passes_on_the_registry_and_fails_on_a_wrong_expectation(tmp_path, capsys):
    assert main(["report", "--strict", "--format", "json"]) == 0
    for path in DATA_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path)
    target = tmp_path / "tds-mnist-10k.toml"
    text = target.read_text().replace('claimed = 5380\nexpect = "refuted"\n', 'claimed = 5380\n')
    assert text != target.read_text()
    target.write_text(text)
    capsys.readouterr()
    assert main(["report", "--strict", "--registry", str(tmp_path)]) == 1
    assert "mnist-10k.prune.keras-trainable is refuted" in capsys.readouterr().err
    assert main(["report", "--registry", str(tmp_path)]) == 0


def test_markdown_has_a_table_per_source_and_the_totals(capsys):
    main(["report", "--format", "markdown"])
    out = capsys.readouterr().out
    sources = {c.source.title for c in registry()}
    assert all(f"## {title}" in out for title in sources)
    assert "| **all sources**" in out


def test_malformed_registry_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "broken.toml").write_text('[source]\nid = "x"\n')
    assert main(["report", "--registry", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "broken.toml" in err and "[source] lacks" in err


def test_summary_command_prints_keras_rows(capsys):
    assert main(["summary", "mnist_approach2"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 5,490" in out and "Non-trainable params: 108" in out
    assert main(["summary", "nope"]) == 2
    assert "valid models:" in capsys.readouterr().err
    assert main(["summary", "fashion_dense", "hidden=7", "activation=relu"]) == 0
    assert "Total params: 54,904" in capsys.readouterr().out


def test_module_entry_point_and_help():
    done = subprocess.run([sys.executable, "-m", "claims", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert "report" in done.stdout and "summary" in done.stdout

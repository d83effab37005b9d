"""The README's verdict tables are generated from the report: a stale README fails."""

from __future__ import annotations

import pytest

from claims import readme
from claims.registry import registry
from claims.verdict import judge

pytestmark = pytest.mark.unit


def test_the_readme_verdict_tables_are_current() -> None:
    from training import datasets

    absent = [name for name in ("mnist", "fashion-mnist") if datasets.status(name) != "present"]
    if absent:
        pytest.skip(f"{', '.join(absent)} absent, so the README's dataset claims would read pending: "
                    "run 'python -m claims data fetch' first")
    verdicts = [judge(c) for c in registry()]
    text = readme.README.read_text(encoding="utf-8")
    assert readme.rewrite(text, verdicts) == text, (
        "README.md's verdict tables differ from the report: run 'python -m claims readme'")


def test_rewrite_replaces_only_the_generated_part() -> None:
    verdicts = [judge(c) for c in registry()[:3]]
    text = f"intro\n{readme.BEGIN}\nSTALE TABLE\n{readme.END}\noutro\n"
    out = readme.rewrite(text, verdicts)
    assert out.startswith("intro\n" + readme.BEGIN) and out.endswith(readme.END + "\noutro\n")
    assert "STALE TABLE" not in out and "3 claims" in out
    with pytest.raises(ValueError, match="no generated part"):
        readme.rewrite("no markers", verdicts)

"""One test per claim: measure, compare, and fail with the numbers when it does not hold."""

from __future__ import annotations

import pytest

from claims.verdict import HOLDS, PENDING, judge


def test_claim(claim, trained, request):
    trained(claim)
    verdict = judge(claim)
    if verdict.verdict == PENDING:
        hint = ""
        if claim.marker == "gpu" and request.config.getoption("--train") in ("auto", "never"):
            hint = " (pytest -m gpu trains it on a CUDA machine; --train cpu trains it here, slowly)"
        pytest.skip(verdict.reason + hint)
    assert verdict.verdict == HOLDS, f"{claim.id}: {verdict.reason}"

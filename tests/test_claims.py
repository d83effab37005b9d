"""One test per claim: measure, compare, and fail with the numbers when it does not hold."""

from __future__ import annotations

import pytest

from claims.verdict import HOLDS, PENDING, judge


def test_claim(claim, trained):
    trained(claim)
    verdict = judge(claim)
    if verdict.verdict == PENDING:
        pytest.skip(verdict.reason)
    assert verdict.verdict == HOLDS, f"{claim.id}: {verdict.reason}"

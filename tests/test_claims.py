"""One test per claim: measure, judge, and fail with the numbers when it does not hold.

Only a decided verdict passes or fails: a pending claim skips with the command that measures
it, an unmeasurable one with whose figure it is, and an inconclusive one with how many seeds
would decide it. None of them is ever counted as a pass.
"""

from __future__ import annotations

import pytest

from claims.verdict import HOLDS, INCONCLUSIVE, PENDING, UNMEASURABLE, judge


def test_claim(claim, trained, request):
    trained(claim)
    verdict = judge(claim)
    if verdict.verdict == PENDING:
        hint = ""
        if claim.marker == "gpu" and request.config.getoption("--train") in ("auto", "never"):
            hint = " (pytest -m gpu trains it on a CUDA machine; --train cpu trains it here, slowly)"
        pytest.skip(f"pending: {verdict.reason}{hint}")
    if verdict.verdict in (INCONCLUSIVE, UNMEASURABLE):
        pytest.skip(f"{verdict.verdict}: {verdict.reason}")
    assert verdict.verdict == HOLDS, f"{claim.id}: {verdict.reason}"

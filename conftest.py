"""Every claim of the registry becomes one test, id = claim id (pytest_generate_tests).

A claim the registry expects refuted (a contradiction found in its source) is a strict
xfail whose reason carries the arithmetic, so a change that makes it hold is noticed.
"""

from __future__ import annotations

import pytest

from claims.registry import Claim, registry


def claim_param(claim: Claim):
    marks = [getattr(pytest.mark, claim.marker)]
    if claim.expect == "refuted":
        marks.append(pytest.mark.xfail(strict=True, reason=f"refuted by arithmetic: {claim.note}"))
    return pytest.param(claim, id=claim.id, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim" in metafunc.fixturenames:
        metafunc.parametrize("claim", [claim_param(c) for c in registry()])

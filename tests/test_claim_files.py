"""Issue 12, item 5: no claim file can hang or crash the report. Every loading or measuring
error names the file, the claim id and what is wrong; the evaluator bounds its work."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims.measures import MeasureError, evaluate, measure
from claims.registry import Claim, Source
from claims.verdict import judge

pytestmark = pytest.mark.unit
SOURCE = Source("src", "A title", "An author", "A venue", "MNIST")


def _claim(measure_table, claimed=1, file="claims/data/src.toml") -> Claim:
    return Claim("src.c1", SOURCE, "arithmetic", "a quote", claimed, measure_table, file=file)


@pytest.mark.parametrize(("expr", "problem"), [
    ("round(1, -1000000000)", "digits must be an integer"),
    ("1/0", "ZeroDivisionError"),
    ("int(1e999)", "OverflowError"),
    ("1e308 * 1e308", "beyond"),
    ("abs(" * 60 + "1" + ")" * 60, "nests"),
    ("1 +" * 400 + "1", "at most"),
])
def test_the_evaluator_refuses_what_would_hang_or_crash(expr, problem) -> None:
    start = time.perf_counter()
    with pytest.raises(MeasureError, match=problem):
        evaluate(expr, {})
    assert time.perf_counter() - start < 1


def test_a_deep_chain_of_references_is_refused_not_a_recursion_error() -> None:
    table = {"statistic": "expression", "expr": "1"}
    for _ in range(100):
        table = {"statistic": "expression", "expr": "x", "refs": {"x": table}}
    with pytest.raises(MeasureError, match="nested deeper than"):
        measure(table)


@pytest.mark.parametrize(("table", "problem"), [
    ({"statistic": "params", "model": "no_such_model"}, "unknown model 'no_such_model'"),
    ({"statistic": "params", "model": "mnist_approach1", "options": {"colour": 3}}, "has no option"),
    ({"statistic": "no_such_statistic"}, "unknown statistic"),
    ({"statistic": "output_shape", "model": "mnist_approach1", "row": 99}, "row 99 is not a row"),
    ({"statistic": "params"}, "needs the key"),
    ({"statistic": "expression", "expr": "1/0"}, "ZeroDivisionError"),
])
def test_a_measuring_error_names_the_file_the_claim_and_the_problem(table, problem) -> None:
    with pytest.raises(MeasureError) as error:
        judge(_claim(table))
    message = str(error.value)
    assert "claims/data/src.toml" in message and "'src.c1'" in message and problem in message


@settings(max_examples=60, deadline=1000)
@given(st.text(alphabet="0123456789+-*/%().e ,<>=absminroundit", max_size=60))
def test_random_expressions_give_a_value_or_a_measure_error(expr) -> None:
    try:
        evaluate(expr, {})
    except MeasureError:
        pass

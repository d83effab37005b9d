"""Can a claim fail? Judge perturbed copies of its measurement by the same rule as the report.

A check whose verdict does not move when the measurement moves is a defect, however green.
For every claim this builds its measurement (or, where it is not measured yet, a stand-in of
the shape its statistic returns, centred on the claimed value) and copies of it moved: numbers
just past the tolerance both ways, booleans flipped, lists changed, seeds and differences
shifted along a ladder of steps, a ranking with the claimed errors made rare and frequent.
The claim can fail when some copy is refuted and some copy holds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from claims.measures import Pending, Unmeasurable, measure
from claims.registry import Claim
from claims.verdict import decide, slack
from training.metrics import SHAPES, AllOf, Difference, Explained, Ranking, Seeds

#: Shifts tried, in units of the measurement's scale, both ways.
LADDER = tuple(2.0**k for k in range(-6, 21))


def _scale(claim: Claim, values: tuple[float, ...] = ()) -> float:
    claimed = claim.claimed[0] if claim.relation == "in" else claim.claimed
    spread = (max(values) - min(values)) if values else 0.0
    size = abs(claimed) if isinstance(claimed, (int, float)) and not isinstance(claimed, bool) else 1.0
    return max(spread, slack(claim, size), size * 1e-3, 1e-6)


def _centre(claim: Claim) -> float:
    if claim.relation == "in":
        return (claim.claimed[0] + claim.claimed[1]) / 2
    return float(claim.claimed)


def stand_in(claim: Claim) -> Any:
    """A measurement of the shape ``claim``'s statistic returns, centred on the claimed value."""
    shape = SHAPES.get(claim.measure.get("metric", ""), "value") \
        if claim.measure.get("statistic") == "training" else "value"
    if shape == "value" or isinstance(claim.claimed, bool):
        return claim.claimed
    if shape == "ranking":
        return _ranking_with(claim, 50)
    c, s = _centre(claim), _scale(claim)
    values = (c - s, c, c + s)
    if shape == "seeds":
        return Seeds(values)
    diff = Difference(values, (0.0, 0.0, 0.0), True, "stand-in")
    return diff if shape == "difference" else AllOf((diff,))


def _ranking_with(claim: Claim, count: int) -> Ranking:
    """Three seeds whose errors are the claimed cells ``count`` times each, a few others 20."""
    cells = {tuple(int(x) for x in c.split("->")) for c in claim.claimed}
    matrix = [[0] * 10 for _ in range(10)]
    for i in range(10):
        matrix[i][i] = 900
        matrix[i][(i + 5) % 10] = 20
    for i, j in cells:
        matrix[i][j] = count
    frozen = tuple(tuple(row) for row in matrix)
    return Ranking((frozen, frozen, frozen))


def _shifted(value: Any, step: float) -> Any:
    if isinstance(value, Seeds):
        return replace(value, values=tuple(v + step for v in value.values), lower_bound=False)
    if isinstance(value, Difference):
        return replace(value, a=tuple(v + step for v in value.a))
    if isinstance(value, AllOf):
        return AllOf(tuple(_shifted(i, step) for i in value.items))
    raise TypeError(type(value))


def _spread(value: Any) -> tuple[float, ...]:
    if isinstance(value, Seeds):
        return value.values
    if isinstance(value, Difference):
        return value.a + value.b
    if isinstance(value, AllOf):
        return tuple(v for i in value.items for v in _spread(i))
    return ()


def perturbed(claim: Claim, value: Any) -> list[Any]:
    """Copies of ``value`` moved as far as it takes to change a working verdict."""
    if isinstance(value, Explained):
        value = value.value
    if isinstance(value, (Seeds, Difference, AllOf)):
        unit = _scale(claim, _spread(value))
        return [value] + [_shifted(value, sign * k * unit) for k in LADDER for sign in (1, -1)]
    if isinstance(value, Ranking):
        return [value, _ranking_with(claim, 0), _ranking_with(claim, 400)]
    if isinstance(value, bool):
        return [value, not value]
    if isinstance(value, (int, float)):
        if claim.relation == "in":
            (low, high), eps = claim.claimed, _scale(claim) * 1e-3
            return [value, (low + high) / 2, low - slack(claim, low) - eps, high + slack(claim, high) + eps]
        c = float(claim.claimed)
        eps = max(abs(c) * 1e-6, 1e-9)
        past = slack(claim, c) + eps
        return [value, c, c + past, c - past]
    if isinstance(value, (list, tuple)):
        claimed = list(claim.claimed) if isinstance(claim.claimed, list) else [claim.claimed]
        changed = [claimed[0] + 1 if isinstance(claimed[0], (int, float)) else f"not {claimed[0]}",
                   *claimed[1:]]
        return [value, claimed, changed]
    return [value, claim.claimed]


def measurement(claim: Claim) -> Any:
    """The claim's measurement, or its stand-in when it cannot be measured here yet."""
    try:
        return measure(claim.measure)
    except Pending:
        return stand_in(claim)


def reachable(claim: Claim) -> set[str]:
    """The verdicts the claim's rule gives over its measurement's perturbed copies."""
    try:
        value = measurement(claim)
    except Unmeasurable:
        return set()
    return {decide(claim, v).verdict for v in perturbed(claim, value)}


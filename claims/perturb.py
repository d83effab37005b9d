"""Can a claim fail? Judge perturbed copies of its measurement by the same rule as the report.

A check whose verdict does not move when the measurement moves is a defect, however green.
For every claim this builds its measurement (or, where it is not measured yet, a stand-in of
the shape its statistic returns, centred on the claimed value) and copies of it moved: numbers
just past the tolerance both ways, booleans flipped, lists changed, seeds and differences
shifted along a ladder of steps, a ranking with the claimed errors made rare and frequent.
The claim can fail when some copy is refuted and some copy holds.

A training claim is also judged against altered copies of its result files
(``file_reachable``): the same metric code reads them, so a verdict that does not depend on
what the files hold is caught even where the measurement's shape looks right. Each copy
changes one run (one recipe, one grid point or pruning iteration, or all of a file's points)
and nothing else: its curves moved up or down, tilted over the epochs, flattened or made
jumpier, cut short, its test evaluations thinned, its claimed confusions made rare or common.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from claims import order_statistics, stats
from claims.measures import Pending, Unmeasurable, measure
from claims.registry import Claim
from claims.verdict import MIN_SESSIONS, decide, slack
from training import metrics
from training.metrics import SHAPES, AllOf, Difference, Explained, Picks, Ranking, Seeds

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
    if shape == "picks":
        return _picks_of(claim.claimed)
    c, s = _centre(claim), _scale(claim)
    values = (c - s, c, c + s)
    if shape == "seeds":
        return Seeds(values)
    diff = Difference(values, (0.0, 0.0, 0.0), True, "stand-in")
    if shape == "difference":
        return diff
    # an all_of of figures or ranges is made of Seeds parts; of comparisons, of differences
    return AllOf((Seeds(values),)) if claim.relation in ("==", "in") else AllOf((diff,))


#: Seeds a stand-in share of runs (a pick, a ranking) has: enough that none of them giving the
#: claimed one refutes it (the upper bound of 0 of n below 5% takes 59).
SHARE_RUNS = 60


def _ranking_with(claim: Claim, count: int) -> Ranking:
    """Seeds whose errors are the claimed cells ``count`` times each, a few others 20."""
    cells = {tuple(int(x) for x in c.split("->")) for c in claim.claimed}
    matrix = [[0] * 10 for _ in range(10)]
    for i in range(10):
        matrix[i][i] = 900
        matrix[i][(i + 5) % 10] = 20
    for i, j in cells:
        matrix[i][j] = count
    frozen = tuple(tuple(row) for row in matrix)
    return Ranking((frozen,) * SHARE_RUNS)


def _picks_of(value: Any, runs: int = SHARE_RUNS) -> Picks:
    return Picks((value,) * runs, "stand-in")


def _shifted(value: Any, step: float) -> Any:
    if isinstance(value, Seeds):
        return replace(value, values=tuple(v + step for v in value.values), lower_bound=False)
    if isinstance(value, Difference):
        return replace(value, a=tuple(v + step for v in value.a))
    if isinstance(value, AllOf):
        return replace(value, items=tuple(_shifted(i, step) for i in value.items))
    raise TypeError(type(value))


def _even(value: Any) -> Any:
    """``value`` with every compared run doing alike on held-out data (``HeldOut``), so that a
    comparison of over-fitting gaps is decided by the gaps alone."""
    if isinstance(value, Difference) and value.held_out is not None:
        held = value.held_out
        middle = statistics.fmean(held.a + held.b)
        return replace(value, held_out=replace(held, a=(middle,) * len(held.a), b=(middle,) * len(held.b)))
    if isinstance(value, AllOf):
        return replace(value, items=tuple(_even(i) for i in value.items))
    return value


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
        moved = value
        if isinstance(value, AllOf) and value.mode == "agree" and len(value.items) < MIN_SESSIONS:
            moved = replace(value, items=value.items * MIN_SESSIONS)  # as sessions that agree would be
        if isinstance(value, Seeds) and value.censored:  # as many seeds as order statistics need
            k = math.ceil(order_statistics.seeds_for_range(stats.confidence(value.looks)) / len(value.values))
            moved = replace(value, values=value.values * k, censored=value.censored * k)
        shifted = [_shifted(moved, sign * k * unit) for k in LADDER for sign in (1, -1)]
        even = _even(moved)  # where over-fitting gaps are compared, with and without the confound
        if even != moved:
            shifted += [_shifted(even, sign * k * unit) for k in LADDER for sign in (1, -1)]
        return [value, *shifted]
    if isinstance(value, Ranking):
        return [value, _ranking_with(claim, 0), _ranking_with(claim, 400)]
    if isinstance(value, Picks):
        other = claim.claimed + 1 if isinstance(claim.claimed, (int, float)) else f"not {claim.claimed}"
        return [value, _picks_of(claim.claimed), _picks_of(other)]
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



# -- altered copies of the result files ------------------------------------------------------------
#: Logged keys where higher is better, and where lower is; each alteration moves both kinds the
#: same way (a better run has a higher accuracy and a lower loss).
UP_KEYS = ("accuracy", "val_accuracy", "test_accuracy")
DOWN_KEYS = ("loss", "val_loss", "test_loss")
LEVELS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
Alteration = Callable[[dict[str, Any]], None]  # changes one point of a result in place


def _curves(point: dict[str, Any], change: Callable[[list[float], int], list[float]],
            only: str = "") -> None:
    """Apply ``change(curve, direction)`` to each seed's epoch curve of each logged key
    (direction +1 for accuracies, -1 for losses), and to the final test figures (precision
    and recall too); with
    ``only`` (``val_`` or ``test_``), to that set's curves alone."""
    epochs = point["epochs"]
    for key, direction in [(k, 1) for k in UP_KEYS] + [(k, -1) for k in DOWN_KEYS]:
        if not epochs or key not in epochs[0] or not key.startswith(only):
            continue
        for s in range(len(epochs[0][key])):
            alive = [i for i, e in enumerate(epochs) if not math.isnan(e[key][s])]
            new = change([epochs[i][key][s] for i in alive], direction)
            for i, v in zip(alive, new, strict=True):
                epochs[i][key][s] = v
    final = point.get("final", {}) if only in ("", "test_") else {}
    for key, direction in (("accuracy", 1), ("precision", 1), ("recall", 1), ("loss", -1)):
        if key in final:
            final[key] = [change([v], direction)[0] for v in final[key]]


def _level(d: float, only: str = "") -> Alteration:
    return lambda p: _curves(p, lambda c, k: [v + k * d for v in c], only)


def _lr_power(power: float) -> Alteration:
    """Each seed's learning rate ``lr0 * (lr / lr0) ** power``: 0 never cuts it, 2 squares
    every cut (a halving becomes a quartering)."""
    def alter(point: dict[str, Any]) -> None:
        epochs = point["epochs"]
        if not epochs or "lr" not in epochs[0]:
            return
        first = list(epochs[0]["lr"])
        for e in epochs:
            e["lr"] = [v if math.isnan(v) else f * (v / f) ** power
                       for v, f in zip(e["lr"], first, strict=True)]
    return alter


def _tilt(t: float) -> Alteration:
    """Later epochs better by ``t`` overall (or worse, t < 0): moves where a curve peaks and when
    it crosses a threshold."""
    def change(c: list[float], k: int) -> list[float]:
        n = max(len(c) - 1, 1)
        return [v + k * t * (i / n - 0.5) for i, v in enumerate(c)]
    return lambda p: _curves(p, change)


def _swing(factor: float) -> Alteration:
    """Each curve's wiggles around its own trend line scaled by ``factor`` (0 flattens them)."""
    def change(c: list[float], _k: int) -> list[float]:
        if len(c) < 3:
            return c
        n = len(c) - 1
        trend = [c[0] + (c[-1] - c[0]) * i / n for i in range(len(c))]
        return [t + factor * (v - t) for v, t in zip(c, trend, strict=True)]
    return lambda p: _curves(p, change)


def _cut(keep: float) -> Alteration:
    """Every seed stopped after the first ``keep`` share of the run's epochs (at least two),
    seed ``s`` ``s % 3`` epochs later than the first: counts that never vary decide nothing,
    and a spread that grew with the seeds (``s`` epochs later) would make the stop as
    uncertain with 13 seeds as the unaltered runs, and move no verdict."""
    def alter(point: dict[str, Any]) -> None:
        epochs = point["epochs"]
        for e, row in enumerate(epochs):
            for key, values in row.items():
                row[key] = [math.nan if e >= max(2, int(len(epochs) * keep)) + s % 3 else v
                            for s, v in enumerate(values)]
    return alter


def _thin(point: dict[str, Any]) -> None:
    """The test set evaluated after every second epoch only."""
    for e in point["epochs"][1::2]:
        for key in ("test_accuracy", "test_loss"):
            if key in e:
                e[key] = [math.nan] * len(e[key])


def _confusions(claim: Claim, count: int) -> Alteration:
    claimed = claim.claimed if isinstance(claim.claimed, list) else []
    cells = [tuple(int(x) for x in c.split("->")) for c in claimed if isinstance(c, str) and "->" in c]

    def alter(point: dict[str, Any]) -> None:
        for matrix in point.get("final", {}).get("confusion", []):
            for i, j in cells:
                matrix[i][j] = count
    return alter


def alterations(claim: Claim) -> Iterator[tuple[str, Alteration]]:
    for d in LEVELS:
        yield f"curves {d:+g}", _level(d)
        yield f"curves {-d:+g}", _level(-d)
    for only in ("val_", "test_"):
        for d in (0.01, 0.1, 0.3):
            yield f"{only}curves {d:+g}", _level(d, only)
            yield f"{only}curves {-d:+g}", _level(-d, only)
    for t in (0.01, 0.1, 0.5):
        yield f"tilted {t:+g}", _tilt(t)
        yield f"tilted {-t:+g}", _tilt(-t)
    yield "wiggles flattened", _swing(0.0)
    yield "wiggles x4", _swing(4.0)
    yield "cut to a third", _cut(1 / 3)
    yield "test every second epoch", _thin
    yield "learning rate never cut", _lr_power(0.0)
    yield "learning rate cuts squared", _lr_power(2.0)
    yield "claimed confusions absent", _confusions(claim, 0)
    yield "claimed confusions common", _confusions(claim, 10_000)


def _copy(point: dict[str, Any]) -> dict[str, Any]:
    """A copy of a result's point deep enough for the alterations (its curves, its final test
    figures and confusion matrices); ``copy.deepcopy`` took most of this test's time."""
    final = point.get("final", {})
    return {**point, "epochs": [{k: list(v) for k, v in e.items()} for e in point["epochs"]],
            "final": {k: [[list(row) for row in m] for m in v] if k == "confusion" else list(v)
                      for k, v in final.items()}}


def _seeds_repeated(result: dict[str, Any], at_least: int) -> dict[str, Any]:
    """``result`` with each seed's run repeated under new seed numbers until it holds at least
    ``at_least`` seeds: the seeds a rule needs to decide where the committed ones are too few
    for any alteration to decide (a share of runs refutes only from 59)."""
    seeds = list(result.get("seeds") or [])
    times = max(1, -(-at_least // max(len(seeds), 1)))
    more = [max(seeds, default=0) + 1 + i for i in range(len(seeds) * (times - 1))]

    def repeated(point: dict[str, Any]) -> dict[str, Any]:
        return {**point, "epochs": [{k: list(v) * times for k, v in e.items()} for e in point["epochs"]],
                "final": {k: list(v) * times for k, v in point.get("final", {}).items()}}
    return {**result, "seeds": seeds + more, "points": [repeated(p) for p in result["points"]]}


def _targets(result: dict[str, Any]) -> Iterator[tuple[str, list[int]]]:
    points = range(len(result["points"]))
    yield "every point", list(points)
    if len(points) > 1:
        for i in points:
            yield f"point {i}", [i]


def file_reachable(claim: Claim) -> dict[str, str]:
    """The verdicts ``claim``'s rule gives over altered copies of the result files it reads,
    each alteration (one run of one file changed) by the verdict it led to, and, where it
    compares two runs, the two runs' results swapped: a run that never reaches a mark counts
    at the run's limit whatever its curves do below the mark, so only the other run's
    curves can make it the faster. Empty when the files are not all there."""
    from training.run import needed_recipes

    read = metrics.loader()
    try:
        originals = {name: read(name) for name in needed_recipes(claim.measure)}
    except metrics.WantsRun:
        return {}
    if SHAPES.get(claim.measure.get("metric", "")) in ("picks", "ranking"):  # shares of runs
        # twice the stand-ins' seeds: a file that gained seeds is judged at a stricter level
        originals = {name: _seeds_repeated(data, 2 * SHARE_RUNS) for name, data in originals.items()}
    out: dict[str, str] = {}
    for recipe, original in originals.items():
        for where, indices in _targets(original):
            for how, alter in alterations(claim):
                points = [_copy(p) if i in indices else p for i, p in enumerate(original["points"])]
                changed = {**original, "points": points}
                for i in indices:
                    alter(points[i])
                files = {**originals, recipe: changed}
                try:
                    value = metrics.compute(claim.measure, load=files.__getitem__)
                except (ValueError, IndexError, ArithmeticError, KeyError):
                    continue  # this copy is not a run the metric can read (too short, say)
                out[f"{recipe}, {where}: {how}"] = decide(claim, value).verdict
    if len(originals) == 2:  # a comparison of two runs: each given the other's results
        first, second = originals
        swapped = {first: {**originals[second], "_file": originals[first].get("_file")},
                   second: {**originals[first], "_file": originals[second].get("_file")}}
        try:
            value = metrics.compute(claim.measure, load=swapped.__getitem__)
        except (ValueError, IndexError, ArithmeticError, KeyError):
            return out
        out[f"{first} and {second} swapped"] = decide(claim, value).verdict
    return out

"""Counts that some seeds reach only at the run's limit (epochs run, with early stopping capped
by the recipe), judged by the seeds' order statistics: they pile up at the cap, where no normal
law fits. The rule is in ``claims.stats``' words at its top."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import special

from claims.stats import EPS, HOLDS, INCONCLUSIVE, LEVEL, REFUTED, Decision, _looked, _mean_sd, confidence


def seeds_for_range(level: float) -> int:
    """The fewest seeds whose range (smallest to largest) is a ``level`` prediction interval of
    one more run: (n - 1)/(n + 1) at least the level."""
    return math.ceil((1 + level) / (1 - level) - 1e-9)  # 159, not 160, at 98.75%: float rounding


def _median_rank(n: int, level: float) -> int:
    """The largest l with P(Binomial(n, 1/2) >= l) >= ``level``: the l-th smallest of n seeds is
    a one-sided ``level`` lower bound of the median (the l-th largest an upper one), no law
    assumed; 0 where n seeds are too few."""
    rank = 0
    while rank < n and float(special.bdtrc(rank, n, 0.5)) >= level:  # P(X >= rank + 1)
        rank += 1
    return rank


def figure_of_capped_counts(values: Sequence[float], claimed: float, slack: float,
                            looks: int = 1, censored: int = 0, beyond_limit: bool = False) -> Decision:
    """A one-run figure of a count that some seeds reach only at the run's limit (epochs run,
    with early stopping capped by the recipe): the ``censored`` largest counts are such limits;
    ``beyond_limit``, they are marks never reached, the true count at least that (else the
    count is the limit itself, as under the source's own cap). Counts pile up at the cap, where
    neither a normal prediction interval (it runs past the cap and refutes counts the seeds
    themselves give) nor a t bound of the mean (it holds too often on such skewed seeds) fits.
    So both sides use the seeds' order statistics, which assume no law: refuted outside the
    prediction interval of one more run (a new run falls below the j-th smallest of n with
    probability j/(n+1)) widened by the tolerance; holds when the one-sided bounds of the
    seeds' median both lie within the tolerance of it (an upper one at a mark never reached
    counts as none)."""
    _mean_sd(values)  # finite numbers, at least one
    ordered = sorted(values)
    n, level = len(ordered), confidence(looks)
    rule = (f"figure of a capped count: refuted when the claimed value lies outside the {LEVEL:.0%} "
            f"distribution-free prediction interval of one more run, [j-th smallest, j-th largest] "
            f"of the seeds with (n + 1 - 2j)/(n + 1) at least the level, widened by the tolerance; "
            f"holds when the seeds' median is within the tolerance of it at {LEVEL:.0%} confidence "
            f"(its one-sided order-statistic bounds, a bound at the run's limit counting as none); "
            f"otherwise inconclusive{_looked(looks)}")
    if n < 2:
        return Decision(INCONCLUSIVE, rule, f"counts {ordered[0]:g}: one seed", 2, first=True)
    # the widest order statistics that still cover (1e-9: at 98.75%, 160 x 0.0125 / 2 is 0.99999...)
    j = math.floor((n + 1) * (1 - level) / 2 + 1e-9)
    if j < 1:
        low, high = -math.inf, math.inf
        interval = (f"no interval: {n} seeds' range covers one more run with probability "
                    f"{(n - 1) / (n + 1):.1%}, below {level * 100:.4g}%")
    else:
        low, high = ordered[j - 1], ordered[n - j]
        interval = f"prediction interval [{low:.4g}, {high:.4g}] (order statistics {j} and {n + 1 - j})"
    rank = _median_rank(n, level)
    if rank:
        below, above = ordered[rank - 1], ordered[n - rank]
        capped = beyond_limit and n - rank >= n - censored  # the upper bound is at least that
        median = (f"the median is between {below:g} and {above:g}{' or more' if capped else ''} at "
                  f"{level * 100:.4g}% confidence each side against a tolerance of {slack:g}")
        holds = not capped and claimed - slack - EPS <= below and above <= claimed + slack + EPS
    else:
        median = (f"{n} seeds give no {level * 100:.4g}% bound of the median (it takes "
                  f"{_fewest_for_median(level)})")
        holds = False
    detail = f"counts {', '.join(f'{v:g}' for v in ordered)}; {interval}; {median}"
    limit = ordered[n - censored] if censored and beyond_limit else math.inf  # the truth at least it
    if claimed - slack > limit:  # above where the runs stopped counting: no number of them can refute it
        return Decision(INCONCLUSIVE, rule, detail, undecidable=(
            f"the claimed count is beyond the run's limit ({limit:g}, where {censored} seeds stopped "
            "counting): only longer runs could tell"))
    if claimed + slack < low or claimed - slack > high:
        return Decision(REFUTED, rule, detail)
    if holds:
        return Decision(HOLDS, rule, detail)
    if ordered[0] <= claimed + slack and claimed - slack <= ordered[-1]:
        return Decision(INCONCLUSIVE, rule, detail, undecidable=(
            "at these counts no number of seeds would refute it: the claimed count is among the counts "
            "single runs give (the range of the seeds), and the seeds' median is not shown within the "
            "tolerance of it"))
    # outside the seeds' range: enough seeds make the range itself a prediction interval
    return Decision(INCONCLUSIVE, rule, detail, max(n + 1, seeds_for_range(level)), toward=REFUTED,
                    basis="these counts")


def _fewest_for_median(level: float) -> int:
    n = 1
    while not _median_rank(n, level):
        n += 1
    return n

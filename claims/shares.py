"""A pick or a ranking one run made ("we select 128 neurons", "the top 2 confusions are 5->3
and 7->2"), judged on the seeds: each seed is one run, so the seeds that give it are a binomial
count, judged by its exact (Clopper-Pearson) bounds. The rule is in ``claims.stats``' words at
its top; the shared machinery (``Decision``, the level after looks) is there too."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from claims.stats import HOLDS, INCONCLUSIVE, LEVEL, MAX_SEEDS, POWER, REFUTED, Decision, _looked, confidence


def ranks_first(matrix: np.ndarray, claimed: frozenset[tuple[int, int]]) -> tuple[bool, bool]:
    """Whether one run's confusion counts put the ``claimed`` cells first (the most frequent
    errors): (surely, possibly). Surely when every claimed cell outnumbers every other error;
    possibly when they do with ties broken in their favour (a tie is either way)."""
    m = np.array(matrix, dtype=float)
    np.fill_diagonal(m, -np.inf)
    inside = min(m[i, j] for i, j in claimed)
    mask = np.ones_like(m, dtype=bool)
    for i, j in claimed:
        mask[i, j] = False
    np.fill_diagonal(mask, False)
    outside = m[mask].max() if mask.any() else -np.inf
    return bool(inside > outside), bool(inside >= outside)


#: A pick or ranking holds when most single runs give it, and is refuted only when at most
#: this share of them would (a figure is refuted only outside the spread of single runs).
RANKING_HOLDS = 0.5
RARE = 1 - LEVEL


def ranking(matrices: np.ndarray, claimed: frozenset[tuple[int, int]], looks: int = 1) -> Decision:
    """Is ``claimed`` what one run of ours ranks first, as the source's one run did? Each seed is
    one run on the same test set, so the seeds that rank it first are a binomial count, judged
    as a pick. A seed whose counts tie at the edge of the top errors counts against holding
    and for it when refuting: a tie could fall either way."""
    outcomes = [ranks_first(m, claimed) for m in np.asarray(matrices)]
    surely, possibly = sum(a for a, _ in outcomes), sum(b for _, b in outcomes)
    ties = possibly - surely
    what = "rank the claimed errors first" + (
        f", and {ties} more {'ties' if ties == 1 else 'tie'} with them at the edge" if ties else "")
    return _share_rule(surely, possibly, len(outcomes), looks, "a ranking", what)


def picks(chosen: int, runs: int, looks: int = 1) -> Decision:
    """Is the claimed value what single runs of ours pick (a grid's knee), as the source's one run
    picked it? ``chosen`` of ``runs`` seeds pick it; each seed is an independent run."""
    return _share_rule(chosen, chosen, runs, looks, "a pick", "pick it")


def _share_rule(low_count: int, high_count: int, runs: int, looks: int, kind: str, what: str) -> Decision:
    """A share of runs, by its exact binomial (Clopper-Pearson) one-sided bounds: holds when the
    lower bound of ``low_count`` of ``runs`` is above one half, refuted when the upper bound of
    ``high_count`` is below 5%; otherwise inconclusive, with the runs that would decide with
    80% power if the observed share were the true one."""
    if runs < 1 or not 0 <= low_count <= high_count <= runs:
        raise ValueError(f"{kind}: counts {low_count}, {high_count} of {runs} runs: at least one run, "
                         "and counts between 0 and the runs")
    level = confidence(looks)
    rule = (f"{kind}: the share of seeds (each one run) that {what.split(',')[0]}, by its one-sided "
            f"{LEVEL:.0%} Clopper-Pearson bounds; holds when most runs do (the lower bound above "
            f"{RANKING_HOLDS:.0%}), refuted when hardly any would (the upper bound below {RARE:.0%}); "
            f"otherwise inconclusive{_looked(looks)}")
    low = _clopper_pearson(low_count, runs, level)[0]
    high = _clopper_pearson(high_count, runs, level)[1]
    detail = (f"{low_count} of {runs} seeds {what}; the share is between {low:.1%} and {high:.1%} at "
              f"{level * 100:.4g}% confidence")
    if low > RANKING_HOLDS:
        return Decision(HOLDS, rule, detail)
    if high < RARE:
        return Decision(REFUTED, rule, detail)
    # each side on its own count: holding on the seeds that surely give it, refuting on those
    # that possibly do (ties counted for it)
    holding, refuting = low_count / runs, high_count / runs
    if holding > RANKING_HOLDS:
        return Decision(INCONCLUSIVE, rule, detail, _runs_for_share(holding, HOLDS, level, runs),
                        basis="this share", toward=HOLDS)
    if refuting < RARE:
        return Decision(INCONCLUSIVE, rule, detail, _runs_for_share(refuting, REFUTED, level, runs),
                        basis="this share", toward=REFUTED)
    why = ("single runs give it sometimes, not mostly, and not so rarely that the source's one run "
           "could not have")
    if refuting > RANKING_HOLDS:
        why = (f"{high_count - low_count} of the seeds tie with it at the edge, which counts against "
               "holding: a tie is not a run that gives it")
    return Decision(INCONCLUSIVE, rule, detail, basis="this share",
                    undecidable=f"no number of seeds would decide it at this share: {why}")


def _runs_for_share(share: float, toward: str, level: float, runs: int) -> int:
    """The fewest runs at which a binomial count with this true share decides (``toward``) with
    80% power: the chance of a count whose Clopper-Pearson bound clears the threshold."""
    n = runs + 1
    while n <= MAX_SEEDS:
        k = np.arange(n + 1)
        if toward == HOLDS:  # lower bound of k above one half
            lows = special.betaincinv(np.maximum(k, 1), n - k + 1, 1 - level)
            decides = (k > 0) & (lows > RANKING_HOLDS)
        else:  # upper bound of k below the rare share
            highs = special.betaincinv(k + 1, np.maximum(n - k, 1), level)
            decides = (k < n) & (highs < RARE)
        pmf = np.exp(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
                     + k * math.log(max(share, 1e-300)) + (n - k) * math.log(max(1 - share, 1e-300)))
        if float(pmf[decides].sum()) >= POWER:
            return n
        n = n + 1 if n < 100 else int(n * 1.1)
    return MAX_SEEDS + 1


def _clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    """One-sided exact binomial bounds of a share: each holds with probability ``level``."""
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, 1 - level))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, level))
    return low, high

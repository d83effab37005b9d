"""The statistical rules that turn seeds into verdicts, one per shape of claim, written once.

Every training result is a sample: a few seeds of a run whose outcome varies with the
initialisation, the data order and the Dropout masks. Each rule says ``holds``, ``refuted``
or, when the seeds cannot tell, ``inconclusive`` with roughly how many seeds would decide.
All intervals are at ``LEVEL`` (95%), from Student's t (scipy.special's ``stdtrit``, the
inverse that ``scipy.stats.t.ppf`` calls, without the second it takes to import scipy.stats):

- a **figure** the source reports from its one run ("best test accuracy of 99.24%"): refuted
  when it lies outside the 95% *prediction interval* of one more run, ``mean ± t(n-1) · s ·
  sqrt(1 + 1/n)``, widened by the claim's reproduction tolerance; holds only when the seed
  mean is within the tolerance of it at 95% confidence, ``|mean - claimed| + t(n-1) · s /
  sqrt(n) <= tolerance`` (so that a few scattered seeds cannot make a figure hold);
  otherwise inconclusive, as with fewer than 3 seeds.
- a **bound** ("> 99%", "between 30 and 40 epochs on average"): a one-sided 95% confidence
  bound of the *mean*, ``mean ∓ t(n-1) · s / sqrt(n)``: holds when the bound on the claim's
  side clears the threshold, refuted when the bound on the other side fails it, otherwise
  inconclusive. A range is two such bounds (intersection-union).
- a **comparison** between runs ("A beats B", "pruned networks do not learn faster"): the
  same one-sided bounds on the mean *difference*, paired by seed where both runs used the
  same seeds (a t interval of the per-seed differences), else Welch's interval.
- a **ranking** ("the top 2 confusions are 5->3 and 7->2"), one run's figure: single runs are
  simulated by drawing a seed and redrawing its confusion counts as a multinomial of its test
  set (ties broken at random); holds when at least half of them rank the claimed errors first,
  refuted when at most 5% do, otherwise inconclusive.

"How many seeds would decide" assumes the observed mean and spread are the true ones and
finds the smallest n at which the bound would clear the threshold with 80% power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

LEVEL = 0.95
MIN_SEEDS_FIGURE = 3
MAX_SEEDS = 10_000
BOOTSTRAP_DRAWS = 2000
HOLDS, REFUTED, INCONCLUSIVE = "holds", "refuted", "inconclusive"
_ABOVE, _BELOW = (">", ">="), ("<", "<=")


@dataclass(frozen=True)
class Decision:
    """A rule's verdict, the rule in words (method and level) and the numbers it used."""

    verdict: str
    rule: str
    detail: str
    seeds_needed: int | None = None
    #: Why no number of seeds is given, where the search for one gave up.
    undecidable: str = ""
    #: What ``seeds_needed`` counts: seeds of a training run, or rounds of a timing.
    unit: str = "seeds"
    #: What the count of ``seeds_needed`` assumes stays as it is.
    basis: str = "this mean and spread"

    @property
    def needs(self) -> str:
        """What would decide an inconclusive verdict, in words."""
        if self.verdict != INCONCLUSIVE:
            return ""
        if self.undecidable:
            return self.undecidable
        if self.seeds_needed is None:
            return (f"no number of {self.unit} would decide it at {self.basis.split(' and ')[0]} "
                    "(it sits on the threshold)")
        if self.seeds_needed > MAX_SEEDS:
            return f"more than {MAX_SEEDS:,} {self.unit} would be needed at {self.basis}"
        return f"about {self.seeds_needed} {self.unit} would decide it at {self.basis}"


def _mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0 or not np.isfinite(x).all():
        raise ValueError(f"the seeds' values must be finite numbers, at least one: got {list(values)}")
    return float(x.mean()), float(x.std(ddof=1)) if n > 1 else 0.0, n


def _t(q: float, df: float) -> float:
    return float(special.stdtrit(df, q))


def _pct(x: float, scale: float) -> str:
    return f"{x * scale:.4g}"


def confidence(looks: int, candidates: int = 1) -> float:
    """The confidence level after ``looks`` judgements of growing seed sets (seeds added after an
    inconclusive verdict) and a choice among ``candidates``: 1 - 5% / (looks x candidates).
    Over the candidates this is Bonferroni's bound. Over the looks it only limits the damage:
    the first look was already made at 5%, so the chance that some look decides a claim by
    chance is at most 5% x (1 + 1/2 + ... + 1/looks), 7.5% after two looks (10% uncorrected,
    6.4% in a simulation at three seeds a look); a schedule whose levels sum to 5% would need
    every first look made stricter."""
    if looks < 1 or candidates < 1:
        raise ValueError(f"looks and candidates must be at least 1, got {looks} and {candidates}")
    return 1 - (1 - LEVEL) / (looks * candidates)


def _looked(looks: int) -> str:
    return (f"; judged after {looks} looks (seeds added after an inconclusive verdict), so at "
            f"{confidence(looks) * 100:.4g}% (Bonferroni)" if looks > 1 else "")


def figure(values: Sequence[float], claimed: float, slack: float, scale: float = 1.0,
           looks: int = 1) -> Decision:
    """A one-run figure: refuted outside the seeds' prediction interval widened by ``slack``;
    holds only when the seed mean is within ``slack`` of it at 95% confidence (an equivalence
    bound), so that three scattered seeds cannot make a figure hold; else inconclusive."""
    mean, sd, n = _mean_sd(values)
    level = confidence(looks)
    rule = (f"figure: refuted when the claimed value lies outside the {LEVEL:.0%} prediction interval "
            f"of one more run (Student's t over the seeds) widened by the tolerance; holds when the "
            f"seed mean is within the tolerance of it at {LEVEL:.0%} confidence (one-sided bound "
            f"of |mean - claimed|); otherwise inconclusive{_looked(looks)}")
    if n < MIN_SEEDS_FIGURE:
        return Decision(INCONCLUSIVE, rule, f"{n} seed(s): a prediction interval needs at least "
                        f"{MIN_SEEDS_FIGURE}", MIN_SEEDS_FIGURE)
    half = _t(0.5 + level / 2, n - 1) * sd * math.sqrt(1 + 1 / n)
    gap = abs(mean - claimed)
    bound = gap + _t(level, n - 1) * sd / math.sqrt(n)
    detail = (f"mean {_pct(mean, scale)}, prediction interval [{_pct(mean - half, scale)}, "
              f"{_pct(mean + half, scale)}] widened to [{_pct(mean - half - slack, scale)}, "
              f"{_pct(mean + half + slack, scale)}]; |mean - claimed| is at most {_pct(bound, scale)} "
              f"at {level * 100:.4g}% confidence against a tolerance of {_pct(slack, scale)}")
    if gap > half + slack + 1e-12:
        return Decision(REFUTED, rule, detail)
    if bound <= slack + 1e-12:
        return Decision(HOLDS, rule, detail)
    if gap < slack:  # the equivalence bound would clear with more seeds
        return Decision(INCONCLUSIVE, rule, detail, _seeds_to_clear(slack - gap, sd, n, level=level))
    # outside the tolerance but inside the interval: only a narrower interval could refute it
    z = float(special.ndtri(0.5 + level / 2))
    if gap - slack <= z * sd:
        return Decision(INCONCLUSIVE, rule, detail, undecidable=(
            "no number of seeds would decide it at this mean and spread: the claimed value is outside "
            "the tolerance of the mean but inside the spread of single runs"))
    k = n
    while k <= MAX_SEEDS and _t(0.5 + level / 2, k - 1) * sd * math.sqrt(1 + 1 / k) >= gap - slack:
        k = k + 1 if k < 100 else int(k * 1.1)
    return Decision(INCONCLUSIVE, rule, detail, k)


def seeds_for_range(level: float) -> int:
    """The fewest seeds whose range (smallest to largest) is a ``level`` prediction interval of
    one more run: (n - 1)/(n + 1) at least the level."""
    return math.ceil((1 + level) / (1 - level))


def figure_of_capped_counts(values: Sequence[float], claimed: float, slack: float,
                            looks: int = 1) -> Decision:
    """A one-run figure of a count that some seeds reach only at the run's limit (epochs run,
    with early stopping capped by the recipe): such counts pile up at the cap, and a normal
    prediction interval runs past the cap and refutes counts the seeds themselves give. The
    interval for one more run is the seeds' own order statistics instead: a new run falls below
    the j-th smallest of n with probability j/(n+1), with no law assumed. Holds as ``figure``
    does (the seed mean within the tolerance at 95% confidence)."""
    ordered = sorted(values)
    n, level = len(ordered), confidence(looks)
    rule = (f"figure of a capped count: refuted when the claimed value lies outside the {LEVEL:.0%} "
            f"distribution-free prediction interval of one more run, [j-th smallest, j-th largest] "
            f"of the seeds with (n + 1 - 2j)/(n + 1) at least the level, widened by the tolerance; "
            f"holds when the seed mean is within the tolerance of it at {LEVEL:.0%} confidence; "
            f"otherwise inconclusive{_looked(looks)}")
    j = math.floor((n + 1) * (1 - level) / 2)  # the widest order statistics that still cover
    if j < 1:
        low, high = -math.inf, math.inf
        interval = (f"no interval: {n} seeds' range covers one more run with probability "
                    f"{(n - 1) / (n + 1):.1%}, below {level * 100:.4g}%")
    else:
        low, high = ordered[j - 1], ordered[n - j]
        interval = f"prediction interval [{low:.4g}, {high:.4g}] (order statistics {j} and {n + 1 - j})"
    mean, sd, _ = _mean_sd(values)
    bound = abs(mean - claimed) + (_t(level, n - 1) * sd / math.sqrt(n) if n > 1 else math.inf)
    detail = (f"counts {', '.join(f'{v:g}' for v in ordered)}; {interval}; |mean - claimed| is at most "
              f"{bound:.4g} at {level * 100:.4g}% confidence against a tolerance of {slack:.4g}")
    if claimed + slack < low or claimed - slack > high:
        return Decision(REFUTED, rule, detail)
    if bound <= slack + 1e-12:
        return Decision(HOLDS, rule, detail)
    if ordered[0] <= claimed + slack and claimed - slack <= ordered[-1]:
        return Decision(INCONCLUSIVE, rule, detail, undecidable=(
            "at these counts no number of seeds would refute it: the claimed count is among the counts "
            "single runs give (the range of the seeds), and the mean is not within the tolerance of it"))
    # outside the seeds' range: enough seeds make the range itself a prediction interval
    return Decision(INCONCLUSIVE, rule, detail, max(n + 1, seeds_for_range(level)))


#: The power at which "how many seeds would decide" is planned.
POWER = 0.80


def _seeds_to_clear(gap: float, sd: float, n: int, welch: bool = False, level: float = LEVEL) -> int | None:
    """Smallest n (per group) at which a one-sided bound would clear ``gap`` with 80% power
    if the true effect were the observed one: (t_level + t_power) * sd / sqrt(n) < gap."""
    if gap <= 0:
        return None
    if sd == 0:
        return max(n, 2)
    k = max(n, 2)
    while k <= MAX_SEEDS:
        df = 2 * k - 2 if welch else k - 1
        if (_t(level, df) + _t(POWER, df)) * sd / math.sqrt(k) < gap:
            return k
        k = k + 1 if k < 100 else int(k * 1.1)
    return MAX_SEEDS + 1


def _bound(mean: float, se: float, df: float, relation: str, threshold: float, scale: float,
           what: str, level: float = LEVEL) -> tuple[str, str]:
    """One-sided bounds of ``mean`` against ``relation threshold``: (verdict, numbers)."""
    if df < 1:
        return INCONCLUSIVE, f"{what} {_pct(mean, scale)} from one seed: no interval"
    t = _t(level, df)
    low, high = mean - t * se, mean + t * se
    if relation in _ABOVE:
        yes = low > threshold or (relation == ">=" and low >= threshold)
        no = high < threshold or (relation == ">" and high <= threshold)
    else:
        yes = high < threshold or (relation == "<=" and high <= threshold)
        no = low > threshold or (relation == "<" and low >= threshold)
    verdict = HOLDS if yes else REFUTED if no else INCONCLUSIVE
    return verdict, (f"{what} {_pct(mean, scale)}, one-sided {level * 100:.4g}% bounds "
                     f"[{_pct(low, scale)}, {_pct(high, scale)}] against {relation} {_pct(threshold, scale)}")


def _shift(relation: str, claimed: float, slack: float) -> float:
    """The threshold a tolerance moves in the claim's favour (an equivalence margin)."""
    return claimed - slack if relation in _ABOVE else claimed + slack


def bound(values: Sequence[float], relation: str, claimed: float, slack: float = 0.0,
          scale: float = 1.0, looks: int = 1) -> Decision:
    """A bound on the mean of the seeds ('>', '>=', '<', '<=')."""
    mean, sd, n = _mean_sd(values)
    threshold, level = _shift(relation, claimed, slack), confidence(looks)
    rule = (f"bound: a one-sided {LEVEL:.0%} confidence bound of the seed mean (Student's t) must "
            f"clear it{_looked(looks)}")
    verdict, detail = _bound(mean, sd / math.sqrt(n), n - 1, relation, threshold, scale, "mean", level)
    needed = _seeds_to_clear(abs(mean - threshold), sd, n, level=level) if verdict == INCONCLUSIVE else None
    if n < 2:
        return Decision(INCONCLUSIVE, rule, detail, undecidable="one seed gives no spread: train more seeds")
    return Decision(verdict, rule, detail, needed)


def within(values: Sequence[float], low: float, high: float, slack_low: float = 0.0,
           slack_high: float = 0.0, scale: float = 1.0, looks: int = 1) -> Decision:
    """The seed mean inside [low, high]: both one-sided bounds (intersection-union)."""
    lower = bound(values, ">=", low, slack_low, scale, looks)
    upper = bound(values, "<=", high, slack_high, scale, looks)
    rule = (f"range: both one-sided {LEVEL:.0%} confidence bounds of the seed mean (Student's t) "
            f"must lie inside it{_looked(looks)}")
    if REFUTED in (lower.verdict, upper.verdict):
        verdict = REFUTED
    elif lower.verdict == upper.verdict == HOLDS:
        verdict = HOLDS
    else:
        verdict = INCONCLUSIVE
    needs = [d.seeds_needed for d in (lower, upper) if d.verdict == INCONCLUSIVE]
    needed = None if None in needs or not needs else max(needs)  # type: ignore[type-var]
    mean, sd, n = _mean_sd(values)
    half = _t(confidence(looks), n - 1) * sd / math.sqrt(n) if n > 1 else math.inf
    detail = (f"mean {_pct(mean, scale)}, one-sided {confidence(looks) * 100:.4g}% bounds "
              f"[{_pct(mean - half, scale)}, {_pct(mean + half, scale)}] against "
              f"[{_pct(low - slack_low, scale)}, {_pct(high + slack_high, scale)}]")
    return Decision(verdict, rule, detail, needed)


def difference(a: Sequence[float], b: Sequence[float], paired: bool, relation: str, claimed: float,
               slack: float = 0.0, scale: float = 1.0, candidates: int = 1, looks: int = 1) -> Decision:
    """The mean of ``a - b`` against ``relation claimed``: paired by seed, else Welch. Where the
    compared runs were picked among ``candidates`` configurations on these same runs (the best
    point of a grid), the bound is Bonferroni's, at 1 - (1 - LEVEL) / candidates: picking the
    best of many on the runs that then judge it favours it by chance alone."""
    threshold = _shift(relation, claimed, slack)
    level = confidence(looks, candidates)
    if paired and len(a) != len(b):
        raise ValueError(f"a paired comparison needs as many values on each side, got {len(a)} and {len(b)}")
    if min(len(a), len(b)) < 2:
        return Decision(INCONCLUSIVE, "comparison: needs at least two seeds on each side", "",
                        undecidable="one seed on a side gives no spread: train more seeds")
    if paired:
        diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
        mean, sd, n = _mean_sd(diffs)
        se, df, welch = sd / math.sqrt(n), n - 1, False
        method = "paired by seed"
    else:
        ma, sa, na = _mean_sd(a)
        mb, sb, nb = _mean_sd(b)
        mean, n = ma - mb, min(na, nb)
        se = math.sqrt(sa**2 / na + sb**2 / nb)
        num, den = se**4, ((sa**2 / na) ** 2 / max(na - 1, 1) + (sb**2 / nb) ** 2 / max(nb - 1, 1))
        df = num / den if den > 0 else na + nb - 2
        sd, welch = math.sqrt((sa**2 + sb**2) / 2), True
        method = "Welch, unpaired"
    picked = (f", picked among {candidates} configurations on the same runs (Bonferroni: "
              f"{confidence(1, candidates) * 100:.4g}%)" if candidates > 1 else "")
    rule = (f"comparison: a one-sided {LEVEL:.0%} confidence bound of the mean difference "
            f"({method}, Student's t{picked}) must clear it{_looked(looks)}")
    verdict, detail = _bound(mean, se, df, relation, threshold, scale, "difference", level)
    needed = None
    if verdict == INCONCLUSIVE:
        needed = _seeds_to_clear(abs(mean - threshold), sd * (math.sqrt(2) if welch else 1), n, welch,
                                 level)
        needed = None if needed is None else max(needed, 2)  # one seed gives no interval
    return Decision(verdict, rule, detail, needed)


def top_set(matrix: np.ndarray, k: int) -> frozenset[tuple[int, int]]:
    """The ``k`` most frequent off-diagonal cells (true, predicted); ties broken by cell order."""
    m = np.array(matrix, dtype=float)
    np.fill_diagonal(m, -1)
    order = np.argsort(-m, axis=None, kind="stable")[:k]
    return frozenset((int(i // m.shape[1]), int(i % m.shape[1])) for i in order)


def ranking_share(matrices: np.ndarray, claimed: frozenset[tuple[int, int]], draws: int = BOOTSTRAP_DRAWS,
                  rng_seed: int = 0) -> float:
    """Share of simulated single runs whose top errors are ``claimed``: each draw takes one seed
    at random and redraws its confusion counts as a multinomial over its test images; ties
    between cells are broken at random."""
    rng = np.random.default_rng(rng_seed)
    matrices = np.asarray(matrices, dtype=np.int64)
    s, k = matrices.shape[0], matrices.shape[1]
    flat = matrices.reshape(s, -1)
    picks = rng.integers(0, s, size=draws)
    counts = np.zeros((draws, k * k), dtype=float)
    for j in range(s):
        rows = np.nonzero(picks == j)[0]
        if len(rows):
            counts[rows] = rng.multinomial(flat[j].sum(), flat[j] / flat[j].sum(), size=len(rows))
    counts += rng.uniform(0, 0.5, size=counts.shape)  # breaks ties between equal counts at random
    counts[:, np.arange(k) * (k + 1)] = -1  # the diagonal is no error
    top = np.sort(np.argsort(-counts, axis=1)[:, :len(claimed)], axis=1)
    want = np.sort([i * k + j for i, j in claimed])
    return float((top == want).all(1).mean())


#: A ranking holds when most single runs give it, and is refuted when almost none do.
RANKING_HOLDS = 0.5


def ranking(matrices: np.ndarray, claimed: frozenset[tuple[int, int]], looks: int = 1) -> Decision:
    """Is ``claimed`` what one run of ours ranks first, as the source's one run did?"""
    share = ranking_share(matrices, claimed)
    rare = 1 - confidence(looks)
    rule = (f"ranking: the share of single runs (a seed drawn at random, its test images redrawn, "
            f"{BOOTSTRAP_DRAWS:,} draws) whose top errors are the claimed ones; holds at "
            f"{RANKING_HOLDS:.0%} or more, refuted at {rare * 100:.3g}% or less{_looked(looks)}")
    detail = f"one run's top errors are the claimed ones in {share:.1%} of the draws"
    if share >= RANKING_HOLDS:
        return Decision(HOLDS, rule, detail)
    if share <= rare:
        return Decision(REFUTED, rule, detail)
    return Decision(INCONCLUSIVE, rule, detail, undecidable=(
        "more seeds would sharpen the share, but a share between the two thresholds does not "
        "decide: single runs give the claimed ranking sometimes, not mostly"))


def picks(chosen: int, runs: int, looks: int = 1) -> Decision:
    """Is the claimed value what most single runs of ours pick (a grid's knee), as the source's
    one run picked it? ``chosen`` of ``runs`` seeds pick it; each seed is an independent run, so
    the share is judged by its exact binomial (Clopper-Pearson) one-sided bounds against one
    half: holds when the lower bound is above it, refuted when the upper bound is below it."""
    level = confidence(looks)
    rule = (f"a pick: the share of seeds whose run picks the claimed value, by its one-sided "
            f"{LEVEL:.0%} Clopper-Pearson bounds; holds when most runs pick it (the lower bound above "
            f"{RANKING_HOLDS:.0%}), refuted when most do not (the upper bound below it); otherwise "
            f"inconclusive{_looked(looks)}")
    low, high = _clopper_pearson(chosen, runs, level)
    detail = (f"{chosen} of {runs} seeds pick it; the share is between {low:.1%} and {high:.1%} at "
              f"{level * 100:.4g}% confidence")
    if low > RANKING_HOLDS:
        return Decision(HOLDS, rule, detail)
    if high < RANKING_HOLDS:
        return Decision(REFUTED, rule, detail)
    share = chosen / runs
    if share == RANKING_HOLDS:
        return Decision(INCONCLUSIVE, rule, detail, None, basis="this share")
    n = runs + 1
    while n <= MAX_SEEDS:
        k = round(share * n)
        lo, hi = _clopper_pearson(k, n, level)
        if lo > RANKING_HOLDS or hi < RANKING_HOLDS:
            return Decision(INCONCLUSIVE, rule, detail, n, basis="this share")
        n += 1
    return Decision(INCONCLUSIVE, rule, detail, MAX_SEEDS + 1, basis="this share")


def _clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    """One-sided exact binomial bounds of a share: each holds with probability ``level``."""
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, 1 - level))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, level))
    return low, high

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
- a **pick** or a **ranking** one run made ("we select 128 neurons", "the top 2 confusions are
  5->3 and 7->2"): each seed is one run, so the seeds that give it are a binomial count. Holds
  when most runs give it (the exact, Clopper-Pearson, lower bound of the share above one half);
  refuted only when hardly any run would (the upper bound below 5%), as a figure is refuted
  only outside the spread of single runs; otherwise inconclusive (``claims.shares``).
- a **capped count** (epochs until early stopping, some seeds at the recipe's limit): the
  seeds' order statistics, which need no law and are not moved by the pile at the cap
  (``claims.order_statistics``).

"How many seeds would decide" assumes the observed mean and spread (or share) are the true
ones and finds the smallest n at which the claim would be decided with 80% power, at the
level of the judgement those seeds would get (one look more: ``claims.verdict``).
Repeated looks are limited, not fully corrected: see ``confidence``. Welch's interval
(unpaired comparisons) is the usual approximation, a little liberal below ten seeds a side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

LEVEL = 0.95
#: Below this (relative to the numbers compared) a difference is float rounding.
EPS = 1e-12
MIN_SEEDS_FIGURE = 3
MAX_SEEDS = 10_000
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
    #: Where an inconclusive verdict is heading with more seeds: HOLDS or REFUTED ('' unknown).
    toward: str = ""
    #: ``seeds_needed`` is the fewest seeds that can be judged at all, not a power estimate.
    first: bool = False

    @property
    def needs(self) -> str:
        """What would decide an inconclusive verdict, in words."""
        if self.verdict != INCONCLUSIVE:
            return ""
        if self.undecidable:
            return self.undecidable
        if self.first and self.seeds_needed is not None:
            return (f"at least {self.seeds_needed} {self.unit} are needed before it can be judged; how "
                    "many would decide it follows from their spread")
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
    mean, sd = float(x.mean()), float(x.std(ddof=1)) if n > 1 else 0.0
    if sd <= EPS * max(1.0, abs(mean)):  # equal seeds: the rest is float rounding, not spread
        sd = 0.0
    return mean, sd, n


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
                        f"{MIN_SEEDS_FIGURE}", MIN_SEEDS_FIGURE, first=True)
    half = _t(0.5 + level / 2, n - 1) * sd * math.sqrt(1 + 1 / n)
    gap = abs(mean - claimed)
    bound = gap + _t(level, n - 1) * sd / math.sqrt(n)
    detail = (f"mean {_pct(mean, scale)}, prediction interval [{_pct(mean - half, scale)}, "
              f"{_pct(mean + half, scale)}] widened to [{_pct(mean - half - slack, scale)}, "
              f"{_pct(mean + half + slack, scale)}]; |mean - claimed| is at most {_pct(bound, scale)} "
              f"at {level * 100:.4g}% confidence against a tolerance of {_pct(slack, scale)}")
    eps = EPS * max(1.0, abs(claimed))  # a gap within float rounding of the claimed value is none
    if gap > half + slack + eps:
        return Decision(REFUTED, rule, detail)
    if bound <= slack + eps:
        return Decision(HOLDS, rule, detail)
    if gap < slack:  # the equivalence bound would clear with more seeds
        return Decision(INCONCLUSIVE, rule, detail, _seeds_to_clear(slack - gap, sd, n, level=level),
                        toward=HOLDS)
    # at or outside the tolerance but inside the interval: only a narrower interval could refute it
    z = float(special.ndtri(0.5 + level / 2))
    if gap - slack <= z * sd:
        where = "at the edge of" if gap - slack <= eps else "outside"
        return Decision(INCONCLUSIVE, rule, detail, undecidable=(
            f"no number of seeds would decide it at this mean and spread: the claimed value is {where} "
            "the tolerance of the mean but inside the spread of single runs"))
    # the interval narrows towards mean ± z·sd: the seeds at which k new seeds' gap would clear
    # it with 80% power. Refuted when (mean - edge) / (s / sqrt(k)) > t · sqrt(k + 1), with edge
    # the tolerance's: a noncentral t with noncentrality (gap - slack) · sqrt(k) / sd
    k = n
    while k <= MAX_SEEDS and 1 - float(special.nctdtr(
            k - 1, (gap - slack) * math.sqrt(k) / sd, _t(0.5 + level / 2, k - 1) * math.sqrt(k + 1))) < POWER:
        k = k + 1 if k < 100 else int(k * 1.1)
    return Decision(INCONCLUSIVE, rule, detail, k, toward=REFUTED)


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
    eps = EPS * max(1.0, abs(threshold))  # a bound within rounding of the threshold sits on it
    if relation in _ABOVE:
        yes = low > threshold + eps or (relation == ">=" and low >= threshold - eps)
        no = high < threshold - eps or (relation == ">" and high <= threshold + eps)
    else:
        yes = high < threshold - eps or (relation == "<=" and high <= threshold + eps)
        no = low > threshold + eps or (relation == "<" and low >= threshold - eps)
    verdict = HOLDS if yes else REFUTED if no else INCONCLUSIVE
    return verdict, (f"{what} {_pct(mean, scale)}, one-sided {level * 100:.4g}% bounds "
                     f"[{_pct(low, scale)}, {_pct(high, scale)}] against {relation} {_pct(threshold, scale)}")


def _shift(relation: str, claimed: float, slack: float) -> float:
    """The threshold a tolerance moves in the claim's favour (an equivalence margin)."""
    return claimed - slack if relation in _ABOVE else claimed + slack


def _toward(mean: float, relation: str, threshold: float) -> str:
    """Where more seeds would take a bound: the side of the threshold the mean is on."""
    if mean == threshold:
        return ""
    return HOLDS if (mean > threshold) == (relation in _ABOVE) else REFUTED


def bound(values: Sequence[float], relation: str, claimed: float, slack: float = 0.0,
          scale: float = 1.0, looks: int = 1, candidates: int = 1) -> Decision:
    """A bound on the mean of the seeds ('>', '>=', '<', '<='), at Bonferroni's level over
    ``candidates`` where it is one of several tests that could each decide alone."""
    mean, sd, n = _mean_sd(values)
    threshold, level = _shift(relation, claimed, slack), confidence(looks, candidates)
    rule = (f"bound: a one-sided {LEVEL:.0%} confidence bound of the seed mean (Student's t) must "
            f"clear it{_looked(looks)}")
    verdict, detail = _bound(mean, sd / math.sqrt(n), n - 1, relation, threshold, scale, "mean", level)
    if n < 2:
        return Decision(INCONCLUSIVE, rule, detail, undecidable="one seed gives no spread: train more seeds")
    needed = _seeds_to_clear(abs(mean - threshold), sd, n, level=level) if verdict == INCONCLUSIVE else None
    return Decision(verdict, rule, detail, needed, toward=_toward(mean, relation, threshold))


def within(values: Sequence[float], low: float, high: float, slack_low: float = 0.0,
           slack_high: float = 0.0, scale: float = 1.0, looks: int = 1) -> Decision:
    """The seed mean inside [low, high]: holds when both one-sided bounds lie inside it
    (intersection-union, each at the level); refuted when one lies outside at Bonferroni's
    level over the two sides, since either alone would refute it."""
    lower = bound(values, ">=", low, slack_low, scale, looks)
    upper = bound(values, "<=", high, slack_high, scale, looks)
    mean, sd, n = _mean_sd(values)
    if n < 2:
        return Decision(INCONCLUSIVE, "range: needs at least two seeds", lower.detail,
                        undecidable="one seed gives no spread: train more seeds")
    sides = [bound(values, ">=", low, slack_low, scale, looks, candidates=2),
             bound(values, "<=", high, slack_high, scale, looks, candidates=2)]
    rule = (f"range: both one-sided {LEVEL:.0%} confidence bounds of the seed mean (Student's t) "
            f"must lie inside it; refuted when one lies outside at {confidence(looks, 2) * 100:.4g}%, one "
            f"of two sides{_looked(looks)}")
    if REFUTED in (sides[0].verdict, sides[1].verdict):
        verdict = REFUTED
    elif lower.verdict == upper.verdict == HOLDS:
        verdict = HOLDS
    else:
        verdict = INCONCLUSIVE
    # heading out of the range: the stricter side's seeds; heading in: the slower side's
    out = [d for d in sides if d.verdict == INCONCLUSIVE and d.toward == REFUTED]
    needs = [d.seeds_needed for d in ((out[:1]) or [d for d in (lower, upper) if d.verdict == INCONCLUSIVE])]
    needed = None if None in needs or not needs else max(needs)  # type: ignore[type-var]
    half = _t(confidence(looks), n - 1) * sd / math.sqrt(n) if n > 1 else math.inf
    detail = (f"mean {_pct(mean, scale)}, one-sided {confidence(looks) * 100:.4g}% bounds "
              f"[{_pct(mean - half, scale)}, {_pct(mean + half, scale)}] against "
              f"[{_pct(low - slack_low, scale)}, {_pct(high + slack_high, scale)}]")
    return Decision(verdict, rule, detail, needed, toward=REFUTED if out else HOLDS if needs else "")


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
    return Decision(verdict, rule, detail, needed, toward=_toward(mean, relation, threshold))

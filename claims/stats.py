"""The statistical rules that turn seeds into verdicts, one per shape of claim, written once.

Every training result is a sample: a few seeds of a run whose outcome varies with the
initialisation, the data order and the Dropout masks. Each rule says ``holds``, ``refuted``
or, when the seeds cannot tell, ``inconclusive`` with roughly how many seeds would decide.
All intervals are at ``LEVEL`` (95%), from Student's t (scipy.stats):

- a **figure** the source reports from its one run ("best test accuracy of 99.24%"): holds
  when it lies in the 95% *prediction interval* of one more run, ``mean ± t(n-1) · s ·
  sqrt(1 + 1/n)``, widened by the claim's reproduction tolerance; refuted when it lies
  outside; inconclusive with fewer than 3 seeds.
- a **bound** ("> 99%", "between 30 and 40 epochs on average"): a one-sided 95% confidence
  bound of the *mean*, ``mean ∓ t(n-1) · s / sqrt(n)``: holds when the bound on the claim's
  side clears the threshold, refuted when the bound on the other side fails it, otherwise
  inconclusive. A range is two such bounds (intersection-union).
- a **comparison** between runs ("A beats B", "pruned networks do not learn faster"): the
  same one-sided bounds on the mean *difference*, paired by seed where both runs used the
  same seeds (a t interval of the per-seed differences), else Welch's interval.
- a **ranking** ("the top 2 confusions are 5->3 and 7->2"): a bootstrap over seeds and over
  test images (each seed's confusion counts redrawn as a multinomial of its test set):
  holds when the claimed set is the top set in at least 95% of the draws, refuted when in at
  most 5%, otherwise inconclusive.

"How many seeds would decide" assumes the observed mean and spread stay as they are and
finds the smallest n at which the interval would clear the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

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

    @property
    def needs(self) -> str:
        """What would decide an inconclusive verdict, in words."""
        if self.verdict != INCONCLUSIVE:
            return ""
        if self.undecidable:
            return self.undecidable
        if self.seeds_needed is None:
            return "no number of seeds would decide it at this mean (it sits on the threshold)"
        if self.seeds_needed > MAX_SEEDS:
            return f"more than {MAX_SEEDS:,} seeds would be needed at this mean and spread"
        return f"about {self.seeds_needed} seeds would decide it at this mean and spread"


def _mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    x = np.asarray(values, dtype=float)
    n = len(x)
    return float(x.mean()), float(x.std(ddof=1)) if n > 1 else 0.0, n


def _t(q: float, df: float) -> float:
    return float(st.t.ppf(q, df))


def _pct(x: float, scale: float) -> str:
    return f"{x * scale:.4g}"


def figure(values: Sequence[float], claimed: float, slack: float, scale: float = 1.0) -> Decision:
    """A one-run figure against the seeds' prediction interval, widened by ``slack``."""
    mean, sd, n = _mean_sd(values)
    rule = (f"figure: the claimed value must lie in the {LEVEL:.0%} prediction interval of one more "
            f"run (Student's t over the seeds), widened by the tolerance")
    if n < MIN_SEEDS_FIGURE:
        return Decision(INCONCLUSIVE, rule, f"{n} seed(s): a prediction interval needs at least "
                        f"{MIN_SEEDS_FIGURE}", MIN_SEEDS_FIGURE)
    half = _t(0.5 + LEVEL / 2, n - 1) * sd * math.sqrt(1 + 1 / n)
    low, high = mean - half - slack, mean + half + slack
    ok = low - 1e-12 <= claimed <= high + 1e-12
    detail = (f"prediction interval [{_pct(mean - half, scale)}, {_pct(mean + half, scale)}], "
              f"with tolerance [{_pct(low, scale)}, {_pct(high, scale)}]")
    return Decision(HOLDS if ok else REFUTED, rule, detail)


def _seeds_to_clear(gap: float, sd: float, n: int, welch: bool = False) -> int | None:
    """Smallest n (per group) at which the one-sided t bound is narrower than ``gap``."""
    if gap <= 0:
        return None
    if sd == 0:
        return n
    k = max(n, 2)
    while k <= MAX_SEEDS:
        df = 2 * k - 2 if welch else k - 1
        if _t(LEVEL, df) * sd / math.sqrt(k) < gap:
            return k
        k = k + 1 if k < 100 else int(k * 1.1)
    return MAX_SEEDS + 1


def _bound(mean: float, se: float, df: float, relation: str, threshold: float, scale: float,
           what: str) -> tuple[str, str]:
    """One-sided bounds of ``mean`` against ``relation threshold``: (verdict, numbers)."""
    if df < 1:
        return INCONCLUSIVE, f"{what} {_pct(mean, scale)} from one seed: no interval"
    t = _t(LEVEL, df)
    low, high = mean - t * se, mean + t * se
    if relation in _ABOVE:
        yes = low > threshold or (relation == ">=" and low >= threshold)
        no = high < threshold or (relation == ">" and high <= threshold)
    else:
        yes = high < threshold or (relation == "<=" and high <= threshold)
        no = low > threshold or (relation == "<" and low >= threshold)
    verdict = HOLDS if yes else REFUTED if no else INCONCLUSIVE
    return verdict, (f"{what} {_pct(mean, scale)}, one-sided {LEVEL:.0%} bounds "
                     f"[{_pct(low, scale)}, {_pct(high, scale)}] against {relation} {_pct(threshold, scale)}")


def _shift(relation: str, claimed: float, slack: float) -> float:
    """The threshold a tolerance moves in the claim's favour (an equivalence margin)."""
    return claimed - slack if relation in _ABOVE else claimed + slack


def bound(values: Sequence[float], relation: str, claimed: float, slack: float = 0.0,
          scale: float = 1.0) -> Decision:
    """A bound on the mean of the seeds ('>', '>=', '<', '<=')."""
    mean, sd, n = _mean_sd(values)
    threshold = _shift(relation, claimed, slack)
    rule = f"bound: a one-sided {LEVEL:.0%} confidence bound of the seed mean (Student's t) must clear it"
    verdict, detail = _bound(mean, sd / math.sqrt(n), n - 1, relation, threshold, scale, "mean")
    needed = _seeds_to_clear(abs(mean - threshold), sd, n) if verdict == INCONCLUSIVE else None
    if n < 2:
        needed = max(2, _seeds_to_clear(abs(mean - threshold), sd, n) or 2)
    return Decision(verdict, rule, detail, needed)


def within(values: Sequence[float], low: float, high: float, slack_low: float = 0.0,
           slack_high: float = 0.0, scale: float = 1.0) -> Decision:
    """The seed mean inside [low, high]: both one-sided bounds (intersection-union)."""
    lower = bound(values, ">=", low, slack_low, scale)
    upper = bound(values, "<=", high, slack_high, scale)
    rule = (f"range: both one-sided {LEVEL:.0%} confidence bounds of the seed mean (Student's t) "
            "must lie inside it")
    if REFUTED in (lower.verdict, upper.verdict):
        verdict = REFUTED
    elif lower.verdict == upper.verdict == HOLDS:
        verdict = HOLDS
    else:
        verdict = INCONCLUSIVE
    needs = [d.seeds_needed for d in (lower, upper) if d.verdict == INCONCLUSIVE]
    needed = None if None in needs or not needs else max(needs)  # type: ignore[type-var]
    mean, sd, n = _mean_sd(values)
    half = _t(LEVEL, n - 1) * sd / math.sqrt(n) if n > 1 else math.inf
    detail = (f"mean {_pct(mean, scale)}, one-sided {LEVEL:.0%} bounds [{_pct(mean - half, scale)}, "
              f"{_pct(mean + half, scale)}] against [{_pct(low - slack_low, scale)}, "
              f"{_pct(high + slack_high, scale)}]")
    return Decision(verdict, rule, detail, needed)


def difference(a: Sequence[float], b: Sequence[float], paired: bool, relation: str, claimed: float,
               slack: float = 0.0, scale: float = 1.0) -> Decision:
    """The mean of ``a - b`` against ``relation claimed``: paired by seed, else Welch."""
    threshold = _shift(relation, claimed, slack)
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
    rule = (f"comparison: a one-sided {LEVEL:.0%} confidence bound of the mean difference "
            f"({method}, Student's t) must clear it")
    verdict, detail = _bound(mean, se, df, relation, threshold, scale, "difference")
    needed = None
    if verdict == INCONCLUSIVE:
        needed = _seeds_to_clear(abs(mean - threshold), sd * (math.sqrt(2) if welch else 1), n, welch)
        needed = None if needed is None else max(needed, 2)  # one seed gives no interval
    return Decision(verdict, rule, detail, needed)


def top_set(matrix: np.ndarray, k: int) -> frozenset[tuple[int, int]]:
    """The ``k`` most frequent off-diagonal cells (true, predicted); ties broken by cell order."""
    m = np.array(matrix, dtype=float)
    np.fill_diagonal(m, -1)
    order = np.argsort(-m, axis=None, kind="stable")[:k]
    return frozenset((int(i // m.shape[1]), int(i % m.shape[1])) for i in order)


def ranking_share(matrices: np.ndarray, claimed: frozenset[tuple[int, int]], draws: int = BOOTSTRAP_DRAWS,
                  seeds: int | None = None, rng_seed: int = 0) -> float:
    """Share of bootstrap draws whose top set is ``claimed``: seeds drawn with replacement
    (``seeds`` of them, default as many as there are), each seed's confusion counts redrawn
    as a multinomial over its test images."""
    rng = np.random.default_rng(rng_seed)
    matrices = np.asarray(matrices, dtype=np.int64)
    s, k = matrices.shape[0], matrices.shape[1]
    seeds = seeds or s
    flat = matrices.reshape(s, -1)
    totals = flat.sum(1)
    picks = rng.integers(0, s, size=(draws, seeds))
    summed = np.zeros((draws, k * k), dtype=np.int64)
    for j in range(s):
        uses = (picks == j).sum(1)  # how often each draw took seed j
        for times in np.unique(uses[uses > 0]):
            rows = np.nonzero(uses == times)[0]
            counts = rng.multinomial(totals[j], flat[j] / totals[j], size=(len(rows), int(times)))
            summed[rows] += counts.sum(1)
    summed[:, np.arange(k) * (k + 1)] = -1  # the diagonal is no error
    top = np.sort(np.argsort(-summed, axis=1, kind="stable")[:, :len(claimed)], axis=1)
    want = np.sort([i * k + j for i, j in claimed])
    return float((top == want).all(1).mean())


def ranking(matrices: np.ndarray, claimed: frozenset[tuple[int, int]]) -> Decision:
    """Is ``claimed`` the top set of errors, stably over seeds and test images?"""
    share = ranking_share(matrices, claimed)
    rule = (f"ranking: the claimed set must be the top set in at least {LEVEL:.0%} of "
            f"{BOOTSTRAP_DRAWS:,} bootstrap draws over seeds and test images (refuted at most "
            f"{1 - LEVEL:.0%})")
    detail = f"the claimed set is the top set in {share:.1%} of the draws"
    if share >= LEVEL:
        return Decision(HOLDS, rule, detail)
    if share <= 1 - LEVEL:
        return Decision(REFUTED, rule, detail)
    s = len(matrices)
    needed = next((n for n in (2 * s, 4 * s, 8 * s, 16 * s)
                   if not 1 - LEVEL < ranking_share(matrices, claimed, 500, n) < LEVEL), None)
    if needed is None:
        return Decision(INCONCLUSIVE, rule, detail, undecidable=(
            f"even {16 * s} seeds like these would not decide it: the ranking is not stable"))
    return Decision(INCONCLUSIVE, rule, detail, needed)

"""The edges of the verdict rules, one test per way a rule could be broken unseen.

A mutation review (one small change at a time to ``claims.stats``, ``shares``,
``order_statistics``, ``verdict`` and ``decide``) found 34 changes that no test noticed: a
level, a side, a tie, a censored count, a look, the seeds planned. Each test below fails on one
of them, with inputs where the right rule and the changed one disagree; the comment says which.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from claims import shares, stats
from claims import verdict as verdict_module
from claims.order_statistics import figure_of_capped_counts
from claims.registry import registry
from claims.verdict import HOLDS, INCONCLUSIVE, PENDING, REFUTED, Verdict, _combine, decide, judge, next_look
from training import metrics

pytestmark = pytest.mark.unit

SPREAD = (0.0, 1.0, 2.0, 1.5, 0.5)  # mean 1.0, sd 0.79: one-sided bounds 0.247 / 1.753 at 95%


def _claim(claim_id: str):
    return next(c for c in registry() if c.id == claim_id)


def _confusions(seeds: int, cells: dict[tuple[int, int], int]) -> np.ndarray:
    """``seeds`` runs with the same confusion counts: 950 right per digit, 2 per other error,
    ``cells`` as given."""
    one = np.full((10, 10), 2)
    np.fill_diagonal(one, 950)
    for (i, j), count in cells.items():
        one[i, j] = count
    return np.repeat(one[None], seeds, axis=0)


# -- levels after looks and among candidates ------------------------------------------------------
def test_the_level_divides_five_percent_by_looks_times_candidates() -> None:
    assert stats.confidence(2, 36) == pytest.approx(1 - 0.05 / 72)  # not / (2 + 36 - 1)
    a, b = (0.9915, 0.9925, 0.9920, 0.9922), (0.9900, 0.9905, 0.9910, 0.9912)
    assert stats.difference(a, b, True, ">", 0.0, candidates=2, looks=2).verdict == HOLDS
    assert stats.difference(a, b, True, ">", 0.0, candidates=5, looks=2).verdict == INCONCLUSIVE


def test_a_figures_equivalence_bound_is_taken_at_the_level_of_its_look() -> None:
    assert stats.figure((0.989, 0.990, 0.991), 0.9905, 0.0022).verdict == HOLDS
    assert stats.figure((0.989, 0.990, 0.991), 0.9905, 0.0022, looks=2).verdict == INCONCLUSIVE


def test_a_ranking_is_judged_at_the_level_of_its_look() -> None:
    every_seed = _confusions(5, {(5, 3): 60, (7, 2): 50})
    claimed = frozenset({(5, 3), (7, 2)})
    assert shares.ranking(every_seed, claimed).verdict == HOLDS
    assert shares.ranking(every_seed, claimed, looks=2).verdict == INCONCLUSIVE


def test_a_part_refutes_only_at_bonferronis_level_over_parts_and_looks() -> None:
    claim = _claim("mnist-10k.a3.above-99")  # > 0.99
    clear = metrics.Seeds((0.995, 0.996, 0.997), looks=2)
    low = metrics.Seeds((0.9857, 0.9867, 0.9877), looks=2)
    assert decide(claim, low).verdict == REFUTED  # alone, at 97.5%
    # two parts at the second look: 1 - 5% / 4, not 1 - 5% / 3
    assert decide(claim, metrics.AllOf((clear, low))).verdict == INCONCLUSIVE


# -- edges: equal seeds, strict relations, float rounding -----------------------------------------
def test_equal_seeds_on_a_strict_threshold_refute_it_from_either_side() -> None:
    assert stats.bound([0.1] * 3, ">", 0.1).verdict == REFUTED
    assert stats.bound([0.1] * 3, "<", 0.1).verdict == REFUTED
    assert stats.bound([0.1] * 3, "<=", 0.1).verdict == HOLDS


def test_equal_seeds_at_a_large_claimed_figure_are_not_refuted_by_rounding() -> None:
    """The figure rule compared the gap with an absolute 1e-12; at 100,000.1 the mean of three
    equal seeds is off by float rounding alone, and three seeds exactly at the claim refuted it."""
    assert stats.figure([100000.1] * 3, 100000.1, 0).verdict == HOLDS
    assert stats.figure([0.1] * 3, 0.1, 0).verdict == HOLDS
    assert stats.figure([100000.1] * 3, 100000.2, 0).verdict == REFUTED


# -- ranges ---------------------------------------------------------------------------------------
def test_a_range_holds_on_both_95_percent_bounds_inside_it() -> None:
    assert stats.within(SPREAD, 0.2, 1.8).verdict == HOLDS  # at 97.5% a side it would not
    assert stats.within(SPREAD, 0.3, 1.8).verdict == INCONCLUSIVE


def test_a_range_applies_each_sides_own_tolerance() -> None:
    assert stats.within(SPREAD, 0.2, 1.7, slack_low=0.0, slack_high=0.1).verdict == HOLDS
    assert stats.within(SPREAD, 0.2, 1.7, slack_low=0.1, slack_high=0.0).verdict == INCONCLUSIVE


def test_a_range_refutes_on_either_side_only_at_97_5_percent() -> None:
    # mean 1.0 above 0.2: the one-sided 95% bound (0.247) clears it, the 97.5% one (0.018) not
    assert stats.bound(SPREAD, "<=", 0.2).verdict == REFUTED
    assert stats.within(SPREAD, -5, 0.2).verdict == INCONCLUSIVE
    assert stats.within(SPREAD, 1.8, 5).verdict == INCONCLUSIVE
    assert stats.within(SPREAD, -5, -0.2).verdict == REFUTED


# -- unpaired comparisons -------------------------------------------------------------------------
def test_an_unpaired_comparison_takes_welchs_degrees_of_freedom() -> None:
    """One side spread, the other nearly constant: Welch's df is near 4, the pooled 8 would call
    it decided."""
    a, b = (0.9, 1.0, 1.1, 0.95, 1.05), (0.0, 0.001, -0.001, 0.0005, -0.0005)
    assert stats.difference(a, b, False, ">", 0.93).verdict == INCONCLUSIVE
    assert stats.difference(a, b, False, ">", 0.85).verdict == HOLDS


# -- shares: ties ---------------------------------------------------------------------------------
def test_a_ranking_every_seed_ties_at_the_edge_is_not_refuted() -> None:
    """59 seeds, each with the second claimed error tied with another: every one possibly ranks
    the claim first, so the share that could give it is not rare."""
    tied = _confusions(59, {(5, 3): 60, (7, 2): 50, (4, 9): 50})
    decision = shares.ranking(tied, frozenset({(5, 3), (7, 2)}))
    assert decision.verdict == INCONCLUSIVE and "tie" in decision.detail
    never = _confusions(59, {(5, 3): 60, (7, 2): 40, (4, 9): 50})
    assert shares.ranking(never, frozenset({(5, 3), (7, 2)})).verdict == REFUTED


# -- counts capped by the run ---------------------------------------------------------------------
def test_a_median_bound_at_a_censored_count_is_at_least_that() -> None:
    counts = (38, 38, 39, 39, 39, 39, 40, 40)  # the two 40s never reached the mark
    capped = figure_of_capped_counts(counts, 39, 1.0, censored=2, beyond_limit=True)
    assert capped.verdict == INCONCLUSIVE and "or more" in capped.detail
    assert figure_of_capped_counts(counts, 39, 1.0).verdict == HOLDS  # the same counts, exact


def test_a_capped_count_holds_only_with_both_median_bounds_in_the_tolerance() -> None:
    steady = (30, 31, 31, 32, 31, 30, 33, 31, 32, 31)
    assert figure_of_capped_counts(steady, 31, 1.0).verdict == HOLDS
    assert figure_of_capped_counts(steady, 33, 1.0).verdict == INCONCLUSIVE  # the median is below 32
    assert figure_of_capped_counts(steady, 29, 1.0).verdict == INCONCLUSIVE  # and above 30


def test_a_claimed_count_above_every_seed_is_refuted() -> None:
    seeds = (31, 40, 36, 40, 40, 40, 40, 40, 40, 35, 40, 33, 38) * 3
    assert figure_of_capped_counts(seeds, 60, 0.0).verdict == REFUTED
    assert figure_of_capped_counts(seeds, 20, 0.0).verdict == REFUTED


def test_the_runs_limit_is_the_first_censored_count() -> None:
    """79 seeds, one of which never reached the mark (41 = one past a limit of 40): a claimed 40
    is refutable, not 'beyond the run's limit'."""
    counts = [20 + (i % 20) for i in range(78)] + [41]
    decision = figure_of_capped_counts(counts, 40, 0.0, censored=1, beyond_limit=True)
    assert decision.verdict == REFUTED
    beyond = figure_of_capped_counts(counts, 42, 0.0, censored=1, beyond_limit=True)
    assert beyond.verdict == INCONCLUSIVE and "beyond the run's limit" in beyond.needs


def test_counts_that_never_reached_the_mark_cannot_refute_a_range_from_below() -> None:
    claim = _claim("mnist-10k.a1.early-stop-epoch")  # in [30, 40]
    never = metrics.Seeds((18.0, 21.0, 21.0, 21.0), discrete=True, censored=3, beyond_limit=True)
    assert decide(claim, never).verdict == INCONCLUSIVE  # the true counts are at least 21
    assert decide(claim, dataclasses.replace(never, beyond_limit=False)).verdict == REFUTED


def test_counts_that_never_reached_the_mark_cannot_refute_an_at_least() -> None:
    claim = dataclasses.replace(_claim("mnist-10k.a1.early-stop-epoch"), claimed=45, relation=">=",
                                tolerance={})
    never = metrics.Seeds((38.0, 41.0, 41.0, 41.0), discrete=True, censored=3, beyond_limit=True)
    assert decide(claim, never).verdict == INCONCLUSIVE
    assert decide(claim, dataclasses.replace(never, beyond_limit=False)).verdict == REFUTED


# -- parts and sessions ---------------------------------------------------------------------------
def test_sessions_that_must_agree_are_not_decided_by_one_alone() -> None:
    holds = stats.bound((0.991, 0.992, 0.993), ">", 0.990)
    undecided = stats.bound((0.991, 0.992, 0.993), ">", 0.9935)
    assert (holds.verdict, undecided.verdict) == (HOLDS, INCONCLUSIVE)
    assert _combine([holds, undecided], "agree").verdict == INCONCLUSIVE
    assert _combine([holds, holds], "agree").verdict == HOLDS


def test_an_unpaired_count_is_without_spread_only_when_both_sides_are() -> None:
    claim = _claim("mnist-10k.prune.not-faster")  # >= 0, tolerance 1
    one_side_constant = metrics.Difference((6.0, 6.0, 6.0, 6.0), (2.0, 3.0, 4.0, 3.0), False, "epochs",
                                           discrete=True)
    assert decide(claim, metrics.AllOf((one_side_constant,))).verdict == HOLDS
    both = metrics.Difference((6.0,) * 4, (3.0,) * 4, False, "epochs", discrete=True)
    assert verdict_module._no_spread(both) and not verdict_module._no_spread(one_side_constant)


def test_a_capped_runs_lower_bound_decides_only_an_at_least(monkeypatch) -> None:
    prefix = metrics.Seeds((0.991, 0.992, 0.993), lower_bound=True, files=("results/mnist_approach3.json",))
    monkeypatch.setattr(verdict_module, "measure", lambda spec: prefix)
    above = _claim("mnist-10k.a3.above-99")
    assert judge(above).verdict == HOLDS  # > 0.99: a lower bound above it is enough
    below = dataclasses.replace(above, relation="<", claimed=0.999)
    assert judge(below).verdict == PENDING  # the full run's best could be higher


# -- how many seeds would decide ------------------------------------------------------------------
def test_a_figure_inside_the_spread_of_single_runs_says_no_seeds_would_decide() -> None:
    decision = stats.figure([0.0, 1.0, 2.0], 2.8, 0.0)
    assert decision.seeds_needed is None and "no number of seeds" in decision.needs


def test_seeds_needed_for_a_welch_comparison() -> None:
    a, b = (0.990, 0.980, 0.970, 0.985), (0.981, 0.975, 0.962, 0.978)
    decision = stats.difference(a, b, False, ">", 0)
    mean = np.mean(a) - np.mean(b)
    sd = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2) * np.sqrt(2)  # per seed of each side

    def half(k):  # the one-sided bound's half-width at df 2k - 2, planned at 80% power
        return (stats._t(stats.LEVEL, 2 * k - 2) + stats._t(stats.POWER, 2 * k - 2)) * sd / np.sqrt(k)
    assert half(decision.seeds_needed) < mean <= half(decision.seeds_needed - 1)
    assert decision.seeds_needed == 18


def test_seeds_needed_clear_the_threshold_the_tolerance_moved() -> None:
    decision = stats.bound((0.975, 0.980, 0.985, 0.978, 0.982), ">", 0.980, slack=0.001)
    assert decision.verdict == INCONCLUSIVE and decision.seeds_needed == 92  # 10,001 against 0.980


def test_seeds_needed_for_a_range_are_the_slower_sides() -> None:
    lower, upper = stats.bound(SPREAD, ">=", 0.3), stats.bound(SPREAD, "<=", 1.75)
    assert (lower.seeds_needed, upper.seeds_needed) == (10, 9)
    assert stats.within(SPREAD, 0.3, 1.75).seeds_needed == 10


def test_seeds_needed_to_refute_a_pick_at_the_level_of_its_look() -> None:
    assert shares.picks(0, 6).seeds_needed == 59
    assert shares.picks(0, 6, looks=2).seeds_needed == 72
    assert shares.picks(0, 72, looks=2).verdict == REFUTED
    assert shares.picks(0, 59, looks=2).verdict == INCONCLUSIVE


def test_a_claimed_count_among_the_seeds_widened_says_no_seeds_would_refute_it() -> None:
    seeds = (31, 40, 36, 40, 40, 40, 40, 40, 40, 35, 40, 33, 38)
    decision = figure_of_capped_counts(seeds, 30, 1.0)  # 30 + 1 reaches the seeds' 31
    assert decision.seeds_needed is None and "no number of seeds would refute it" in decision.needs


def test_parts_heading_for_refutation_take_the_fewest_seeds_and_else_the_most() -> None:
    refuting = [stats.figure([0, 0.1, 0.2], 0.9, 0.5), stats.figure([0, 0.1, 0.2], 1.0, 0.5)]
    assert [d.seeds_needed for d in refuting] == [9, 5]
    assert _combine(refuting).seeds_needed == 5  # one part refuted refutes the claim
    holding = [stats.bound([0.99, 0.96, 1.0], ">", 0.98), stats.bound([0.99, 0.97, 1.0], ">", 0.98)]
    assert [d.seeds_needed for d in holding] == [256, 35]
    assert _combine(holding).seeds_needed == 256  # every part must hold


def test_a_claims_seeds_are_planned_for_the_look_each_file_it_reads_will_add(monkeypatch) -> None:
    claim = _claim("mnist-10k.a3.dropouts-lower-accuracy")
    a, b = (0.996, 0.9967, 0.9963, 0.9947, 0.9956), (0.9892, 0.9882, 0.9878, 0.9882, 0.9871)
    files = ("results/mnist_approach3.json", "results/mnist_approach3_dropout.json")
    measured = metrics.AllOf((metrics.Difference(a, b, True, "train", files=files),
                              metrics.Difference((0.9927, 0.9925, 0.9907, 0.9915, 0.992),
                                                 (0.9925, 0.9918, 0.9905, 0.992, 0.9915), True, "test",
                                                 files=files)))
    monkeypatch.setattr(verdict_module, "measure", lambda spec: measured)
    verdict = judge(claim)
    planned = decide(claim, next_look(measured, 2)).seeds_needed
    assert verdict.verdict == INCONCLUSIVE and planned != decide(claim, next_look(measured, 1)).seeds_needed
    assert re.search(rf"about {planned:,} seeds would decide", verdict.reason)


# -- the planner of --until-decided ---------------------------------------------------------------
@pytest.fixture
def planner(monkeypatch):
    """``claims.decide`` with the seeds each recipe holds and the files each claim reads set by
    the test, and every claim inconclusive at three seeds near 99%."""
    import training.run
    from claims import decide as planner

    seeds = metrics.Seeds((0.9901, 0.9912, 0.9897))
    held: dict[str, list[int]] = {}
    reads: dict[str, list[str]] = {}
    monkeypatch.setattr(planner, "judge", lambda c: Verdict(c, INCONCLUSIVE, seeds, ""))
    monkeypatch.setattr(planner, "_seeds_of", lambda r: list(held.get(r, [0, 1, 2])))
    monkeypatch.setattr(training.run, "needed_recipes", lambda m, dependencies=False: reads[m["recipe"]])
    planner.held, planner.reads, planner.seeds = held, reads, seeds
    return planner


def _reading(claim_id: str, recipe: str):
    claim = _claim(claim_id)
    return dataclasses.replace(claim, measure={**claim.measure, "recipe": recipe})


def test_the_planner_plans_for_the_next_look_of_every_file_read(planner) -> None:
    claim = _reading("mnist-10k.a3.above-99", "one")
    planner.reads["one"] = ["r1"]
    at_look_2 = decide(claim, next_look(planner.seeds, 1)).seeds_needed
    at_look_3 = decide(claim, next_look(planner.seeds, 2)).seeds_needed
    assert decide(claim, planner.seeds).seeds_needed < at_look_2 < at_look_3
    assert [(s.recipe, s.want) for s in planner.plan(at_look_2, [claim])[0]] == [("r1", at_look_2)]
    assert planner.plan(at_look_2 - 1, [claim])[0] == []  # beyond MAX: reported, not trained
    planner.reads["one"] = ["r1", "r2"]
    planner.held["r2"] = list(range(at_look_3))  # already enough seeds: no step for it
    steps = planner.plan(at_look_3, [claim])[0]
    assert [(s.recipe, s.want, s.new_seeds[0]) for s in steps] == [("r1", at_look_3, 3)]


def test_the_planner_takes_the_most_seeds_any_claim_on_a_recipe_needs(planner) -> None:
    near = _reading("mnist-10k.a3.above-99", "near")
    far = dataclasses.replace(_reading("mnist-10k.a3.above-99", "far"), claimed=0.9903)
    planner.reads.update(near=["r1"], far=["r1"])
    wants = [decide(c, next_look(planner.seeds, 1)).seeds_needed for c in (near, far)]
    assert wants[0] != wants[1]
    for order in ([near, far], [far, near]):
        steps = planner.plan(max(wants), order)[0]
        assert [(s.recipe, s.want) for s in steps] == [("r1", max(wants))]

"""Verdicts: a claim's measurement judged by the rule for its shape, never written down.

Five verdicts: ``holds`` and ``refuted`` (decided), ``inconclusive`` (measured, but the seeds
cannot decide; the reason says how many would), ``pending`` (not measured yet; the reason
says the command that measures it) and ``unmeasurable`` (a figure outside this suite's reach;
the reason says whose it is). The rules live in ``claims.stats``; ``decide`` applies them to
any measurement, so a test can judge perturbed copies of a measurement the same way.
"""

from __future__ import annotations

import math
import operator
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from claims import order_statistics, shares, stats
from claims.expressions import inputs
from claims.measures import MeasureError, Pending, Unmeasurable, measure
from claims.registry import Claim
from training.measurements import plural
from training.metrics import AllOf, Difference, Explained, Picks, Ranking, Seeds

HOLDS, REFUTED, INCONCLUSIVE = stats.HOLDS, stats.REFUTED, stats.INCONCLUSIVE
PENDING, UNMEASURABLE = "pending", "unmeasurable"
VERDICTS = (HOLDS, REFUTED, INCONCLUSIVE, PENDING, UNMEASURABLE)
DECIDED = (HOLDS, REFUTED)
EXACT_RULE = "exact: a deterministic measurement (a build, a count, arithmetic) within the tolerance"


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    measured: Any
    reason: str
    #: The statistical rule that decided, in words (method and level); "" where none applied.
    rule: str = ""
    #: The files the verdict rests on (result files, benchmark files).
    evidence: tuple[str, ...] = ()
    #: What a pending claim waits for: 'train RECIPE', 'retrain RECIPE', 'data DATASET',
    #: 'benchmarks' (else "").
    waits_for: str = ""

    @property
    def as_expected(self) -> bool:
        return self.claim.as_expected(self.verdict)


def slack(claim: Claim, claimed: float) -> float:
    tol = claim.tolerance
    return tol.get("abs", 0.0) + tol.get("rel", 0.0) * abs(claimed)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare(claim: Claim, measured: Any) -> bool:
    """Does a deterministic ``measured`` satisfy ``claimed`` under the relation and tolerance?"""
    claimed, relation = claim.claimed, claim.relation
    if relation == "in":
        low, high = claimed
        return low - slack(claim, low) <= measured <= high + slack(claim, high)
    if relation != "==":
        ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
        edge = slack(claim, claimed)  # a tolerance moves the threshold in the claim's favour
        if edge:  # a value on the edge, within float rounding (0.7 + 0.1 is 0.7999999999999999), is on it
            rounding = stats.EPS * max(1.0, abs(claimed) + edge)
            edge += rounding if relation in ("<=", ">=") else -rounding
        return ops[relation](measured, claimed - edge if relation in (">", ">=") else claimed + edge)
    if isinstance(claimed, bool) or isinstance(measured, bool):
        return type(claimed) is type(measured) and claimed == measured
    if _number(claimed) and _number(measured):
        return math.isclose(measured, claimed, rel_tol=0.0, abs_tol=slack(claim, claimed) + 1e-12)
    if isinstance(claimed, list) and isinstance(measured, (list, tuple)):
        return list(measured) == claimed
    return measured == claimed


def _cells(claimed: list[str]) -> frozenset[tuple[int, int]]:
    return frozenset(tuple(int(x) for x in c.split("->")) for c in claimed)  # type: ignore[misc]


def _sample(claim: Claim, values: tuple[float, ...], looks: int = 1, censored: int = 0,
            beyond_limit: bool = False) -> stats.Decision:
    """The rule for one sample of seeds, chosen by the claim's relation (a figure of counts some
    seeds reach only at the run's limit by order statistics: no normal law fits them)."""
    claimed = claim.claimed
    if claim.relation == "==":
        if censored:
            return order_statistics.figure_of_capped_counts(values, claimed, slack(claim, claimed), looks,
                                                            censored, beyond_limit)
        return stats.figure(values, claimed, slack(claim, claimed), looks=looks)
    if claim.relation == "in":
        low, high = claimed
        decision = stats.within(values, low, high, slack(claim, low), slack(claim, high), looks=looks)
        upward_ok = decision.verdict == REFUTED and statistics.fmean(values) > high
    else:
        decision = stats.bound(values, claim.relation, claimed, slack(claim, claimed), looks=looks)
        upward_ok = (decision.verdict == HOLDS) == (claim.relation in (">", ">="))
    if censored and beyond_limit and decision.verdict != INCONCLUSIVE and not upward_ok:
        # the seeds that never reached the mark count at least one past the run's limit: a verdict
        # the true, higher counts could reverse (holding below a threshold, refuting above one) is
        # not one to give
        return replace(decision, verdict=INCONCLUSIVE, seeds_needed=None, toward="", undecidable=(
            f"{plural(censored, 'seed')} never reached it within the run, so their counts are at least "
            f"one past its limit, not that: {decision.verdict} on them could be reversed by the true "
            "ones; only longer runs could tell"))
    return decision


#: Benchmark sessions (separate runs of the benchmarks) a timing claim needs: the committed CPU
#: sessions put one ratio far apart from session to session, each tight within its own, so one
#: session's interval says nothing of the next's (``python -m claims report -v --id
#: kmnist.gap-vs-dense.faster-training-cpu`` shows each session's ratio).
MIN_SESSIONS = 2


def _combine(decisions: list[stats.Decision], mode: str = "all") -> stats.Decision:
    """``mode`` "all": every part must hold; any refuted part refutes; otherwise inconclusive.
    "agree" (sessions measuring one quantity): holds or refuted only when every session says
    so. "any": holds when some part holds, refuted only when every part is refuted."""
    verdicts = [d.verdict for d in decisions]
    # sessions that must agree have no part that decides alone: every one needs its seeds
    seeds, undecided = _seeds_for_parts([d for d in decisions if d.verdict == INCONCLUSIVE],
                                        {"all": REFUTED, "any": HOLDS}.get(mode))
    first = any(d.first and d.seeds_needed == seeds for d in undecided)
    label = "session" if mode == "agree" else "part"
    parts = "; ".join(f"{label} {i + 1}: {d.verdict}, {d.detail}" for i, d in enumerate(decisions))
    if mode == "agree" and len(decisions) < MIN_SESSIONS:
        alone = decisions[0]
        rule = alone.rule + f"; every session must decide alike, and it takes {MIN_SESSIONS}"
        detail = f"session 1: {alone.verdict}, {alone.detail}"
        if alone.verdict == INCONCLUSIVE:  # what would decide the one session comes first
            return replace(alone, rule=rule, detail=detail)
        return stats.Decision(INCONCLUSIVE, rule, detail, undecidable=(
            f"one benchmark session ({alone.verdict} on its own): a timing varies between runs of the "
            "benchmarks more than within one, so a second session, run at another time, must decide it "
            "alike"))
    if mode == "agree":
        verdict = verdicts[0] if len(set(verdicts)) == 1 else INCONCLUSIVE
        split = {HOLDS, REFUTED} <= set(verdicts)
        return stats.Decision(verdict, decisions[0].rule + "; every session must decide alike", parts,
                              None if split else seeds, undecidable=(
                                  "the benchmark sessions disagree: the timing depends on the day, the "
                                  "machine and its load more than the claim allows" if split else ""),
                              unit=decisions[0].unit)
    if mode == "any":
        verdict = HOLDS if HOLDS in verdicts else REFUTED if set(verdicts) == {REFUTED} else INCONCLUSIVE
        return stats.Decision(verdict, decisions[0].rule + "; one part holding is enough, every part "
                              "must fail to refute", parts, seeds if verdict == INCONCLUSIVE else None,
                              unit=decisions[0].unit, first=first)
    verdict = REFUTED if REFUTED in verdicts else HOLDS if set(verdicts) == {HOLDS} else INCONCLUSIVE
    undecidable = "" if seeds is not None else next((d.undecidable for d in undecided if d.undecidable), "")
    bonferroni = (f", and one part refutes only at Bonferroni's level over the {len(decisions)} parts"
                  if len(decisions) > 1 else "")
    return stats.Decision(verdict, decisions[0].rule + f"; every part must hold{bonferroni}", parts, seeds,
                          undecidable, unit=decisions[0].unit, first=first)


def _seeds_for_parts(undecided: list[stats.Decision], alone: str | None) -> tuple[int | None,
                                                                                 list[stats.Decision]]:
    """The seeds that would decide a claim of several parts, and the parts they are for. One
    part reaching ``alone`` decides the whole (refuted for an every-part claim, holds for an
    any-part one): the fewest seeds at which one would. Else every part must decide the
    other way: the most seeds any of them needs, or none where one cannot."""
    deciding = [d for d in undecided if d.toward == alone and d.seeds_needed is not None]
    if deciding:
        fewest = min(deciding, key=lambda d: d.seeds_needed)  # type: ignore[arg-type, return-value]
        return fewest.seeds_needed, [fewest]
    needed = [d.seeds_needed for d in undecided]
    return (None if not needed or None in needed else max(needed)), undecided  # type: ignore[type-var]


#: Why seeds that agree exactly on a count decide nothing.
NO_SPREAD = ("the seeds agree exactly on a count (epochs), which shows no spread, not a spread of "
             "zero: an interval from them would have no width; seeds that differ would decide")


def _no_spread(measured: Seeds | Difference) -> bool:
    """A count that varies with the seed, observed with no variation at all."""
    if not measured.discrete:
        return False
    if isinstance(measured, Seeds):
        return len(measured.values) > 1 and len(set(measured.values)) == 1
    if measured.paired:
        return len(measured.a) > 1 and len({a - b for a, b in zip(measured.a, measured.b, strict=True)}) == 1
    return len(set(measured.a)) == 1 and len(set(measured.b)) == 1


#: The rule a comparison carrying held-out accuracies adds (``training.measurements.HeldOut``).
HELD_OUT_RULE = ("the run with the smaller value counts only where it does at least as well on held-out "
                 "data (its held-out accuracy not lower at the same confidence): a run that fits less "
                 "well has a smaller over-fitting gap, and one that stalls falls less, without being better")


def _held_out_speaks(claim: Claim, measured: Difference, decision: stats.Decision) -> stats.Decision:
    """A comparison of over-fitting gaps (or of falls, steadiness) speaks only where the run with
    the smaller value (by the measured means) does at least as well on held-out data: one that
    does worse may just under-fit or stall, and no number of seeds would tell them apart. A
    decided verdict then waits, and an undecided one says that more seeds would not decide it."""
    held = measured.held_out
    if held is None:
        return decision
    rule = f"{decision.rule}; {HELD_OUT_RULE}"
    gap = statistics.fmean(measured.a) - statistics.fmean(measured.b)
    if gap == 0:
        return replace(decision, rule=rule)
    side, smaller, other = (held.names[0], held.a, held.b) if gap < 0 else (held.names[1], held.b, held.a)
    check = stats.difference(smaller, other, measured.paired, ">=", 0.0, looks=measured.looks)
    if check.verdict != REFUTED:
        return replace(decision, rule=rule)
    worse = (f"{side}, the run with the smaller value, does worse on held-out data: {held.what}, "
             f"{side} minus the other, {check.detail}")
    why = ("the run with the smaller value does worse on held-out data, so it may be under-fitting "
           "or stalled rather than better: more seeds would not tell them apart")
    if decision.verdict == INCONCLUSIVE:
        return replace(decision, rule=rule, detail=f"{decision.detail}; and {worse}", seeds_needed=None,
                       undecidable=why)
    alone = f"{decision.verdict} on its own ({decision.detail}), but {worse}"
    return stats.Decision(INCONCLUSIVE, rule, alone, undecidable=why)


def _as_one_of_parts(claim: Claim, item: Any, decision: stats.Decision, parts: int) -> stats.Decision:
    """A part refutes an every-part claim only at Bonferroni's level over the parts: with each
    of k parts able to refute at 5%, a true claim would be refuted up to k x 5% of the time
    (holding needs every part, so it needs no correction). An undecided part asks for the seeds
    of the stricter level where they are more. Exact parts are not samples."""
    value = item.value if isinstance(item, Explained) else item
    if decision.verdict == HOLDS or parts == 1 or not hasattr(value, "looks"):
        return decision
    strict = decide(claim, replace(value, looks=value.looks * parts))
    if decision.verdict == INCONCLUSIVE:
        if decision.toward != REFUTED:  # heading for holding, which needs no correction
            return decision
        # heading for refutation, which takes the stricter level: its seeds, or none where that
        # level would not refute at any number (no longer heading anywhere)
        return replace(decision, seeds_needed=strict.seeds_needed, undecidable=strict.undecidable,
                       toward=REFUTED if strict.seeds_needed is not None else "")
    if strict.verdict == REFUTED:
        return decision
    level = f"{stats.confidence(value.looks * parts) * 100:.4g}%"
    return replace(strict, verdict=INCONCLUSIVE, rule=decision.rule,
                   detail=f"{decision.detail}: refuted at its own level, not at the {level} that one "
                          f"of {parts} parts needs to refute the claim (Bonferroni)")


def decide(claim: Claim, measured: Any) -> stats.Decision:
    """Judge a measurement of ``claim`` by the rule for its shape."""
    if isinstance(measured, Explained):
        measured = measured.value
    if isinstance(measured, (Seeds, Difference)) and _no_spread(measured):
        seeds = len(measured.values if isinstance(measured, Seeds) else measured.a)
        return stats.Decision(INCONCLUSIVE, "no spread: a count observed without variation",
                              f"{seeds} seeds", undecidable=NO_SPREAD)
    if isinstance(measured, Seeds):
        return _sample(claim, measured.values, measured.looks, measured.censored, measured.beyond_limit)
    if isinstance(measured, Difference):
        if claim.relation not in (">", ">=", "<", "<="):
            raise ValueError(f"claim {claim.id}: a comparison needs relation >, >=, < or <=, "
                             f"not {claim.relation!r}")
        if measured.log_ratio:  # a ratio of timings, judged on the log scale it was measured in
            if claim.claimed <= 0 or slack(claim, claim.claimed):
                raise ValueError(f"claim {claim.id}: a ratio of timings needs a positive claimed "
                                 "ratio and no tolerance")
            return replace(stats.difference(measured.a, measured.b, measured.paired, claim.relation,
                                            math.log(claim.claimed), looks=measured.looks),
                           unit="rounds of each timing")
        decision = stats.difference(measured.a, measured.b, measured.paired, claim.relation, claim.claimed,
                                    slack(claim, claim.claimed), candidates=measured.candidates,
                                    looks=measured.looks)
        return _held_out_speaks(claim, measured, decision)
    if isinstance(measured, AllOf):
        decisions = [decide(claim, item) for item in measured.items]
        if measured.mode == "all":
            decisions = [_as_one_of_parts(claim, item, d, len(decisions)) for item, d in
                         zip(measured.items, decisions, strict=True)]
        return _combine(decisions, measured.mode)
    if isinstance(measured, Ranking):
        return shares.ranking(measured.matrices, _cells(claim.claimed), measured.looks)
    if isinstance(measured, Picks):
        chosen = sum(p == claim.claimed for p in measured.picks)
        return shares.picks(chosen, len(measured.picks), measured.looks)
    ok = compare(claim, measured)
    return stats.Decision(HOLDS if ok else REFUTED, EXACT_RULE, "")


def evidence(measured: Any) -> tuple[str, ...]:
    """The files a measurement was read from, in order, once each."""
    if isinstance(measured, Explained):
        return tuple(dict.fromkeys(measured.files + evidence(measured.value)))
    if isinstance(measured, AllOf):
        return tuple(dict.fromkeys(f for item in measured.items for f in evidence(item)))
    return tuple(getattr(measured, "files", ()))


def show(value: Any) -> str:
    """A value as the report prints it: thousands separators, 6 significant digits, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, Explained):
        return show(value.value)
    if isinstance(value, Seeds):
        bound = ", lower bound" if value.lower_bound else ""
        if len(value.values) == 1:
            return f"{value.values[0]:.4g} (1 seed{bound})"
        return f"{value.mean:.4g} ± {value.std:.2g} ({len(value.values)} seeds{bound})"
    if isinstance(value, Difference):
        mean = sum(value.a) / len(value.a) - sum(value.b) / len(value.b)
        if value.log_ratio:
            return f"× {math.exp(mean):.4g} ({len(value.a)} and {len(value.b)} rounds)"
        return f"Δ {mean:+.4g} ({plural(len(value.a), 'seed')})"
    if isinstance(value, AllOf):
        return "; ".join(show(i) for i in value.items)
    if isinstance(value, Ranking):
        return ", ".join(f"{cell} ({n})" for cell, n in value.top(2))
    if isinstance(value, Picks):
        return ", ".join(f"{v} ({n} of {plural(len(value.picks), 'seed')})" for v, n in value.counts()[:2])
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def claimed_text(claim: Claim) -> str:
    if claim.relation == "in":
        return f"in [{show(claim.claimed[0])}, {show(claim.claimed[1])}]"
    prefix = "" if claim.relation == "==" else f"{claim.relation} "
    return prefix + show(claim.claimed)


def _tolerance_text(claim: Claim) -> str:
    parts = [f"±{show(v)}" if k == "abs" else f"±{v:.2%}" for k, v in claim.tolerance.items() if v]
    return f" (tolerance {' '.join(parts)})" if parts else ""


#: How much of a reason an expression's inputs may take; longer ones end in '…'.
ARITHMETIC_CHARS = 300


def _brief(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_brief(v) for v in value[:12])
        return f"[{shown}, … {len(value)} in all]" if len(value) > 12 else f"[{shown}]"
    return show(value)


def _arithmetic(spec: dict[str, Any]) -> str:
    """' = expr, where name = value, …' for an expression over measurements, each measured now."""
    if spec.get("statistic") != "expression" or not spec.get("refs"):
        return ""
    named = ", ".join(f"{name} = {_brief(v)}" for name, v in inputs(spec).items())
    text = f" = {spec['expr']}, where {named}"
    return text if len(text) <= ARITHMETIC_CHARS else text[:ARITHMETIC_CHARS - 1] + "…"


def next_look(measured: Any, additions: int = 1) -> Any:
    """``measured`` as the judgement after more seeds will see it: one look more for each result
    file that gains seeds (both sides of a comparison do)."""
    if isinstance(measured, Explained):
        return replace(measured, value=next_look(measured.value, additions))
    if isinstance(measured, AllOf):
        return replace(measured, items=tuple(next_look(item, additions) for item in measured.items))
    if isinstance(measured, (Seeds, Difference, Ranking, Picks)):
        return replace(measured, looks=measured.looks + additions)
    return measured


def _at_next_look(claim: Claim, measured: Any, decision: stats.Decision, files: int) -> stats.Decision:
    """An undecided verdict's seeds, counted for the judgement they would get: adding them is
    another look at the claim, made at a stricter level (``stats.confidence``), as
    ``claims.decide`` plans them."""
    if decision.verdict != INCONCLUSIVE or decision.seeds_needed is None or decision.first:
        return decision
    later = decide(claim, next_look(measured, max(files, 1)))
    if later.verdict != INCONCLUSIVE:
        return decision
    return replace(decision, seeds_needed=later.seeds_needed, undecidable=later.undecidable)


def judge(claim: Claim) -> Verdict:
    """Measure the claim and judge it by the rule for its shape."""
    try:
        measured = measure(claim.measure)
    except MeasureError as error:  # a claim file's mistake: say which file and which claim
        raise MeasureError(f"{claim.file or claim.source.id}, claim {claim.id!r}: {error}") from None
    except Pending as why:
        return Verdict(claim, PENDING, None, str(why), waits_for=why.waits_for)
    except Unmeasurable as why:
        return Verdict(claim, UNMEASURABLE, None, f"not measurable by this suite: {why}")
    files = evidence(measured)
    value = measured.value if isinstance(measured, Explained) else measured
    if isinstance(value, Seeds) and value.lower_bound and not (
            claim.relation in (">", ">=") and decide(claim, value).verdict == HOLDS):
        return Verdict(claim, PENDING, value, f"measured {value}: a capped run's best is a lower "
                       "bound that does not decide this claim; run the full recipe", evidence=files,
                       waits_for=f"retrain {Path(value.files[0]).stem}" if value.files else "retrain")
    try:
        decision = decide(claim, measured)
    except (TypeError, ValueError) as error:  # a claimed value the measurement cannot be compared with
        raise MeasureError(f"{claim.file or claim.source.id}, claim {claim.id!r}: cannot compare the "
                           f"measured {show(value)} with claimed {claimed_text(claim)}: {error}") from None
    decision = _at_next_look(claim, measured, decision, len(files))
    measured_text = show(value) if not isinstance(value, (Seeds, Difference, AllOf, Ranking, Picks)) \
        else str(value)
    reason = f"measured {measured_text}{_arithmetic(claim.measure)}; claimed {claimed_text(claim)}" \
             f"{_tolerance_text(claim)}"
    if decision.detail:
        reason += f"; {decision.detail}"
    if decision.needs:
        reason += f"; {decision.needs}"
    if isinstance(measured, Explained):
        reason += f". {measured.why}"
    if claim.note:
        reason += f". {claim.note}"
    return Verdict(claim, decision.verdict, value, reason, decision.rule, files)

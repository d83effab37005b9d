"""Verdicts: a claim's measurement compared with its claimed value, never written down."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

from claims.measures import Explained, Pending, measure
from claims.registry import Claim
from training.metrics import Seeds

HOLDS, REFUTED, PENDING = "holds", "refuted", "pending"


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    measured: Any
    reason: str

    @property
    def as_expected(self) -> bool:
        """Pending claims are not judged; the others must match the registry's expectation."""
        return self.verdict == PENDING or self.verdict == self.claim.expect


def _slack(claim: Claim, claimed: float) -> float:
    tol = claim.tolerance
    return tol.get("abs", 0.0) + tol.get("rel", 0.0) * abs(claimed)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def seeds_rule(claim: Claim) -> str:
    """How a claim is judged over several seeds: a figure ('==') holds when it lies in the
    seeds' range widened by the tolerance (the source ran one seed, which could be any of
    ours); a bound ('>', 'in', ...) holds when the seeds' mean satisfies it."""
    return claim.measure.get("seeds", "range" if claim.relation == "==" else "mean")


def _compare_seeds(claim: Claim, measured: Seeds) -> bool | None:
    """True/False, or None when a capped run's lower bound cannot decide."""
    rule = seeds_rule(claim)
    if rule == "range":
        low, high = min(measured.values), max(measured.values)
        slack = _slack(claim, claim.claimed)
        ok = low - slack - 1e-12 <= claim.claimed <= high + slack + 1e-12
    elif rule in ("mean", "all"):
        values = [measured.mean] if rule == "mean" else measured.values
        ok = all(compare(claim, v) for v in values)
    else:
        raise ValueError(f"claim {claim.id}: unknown seeds rule {rule!r}; valid: range, mean, all")
    if measured.lower_bound and not (ok and claim.relation in (">", ">=")):
        return None  # a maximum over a prefix only proves lower bounds
    return ok


def compare(claim: Claim, measured: Any) -> bool:
    """Does ``measured`` satisfy ``claimed`` under the claim's relation and tolerance?"""
    if isinstance(measured, Seeds):
        return bool(_compare_seeds(claim, measured))
    claimed, relation = claim.claimed, claim.relation
    if relation == "in":
        low, high = claimed
        return low - _slack(claim, low) <= measured <= high + _slack(claim, high)
    if relation != "==":
        ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
        return ops[relation](measured, claimed)
    if isinstance(claimed, bool) or isinstance(measured, bool):
        return type(claimed) is type(measured) and claimed == measured
    if _number(claimed) and _number(measured):
        return math.isclose(measured, claimed, rel_tol=0.0, abs_tol=_slack(claim, claimed) + 1e-12)
    if isinstance(claimed, list) and isinstance(measured, (list, tuple)):
        return list(measured) == claimed
    return measured == claimed


def show(value: Any) -> str:
    """A value as the report prints it: thousands separators, 6 significant digits, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, Seeds):
        bound = ", lower bound" if value.lower_bound else ""
        return f"{value.mean:.4g} ± {value.std:.2g} ({len(value.values)} seeds{bound})"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _tolerance_text(claim: Claim) -> str:
    parts = [f"±{show(v)}" if k == "abs" else f"±{v:.2%}" for k, v in claim.tolerance.items() if v]
    return f" (tolerance {' '.join(parts)})" if parts else ""


def judge(claim: Claim) -> Verdict:
    """Measure the claim and say whether it holds."""
    try:
        measured = measure(claim.measure)
    except Pending as why:
        return Verdict(claim, PENDING, None, str(why))
    explained = ""
    if isinstance(measured, Explained):
        measured, explained = measured.value, measured.why
    if isinstance(measured, Seeds) and _compare_seeds(claim, measured) is None:
        return Verdict(claim, PENDING, measured, f"measured {measured}: a capped run's best is a lower "
                       "bound that does not decide this claim; run the full recipe")
    ok = compare(claim, measured)
    relation = "" if claim.relation == "==" else f"{claim.relation} "
    reason = (f"measured {measured if isinstance(measured, Seeds) else show(measured)}; "
              f"claimed {relation}{show(claim.claimed)}"
              f"{_tolerance_text(claim)}")
    if isinstance(measured, Seeds):
        reason += f"; rule: {seeds_rule(claim)} of the seeds"
    if explained:
        reason += f". {explained}"
    if claim.note:
        reason += f". {claim.note}"
    return Verdict(claim, HOLDS if ok else REFUTED, measured, reason)

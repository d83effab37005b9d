"""More seeds where they decide: ``python -m claims train --until-decided MAX``.

A claim judged ``inconclusive`` says how many seeds would decide it at the observed mean and
spread. This plans, per recipe, the seeds to add (up to ``MAX`` in all), trains them through
the ordinary ``train`` command (its locks, checks and merging of new seeds into the result
file) and judges again. Claims that would need more than ``MAX`` are reported, not trained for. The seeds are
planned once and the claims judged once after them; that judgement is a second look at the
claim, made at Bonferroni's level over the looks (``training.metrics.looks``), and the seeds
are planned for that level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from claims.registry import Claim, registry
from claims.verdict import INCONCLUSIVE, decide, judge, next_look


@dataclass
class Step:
    """Seeds to add to one recipe's result, and the inconclusive claims they serve."""

    recipe: str
    have: list[int]
    want: int
    claims: list[str] = field(default_factory=list)

    @property
    def new_seeds(self) -> list[int]:
        start = max(self.have, default=-1) + 1
        return list(range(start, start + self.want - len(self.have)))


def _seeds_of(recipe: str) -> list[int]:
    from training import results

    path = results.path_for(recipe)
    return list(results.read(path).get("seeds") or []) if path.exists() else []


def plan(max_seeds: int, claims: Sequence[Claim] | None = None) -> tuple[list[Step], list[str]]:
    """The steps that could decide inconclusive training claims within ``max_seeds`` seeds per
    recipe, and a line for each claim that more seeds than that would not decide."""
    from training.run import needed_recipes

    steps: dict[str, Step] = {}
    beyond: list[str] = []
    for claim in claims if claims is not None else registry():
        if claim.measure.get("statistic") != "training":
            continue
        verdict = judge(claim)
        if verdict.verdict != INCONCLUSIVE:
            continue
        read = needed_recipes(claim.measure, dependencies=False)  # the files that gain seeds and a look
        decision = decide(claim, next_look(verdict.measured, len(read)))
        needed = decision.seeds_needed
        if needed is None or needed > max_seeds:
            beyond.append(f"{claim.id}: {decision.needs}")
            continue
        for recipe in read:
            have = _seeds_of(recipe)
            if len(have) >= needed:
                continue
            step = steps.setdefault(recipe, Step(recipe, have, len(have)))
            step.want = max(step.want, needed)
            step.claims.append(claim.id)
    return list(steps.values()), beyond


def run(max_seeds: int, train: Callable[[list[str]], int], extra: Sequence[str] = (),
        rounds: int = 1, claims: Sequence[Claim] | None = None) -> int:
    """Plan, train (``train`` is the CLI's entry point, given argv), judge again; ``extra``
    are train options passed along (device, time limit, results directory). One round by
    default: the seeds are planned once, at 80% power, and the claims judged once after them,
    because judging again after every batch of seeds and stopping when a verdict appears
    would raise the error rate above the stated 5% (optional stopping)."""
    for _ in range(rounds):
        steps, beyond = plan(max_seeds, claims)
        for line in beyond:
            print(f"not within {max_seeds} seeds: {line}")
        if not steps:
            print(f"nothing left that {max_seeds} seeds per recipe could decide")
            return 0
        for step in steps:
            seeds = step.new_seeds
            print(f"{step.recipe}: adding seeds {seeds[0]}-{seeds[-1]} to {len(step.have)} "
                  f"for {', '.join(step.claims)}")
            status = train([step.recipe, "--seeds", f"{seeds[0]}-{seeds[-1]}", *extra])
            if status != 0:
                return status
        served = {c for step in steps for c in step.claims}
        for claim in claims if claims is not None else registry():
            if claim.id in served:
                print(f"{claim.id}: {judge(claim).verdict}")
    return 0

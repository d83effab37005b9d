"""The plan of a budgeted GPU run (``claims.gpu``): the pending training claims and the
recipes they still need, in the order that decides the most claims per estimated second
(``training.estimate``), what fits the budget, and the plan as the command prints it.

Nothing here imports torch at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.estimate import Calibration, Device, Estimate

#: (expected, time box) seconds of each check; a check past its box is stopped and recorded.
TESTS_S, TESTS_BOX_S = 40.0, 90.0
BENCH_S, BENCH_BOX_S = 90.0, 150.0
#: Kept at the end for the plots, the verdicts and the bundle.
RESERVE_S = 20.0


# -- what is pending ----------------------------------------------------------------------------

def pending_training_claims() -> dict[str, list[str]]:
    """Pending claims whose statistic is ``training``, with the recipes each still needs
    (those without a full result file, dependencies first)."""
    from claims.registry import registry
    from claims.verdict import PENDING, judge
    from training.run import needed_recipes

    out: dict[str, list[str]] = {}
    for claim in registry():
        if claim.measure.get("statistic") == "training" and judge(claim).verdict == PENDING:
            out[claim.id] = [r for r in needed_recipes(claim.measure) if not has_full_result(r)]
    return out


def has_full_result(recipe: str, directory: Path | None = None) -> bool:
    """A result of the whole recipe on the whole dataset (not capped, not a subset)."""
    from training import metrics

    try:
        metrics.loader(directory)(recipe)
    except metrics.WantsRun:
        return False
    return True


def dataset_sizes(name: str) -> dict[str, int] | str:
    """The dataset's split sizes, or why they are not here (absent or damaged files)."""
    from training import datasets

    try:
        facts = datasets.facts(name)
    except datasets.DatasetError as error:
        return f"dataset {name} is not here ({type(error).__name__}): {datasets.fetch_command(name)}"
    return {k: v for k, v in facts.items() if k.endswith("_size")}


# -- the plan -------------------------------------------------------------------------------------

@dataclass
class Item:
    """One recipe of the plan."""

    recipe: str
    claims: list[str]  # pending claims that need it
    decides: list[str] = field(default_factory=list)  # claims decided once it is done (in order)
    estimate: Estimate | None = None
    blocked: str = ""  # why it cannot run here ('' if it can)
    depends: list[str] = field(default_factory=list)  # recipes whose best grid point it takes
    #: early stopping may end it long before the cap its estimate assumes
    may_stop_early: bool = False
    fits: bool = False
    start_s: float = 0.0  # estimated start within the training time, when it fits


@dataclass
class Plan:
    device: Device
    budget: float
    checks_s: float
    training_s: float  # what is left for training: budget - checks - reserve
    items: list[Item]  # runnable, in the order chosen
    blocked: list[Item]
    claims: dict[str, list[str]]  # pending claim -> the recipes it still needs
    seeds: int = 3

    def item(self, recipe: str) -> Item:
        return next(i for i in (*self.items, *self.blocked) if i.recipe == recipe)


def order(needs: dict[str, list[str]], seconds: dict[str, float]) -> list[tuple[str, list[str]]]:
    """Recipes in the order that decides the most claims per estimated second: at each turn,
    the claim whose missing recipes decide the most claims (its own and others') per second
    of them, those recipes in dependency order. Returns (recipe, claims it completes)."""
    done: list[str] = []
    out: list[tuple[str, list[str]]] = []
    while True:
        best: tuple[tuple, list[str]] | None = None
        for claim, recipes in sorted(needs.items()):
            todo = [r for r in recipes if r not in done]
            if not todo:
                continue
            cost = sum(seconds[r] for r in todo)
            after = {*done, *todo}
            gain = sum(1 for rs in needs.values() if rs and set(rs) <= after and not set(rs) <= set(done))
            key = (gain / max(cost, 1e-9), -cost, claim)
            if best is None or key > best[0]:
                best = (key, todo)
        if best is None:
            return out
        for recipe in best[1]:
            before = set(done)
            done.append(recipe)
            out.append((recipe, [c for c, rs in needs.items()
                                 if rs and set(rs) <= set(done) and not set(rs) <= before]))


def wants_cuda_session() -> bool:
    """Whether a run should time the CUDA benchmarks: while fewer sessions are committed than a
    timing claim needs (``claims.verdict.MIN_SESSIONS``)."""
    from claims.verdict import MIN_SESSIONS
    from training import bench_files as bench

    return len(bench.kept_sessions("cuda")) < MIN_SESSIONS


def make_plan(budget: float, device: Device, *, seeds: int = 3, checks_s: float | None = None,
              needs: dict[str, list[str]] | None = None,
              sizes: Callable[[str], dict[str, int] | str] = dataset_sizes,
              skip: Collection[str] = ()) -> Plan:
    """The plan for ``budget`` seconds on ``device``: what runs, in which order, and what
    fits (first fit in that order; a recipe whose dependency does not fit does not either).
    Recipes in ``skip`` are left out as if blocked (trained elsewhere, e.g. by a second
    process on the same GPU)."""
    from training import estimate as est
    from training.estimate import cached_recipe as get

    needs = pending_training_claims() if needs is None else needs
    if checks_s is None:
        checks_s = TESTS_S + (BENCH_S if wants_cuda_session() else 0.0)
    recipes = list(dict.fromkeys(r for rs in needs.values() for r in rs))
    items = {r: Item(r, [c for c, rs in needs.items() if r in rs]) for r in recipes}
    for recipe, item in items.items():
        found = "skipped (--skip)" if recipe in skip else sizes(get(recipe).dataset)
        if isinstance(found, str):
            item.blocked = found
        else:
            item.estimate = est.estimate(recipe, device, found, seeds)
    for item in items.values():  # a claim needing a blocked recipe is blocked as a whole
        if not item.blocked:
            stuck = [r for c in item.claims for r in needs[c] if items[r].blocked]
            if stuck and all(any(items[r].blocked for r in needs[c]) for c in item.claims):
                item.blocked = f"every claim it serves also needs {', '.join(dict.fromkeys(stuck))}"
    runnable = {c: rs for c, rs in needs.items() if rs and not any(items[r].blocked for r in rs)}
    seconds = {r: i.estimate.seconds for r, i in items.items() if i.estimate is not None}
    training_s = max(0.0, budget - checks_s - RESERVE_S)
    chosen: list[Item] = []
    used = 0.0
    for recipe, completes in order(runnable, seconds):
        item = items[recipe]
        item.decides = completes
        item.depends = list(get(recipe).best_of.values())
        item.may_stop_early = get(recipe).early_stopping_patience is not None and \
            item.estimate is not None and item.estimate.epochs_from == "cap"
        if all(items[d].fits for d in item.depends if d in items) and used + seconds[recipe] <= training_s:
            item.fits, item.start_s = True, used
            used += seconds[recipe]
        chosen.append(item)
    blocked = [i for i in items.values() if i not in chosen]
    for item in blocked:
        item.blocked = item.blocked or "no runnable claim needs it"
    return Plan(device, budget, checks_s, training_s, chosen, blocked, needs, seeds)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def format_plan(plan: Plan, calibration: Calibration | None = None) -> str:
    """The plan as the command prints it: assumptions, each recipe with its estimate and the
    claims it decides, what fits, what is left and its estimate."""
    scale = (lambda e: calibration.seconds(e)) if calibration else (lambda e: e.seconds)
    lines = [f"GPU plan for a budget of {_minutes(plan.budget)} on {plan.device.describe()}.",
             "Per step: the longest of compute (counted FLOPs), memory (counted bytes read and written) "
             "and launches (ops x host time per op); small CNNs are launch-bound, so the estimate is "
             "recalibrated from the first epochs timed on the device.",
             f"Checks first (CUDA tests, and benchmarks while fewer than two CUDA sessions are committed): "
             f"~{_minutes(plan.checks_s)}; {_minutes(RESERVE_S)} kept for plots and the bundle; "
             f"{_minutes(plan.training_s)} for training, {plan.seeds} seeds per recipe.",
             f"{len(plan.claims)} pending training claims; recipes in the order that decides the most "
             "claims per estimated second:", ""]
    fit_s, left_s, fit_claims = 0.0, 0.0, 0
    for number, item in enumerate(plan.items, 1):
        e = item.estimate
        assert e is not None
        seconds = scale(e)
        mark = "RUN " if item.fits else "LEFT"
        lines.append(f"{number:>2}. [{mark}] {e.line()}")
        if item.fits:
            fit_s += seconds
            fit_claims += len(item.decides)
        else:
            left_s += seconds
        if item.decides:
            lines.append(f"      decides {len(item.decides)}: {', '.join(item.decides)}")
    lines.append("")
    lines.append(f"Fits: {sum(i.fits for i in plan.items)} recipes, ~{_minutes(fit_s)}, deciding "
                 f"{fit_claims} claims. Left: {sum(not i.fits for i in plan.items)} recipes, "
                 f"~{_minutes(left_s)} more on this device"
                 f"{' (cap epochs are an upper bound: early stopping ends sooner)' if left_s else ''}.")
    for item in plan.blocked:
        many = "s" * (len(item.claims) != 1)
        lines.append(f"Cannot run here: {item.recipe} ({len(item.claims)} claim{many}): {item.blocked}")
    lines += _memory_bound_lines(plan)
    return "\n".join(lines)


def _memory_bound_lines(plan: Plan) -> list[str]:
    """The per-pixel Dense networks: bytes moved per step and the epoch time that the
    device's bandwidth alone allows."""
    from training.estimate import cached_recipe as get

    out = []
    for item in plan.items:
        e = item.estimate
        if e is None or get(item.recipe).model != "fashion_dense":
            continue
        if not out:
            out.append(f"Fashion per-pixel Dense networks, memory-bound floor at "
                       f"{plan.device.bandwidth / 1e12:.2f} TB/s (bytes moved per step / bandwidth):")
        out.append(f"  {item.recipe}: {e.step_bytes / 1e9:.2f} GB per step of {max(e.copies)} copies, "
                   f"{e.memory_bound_epoch_s:.2f} s per epoch at full bandwidth (estimate with the "
                   f"assumed fractions: {e.epoch_s:.2f} s, checkpoint {e.checkpoint_bytes / 1e6:.0f} MB "
                   "per epoch)")
    return out

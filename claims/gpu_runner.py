"""Running the plan of a budgeted GPU run (``claims.gpu``): its recipes trained in order
until the deadline, the estimates recalibrated from the epochs timed, and what became of
each recipe. The training and the clock are passed in, so the decisions can be tested
without a GPU.

Nothing here imports torch at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claims.gpu_plan import Item, Plan, _minutes, has_full_result

if TYPE_CHECKING:
    from training.estimate import Estimate

#: Epochs timed on the device before the first recipe is trusted to fit.
CALIBRATION_EPOCHS = 2


@dataclass
class Outcome:
    """What became of one recipe of the plan."""

    recipe: str
    status: str  # finished, stopped (the deadline), deferred (would not fit), tried (finished late)
    seconds: float = 0.0  # wall time spent on it here
    estimated_s: float = 0.0  # its estimate when it was decided, calibrated
    epochs: list[int] | None = None  # per stack group, where it trained
    note: str = ""


#: train(recipe, directory, deadline, stop_after) -> the result, or None when stopped
Train = Callable[[str, Path, float, "int | None"], "dict[str, Any] | None"]
#: progress(recipe, directory) -> (epochs done, seconds) of its first stack group's checkpoint
Progress = Callable[[str, Path], "tuple[int, float] | None"]


class Runner:
    """Trains the plan's recipes in order until ``deadline``, recalibrating its estimates
    from the epochs timed (``Calibration``); the training and the clock are passed in, so
    the decisions can be tested without a GPU."""

    def __init__(self, plan: Plan, directory: Path, train: Train, progress: Progress,
                 clock: Callable[[], float] = time.time, say: Callable[[str], None] = print,
                 done: Callable[[dict[str, Any]], None] = lambda result: None) -> None:
        from training.estimate import Calibration

        self.plan, self.directory, self.train, self.progress = plan, directory, train, progress
        self.clock, self.say, self.done = clock, say, done
        self.calibration = Calibration()
        self.outcomes: dict[str, Outcome] = {}

    def run(self, deadline: float) -> dict[str, Outcome]:
        for item in self.plan.items:
            if not self._step(item, deadline):
                break
        # what is left may still finish where early stopping ends it long before the cap
        for item in self.plan.items:
            outcome = self.outcomes.get(item.recipe)
            if (outcome is None or outcome.status == "deferred") and item.may_stop_early \
                    and self._ready(item) and self.clock() + self.first_epoch_s(item) < deadline:
                self._train(item, deadline, late=True)
        for item in self.plan.items:
            self.outcomes.setdefault(item.recipe, Outcome(item.recipe, "deferred",
                                                          estimated_s=self.left_s(item),
                                                          note="not reached before the deadline"))
        return self.outcomes

    def left_s(self, item: Item) -> float:
        assert item.estimate is not None
        return self.calibration.seconds(item.estimate)

    def first_epoch_s(self, item: Item) -> float:
        """The calibrated time to set the recipe up and train its first epoch: less than this
        left, starting it is waste (a run checks the deadline only after an epoch)."""
        e = item.estimate
        assert e is not None
        return (_setup(e) + e.epoch_s) * self.left_s(item) / e.seconds

    def _ready(self, item: Item) -> bool:
        return all(self.outcomes.get(d, Outcome(d, "")).status in ("finished", "tried")
                   or has_full_result(d, self.directory) for d in item.depends)

    def _step(self, item: Item, deadline: float) -> bool:
        """Train ``item`` if its calibrated estimate fits; False when the deadline stopped it."""
        estimate = self.left_s(item)
        left = deadline - self.clock()
        if not self._ready(item):
            self.outcomes[item.recipe] = Outcome(item.recipe, "deferred", estimated_s=estimate,
                                                 note="a recipe it takes options from did not finish")
            return True
        if estimate > left:
            why = f"estimate {_minutes(estimate)} > {_minutes(left)} left"
            self.outcomes[item.recipe] = Outcome(item.recipe, "deferred", estimated_s=estimate, note=why)
            self.say(f"{item.recipe}: deferred, {why}")
            return True
        return self._train(item, deadline, late=False)

    def _train(self, item: Item, deadline: float, *, late: bool) -> bool:
        """Train ``item``; one recipe's failure (out of memory, a CUDA error) is logged with its
        traceback and the run goes on: a borrowed GPU's minutes are not spent twice."""
        import traceback

        try:
            return self._attempt(item, deadline, late=late)
        except Exception as error:
            self.outcomes[item.recipe] = Outcome(item.recipe, "failed", estimated_s=self.left_s(item),
                                                 note=f"{type(error).__name__}: {error}"[:500])
            self.say(f"{item.recipe}: failed\n{traceback.format_exc()}")
            return True

    def _attempt(self, item: Item, deadline: float, *, late: bool) -> bool:
        name, e = item.recipe, item.estimate
        assert e is not None
        estimate, begun = self.left_s(item), self.clock()
        self.say(f"{name}: training{' (past its estimate: early stopping may end it)' if late else ''}, "
                 f"estimate {_minutes(estimate)}, {_minutes(deadline - begun)} left")
        if not self.calibration.measured and not late:
            result = self.train(name, self.directory, deadline, CALIBRATION_EPOCHS)
            timed = self.progress(name, self.directory) if result is None else None
            if timed is not None:
                epochs, wall = timed
                expected = epochs * e.group_epoch_s[0]
                self.calibration.add(name, wall, expected, e.bound)
                estimate = self.left_s(item)
                self.say(f"{name}: {epochs} epochs took {wall:.1f} s, estimated {expected:.1f} s: "
                         f"{e.bound}-bound estimates x{self.calibration.factor_for(e.bound):.2f}; this "
                         f"recipe now {_minutes(estimate)}")
                if estimate - wall > deadline - self.clock():
                    self.outcomes[name] = Outcome(name, "deferred", self.clock() - begun, estimate,
                                                  note="after calibration it no longer fits")
                    return True
        else:
            result = None
        if result is None:
            result = self.train(name, self.directory, deadline, None)
        spent = self.clock() - begun
        if result is None:
            timed = self.progress(name, self.directory)
            self.outcomes[name] = Outcome(name, "stopped", spent, estimate, note=(
                f"stopped by the deadline after {timed[0]} epochs of its first stack" if timed else
                "stopped by the deadline"))
            self.say(f"{name}: stopped by the deadline ({self.outcomes[name].note})")
            return False
        epochs = epochs_per_group(result, e)
        wall = float(result["provenance"].get("wall_s", spent))
        self.calibration.add(name, wall, e.seconds_for(epochs) - _setup(e), e.bound)
        self.outcomes[name] = Outcome(name, "tried" if late else "finished", spent, estimate, epochs)
        self.say(f"{name}: finished in {_minutes(spent)} (estimate {_minutes(estimate)}), epochs {epochs}; "
                 f"{e.bound}-bound estimates now x{self.calibration.factor_for(e.bound):.2f}")
        self.done(result)
        return True


def _setup(e: Estimate) -> float:
    from training.estimate import GROUP_SETUP_S, RECIPE_SETUP_S

    return RECIPE_SETUP_S + GROUP_SETUP_S * len(e.copies)


def epochs_per_group(result: dict[str, Any], e: Estimate) -> list[int]:
    """Epochs each stack group trained: the longest of its points (a stack trains until its
    last copy stops). Points come in plan order, the groups' points consecutive."""
    points, out, at = result["points"], [], 0
    seeds = max(1, len(result.get("seeds", [])))
    for copies in e.copies:
        size = max(1, copies // seeds)
        out.append(max((len(p["epochs"]) for p in points[at:at + size]), default=0))
        at += size
    return out

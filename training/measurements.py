"""What a metric returns: measurements the verdict can judge with a stated rule (``claims.stats``).

``Seeds`` (one value per seed), ``Difference`` (two runs' values, paired by seed where the
seeds match), ``AllOf`` (several such, every one must hold), ``Ranking`` (confusion counts
per seed), ``Picks`` (what each seed's run picks) or, with what a reader needs to weigh
it, ``Explained``. The metrics that build
them are in ``training.metrics``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np


def plural(count: int, word: str) -> str:
    """'1 seed', '2 seeds': a reason read aloud counts in words that agree."""
    return f"{count} {word}{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class Seeds:
    """One metric over the seeds of a run."""

    values: tuple[float, ...]
    files: tuple[str, ...] = ()
    #: The run was a prefix (capped epochs): a maximum over it is only a lower bound.
    lower_bound: bool = False
    #: How many times these seeds' verdict could have been judged: one, plus one for each time
    #: seeds were added to the result files it reads (see ``looks``).
    looks: int = 1
    #: Counts (epochs) that vary with the seed: seeds that agree exactly show no spread, which
    #: is not a spread of zero (the verdict waits for seeds that differ).
    discrete: bool = False
    #: Of such counts, the seeds at their ceiling (ran every epoch): the run's limit, not where
    #: it would have stopped, so the counts are skewed against it and no normal law fits them.
    censored: int = 0
    #: Those ceilings are beyond the run (a mark never reached, counted one past the limit):
    #: the true counts are at least them. Without it a ceiling is the count itself (epochs run,
    #: under the cap the source's own runs had).
    beyond_limit: bool = False

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        if len(self.values) == 1:
            text = f"{self.values[0]:.4g} from 1 seed (one run: no spread)"
        else:
            text = (f"mean {self.mean:.4g} ± {self.std:.2g} over {len(self.values)} seeds "
                    f"(min {min(self.values):.4g}, max {max(self.values):.4g})")
        if self.lower_bound:
            text += ", a lower bound (capped run)"
        if self.censored:
            text += (f", {self.censored} never reaching it within the run" if self.beyond_limit
                     else f", {self.censored} at the run's limit")
        return text + (f"; {', '.join(self.files)}" if self.files else "")


@dataclass(frozen=True)
class HeldOut:
    """Beside a comparison of over-fitting gaps, each run's held-out accuracy per seed (its last
    epoch's), aligned with the gaps. A smaller gap speaks of less over-fitting only where that
    run does at least as well on the held-out data: one that does worse may just fit both sets
    less (under-fitting), and its gap is small for that reason."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    what: str
    names: tuple[str, str] = ("the first run", "the second run")

    def __str__(self) -> str:
        return f"{self.what}: {_values(self.a)} against {_values(self.b)}"


@dataclass(frozen=True)
class Difference:
    """Two runs' per-seed values of one quantity; judged on the mean of ``a - b``."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    paired: bool
    what: str
    files: tuple[str, ...] = ()
    #: How many configurations the compared runs were picked among, on these same runs (the
    #: product of the grid sizes where a side is a grid's best point); the rule corrects for it.
    candidates: int = 1
    looks: int = 1  # as Seeds.looks
    discrete: bool = False  # as Seeds.discrete
    #: ``a`` and ``b`` are logarithms (of times per round): the claim's figure is the ratio
    #: exp(mean a - mean b), and its threshold is judged as a logarithm too.
    log_ratio: bool = False
    #: Where ``a`` and ``b`` are over-fitting gaps: the runs' held-out accuracies, which decide
    #: whether a smaller gap may be read as less over-fitting (``claims.verdict``).
    held_out: HeldOut | None = None

    def __str__(self) -> str:
        mean = statistics.fmean(self.a) - statistics.fmean(self.b)
        if self.log_ratio:
            return (f"{self.what}: ratio {math.exp(mean):.4g} of the geometric means "
                    f"({len(self.a)} against {len(self.b)} rounds, Welch on the log times)")
        pairing = "paired by seed" if self.paired else "unpaired"
        picked = f"; picked among {self.candidates} configurations" if self.candidates > 1 else ""
        held_out = f"; {self.held_out}" if self.held_out else ""
        return (f"{self.what}: mean difference {mean:.4g} ({pairing}; "
                f"{_values(self.a)} against {_values(self.b)}{picked}){held_out}")


@dataclass(frozen=True)
class AllOf:
    """Several measurements judged together. ``mode`` "all": each must satisfy the claim ("A
    beats B and C"); "agree": independent measurements of one quantity (benchmark sessions on
    different days) that decide the claim only where they all decide it alike; "any": the
    claim holds if one of them satisfies it and is refuted only if every one fails it ("not
    always worse": some step of a grid)."""

    items: tuple[Any, ...]
    mode: str = "all"

    def __post_init__(self) -> None:
        if self.mode not in ("all", "agree", "any"):
            raise ValueError(f"AllOf mode must be all, agree or any, got {self.mode!r}")

    def __str__(self) -> str:
        if self.mode == "agree":
            return "; ".join(f"session {i + 1}: {item}" for i, item in enumerate(self.items))
        return "; ".join(str(i) for i in self.items)


@dataclass(frozen=True)
class Ranking:
    """Confusion matrices per seed (seed, true, predicted): judged on the top-k errors."""

    matrices: tuple[tuple[tuple[int, ...], ...], ...]
    files: tuple[str, ...] = ()
    looks: int = 1  # as Seeds.looks

    def top(self, k: int) -> list[tuple[str, int]]:
        m = np.asarray(self.matrices).sum(0)
        np.fill_diagonal(m, -1)
        order = np.argsort(-m, axis=None, kind="stable")[:k]
        return [(f"{i // m.shape[1]}->{i % m.shape[1]}", int(m.flat[i])) for i in order]

    def __str__(self) -> str:
        top = ", ".join(f"{cell} ({n})" for cell, n in self.top(4))
        return f"most frequent errors summed over {plural(len(self.matrices), 'seed')}: {top}"


@dataclass(frozen=True)
class Picks:
    """What each seed's run picks (the knee of a grid, say), where the source picked from its
    one run: judged on the share of runs that pick the claimed value, the seeds being the
    independent runs."""

    picks: tuple[Any, ...]
    #: What is picked, and from which runs, for the report.
    what: str
    files: tuple[str, ...] = ()
    looks: int = 1  # as Seeds.looks

    def counts(self) -> list[tuple[Any, int]]:
        """Each value picked, most often first."""
        return Counter(self.picks).most_common()

    def __str__(self) -> str:
        shares = ", ".join(f"{v} by {n}" for v, n in self.counts())
        return f"{self.what}: {shares} of {plural(len(self.picks), 'seed')}"


@dataclass(frozen=True)
class Explained:
    """A measured value with what a reader needs to weigh it (which run, what else differs)."""

    value: Any
    why: str
    files: tuple[str, ...] = ()


def _values(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"

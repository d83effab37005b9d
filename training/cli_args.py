"""The command line's argument types: each refuses a bad value, as it is parsed, with a message
that says what is expected (``claims train``, ``claims gpu``, ``claims report --width``)."""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from typing import Any

MAX_SEEDS = 1000  # a run stacks its seeds in memory; more than this is a typo
SEED_END = 2**31  # seeds are below this


def positive_int(text: str) -> int:
    """A whole number, 1 or more (epochs, batch sizes, threads, steps)."""
    if not re.fullmatch(r"\s*\+?[0-9]{1,12}\s*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number 1 or more")
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0")
    return value


def seed_range(text: str) -> list[int]:
    """``7`` or ``0-9`` (both ends included): seeds 0 or more, below 2**31."""
    match = re.fullmatch(r"([0-9]{1,10})(?:-([0-9]{1,10}))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"seed {text!r}: give a whole number 0 or more, or a range "
                                         "such as 0-9")
    low = int(match[1])
    high = int(match[2]) if match[2] is not None else low
    if high < low:
        raise argparse.ArgumentTypeError(f"seed range {text}: it ends before it starts")
    if high >= SEED_END:
        raise argparse.ArgumentTypeError(f"seed {high} is too large: seeds are below {SEED_END}")
    if high - low + 1 > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"seed range {text} holds {high - low + 1} seeds, more than "
                                         f"{MAX_SEEDS}")
    return list(range(low, high + 1))


class SeedList(argparse.Action):
    """Joins the ``seed_range`` values into one list of distinct seeds."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        seeds = [seed for group in values for seed in group]
        repeated = sorted(seed for seed, count in Counter(seeds).items() if count > 1)
        if repeated:
            raise argparse.ArgumentError(self, f"seed{'s' * (len(repeated) > 1)} "
                                               f"{' '.join(map(str, repeated))} given more than once; "
                                               "each seed trains once")
        if len(seeds) > MAX_SEEDS:
            raise argparse.ArgumentError(self, f"{len(seeds)} seeds, more than {MAX_SEEDS}")
        setattr(namespace, self.dest, seeds)


def device_spec(text: str) -> str:
    """cpu, cuda or cuda:N (whether that device exists is checked when the command runs)."""
    if not re.fullmatch(r"cpu|cuda(:[0-9]{1,4})?", text):
        raise argparse.ArgumentTypeError(f"device {text!r}: use cpu, cuda or cuda:N")
    return text

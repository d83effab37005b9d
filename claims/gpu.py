"""``python -m claims gpu --budget SECONDS``: one budgeted run on a borrowed GPU.

A GPU comes rarely and briefly (docs/gpu.md), so one process does everything in order:
the CUDA-only checks (tests/test_gpu.py on the device, the CUDA benchmarks), then the
recipes of the pending training claims, cheapest claims first (most claims decided per
estimated second, ``training.estimate``), each recipe's seeds and grid points in one stack,
stopping before the budget ends and keeping what finished. What comes back is a few files
in DIR: results.tar.gz (result files, plots, benchmarks, laid out as in the repository),
gpu-run.json (the plan, what ran, the calibration), gpu.log and the checks' JUnit XML.

Nothing here imports torch at import time: ``python -m claims --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.estimate import Calibration, Device, Estimate

REPO = Path(__file__).resolve().parent.parent
#: pytest arguments of the CUDA-only checks: vmap against the loop, resumption and
#: per-copy Dropout streams, each on the device (skipped where there is no CUDA).
CHECK_TESTS = ["tests/test_gpu.py", "-m", "train", "-k", "cuda"]
#: pytest arguments of the CUDA benchmarks (torch.compile's cases left out: compiling takes
#: tens of seconds each), short rounds: ratios, not precision, are what the claims read.
CHECK_BENCH = ["tests/test_benchmarks.py", "-m", "benchmark", "-k", "not compiled", "--benchmark-enable",
               "--benchmark-max-time=0.05", "--benchmark-min-rounds=5", "--benchmark-warmup=on",
               "--benchmark-warmup-iterations=3"]
#: (expected, time box) seconds of each check; a check past its box is stopped and recorded.
TESTS_S, TESTS_BOX_S = 40.0, 90.0
BENCH_S, BENCH_BOX_S = 90.0, 150.0
#: Kept at the end for the plots, the verdicts and the bundle.
RESERVE_S = 20.0
#: Epochs timed on the device before the first recipe is trusted to fit.
CALIBRATION_EPOCHS = 2


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
    except (metrics.NotRun, metrics.CappedRun):
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


def make_plan(budget: float, device: Device, *, seeds: int = 3, checks_s: float | None = None,
              needs: dict[str, list[str]] | None = None,
              sizes: Callable[[str], dict[str, int] | str] = dataset_sizes) -> Plan:
    """The plan for ``budget`` seconds on ``device``: what runs, in which order, and what
    fits (first fit in that order; a recipe whose dependency does not fit does not either)."""
    from training import estimate as est
    from training.estimate import cached_recipe as get

    needs = pending_training_claims() if needs is None else needs
    if checks_s is None:
        from training import bench
        checks_s = TESTS_S + (0.0 if bench.benchmark_file("cuda").exists() else BENCH_S)
    recipes = list(dict.fromkeys(r for rs in needs.values() for r in rs))
    items = {r: Item(r, [c for c, rs in needs.items() if r in rs]) for r in recipes}
    for recipe, item in items.items():
        found = sizes(get(recipe).dataset)
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
             f"Checks first (CUDA tests, benchmarks where results/benchmarks-cuda.json is missing): "
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


# -- running it ------------------------------------------------------------------------------------

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
                self.calibration.add(name, wall, expected)
                estimate = self.left_s(item)
                self.say(f"{name}: {epochs} epochs took {wall:.1f} s, estimated {expected:.1f} s: estimates "
                         f"x{self.calibration.factor:.2f}; this recipe now {_minutes(estimate)}")
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
        self.calibration.add(name, wall, e.seconds_for(epochs) - _setup(e))
        self.outcomes[name] = Outcome(name, "tried" if late else "finished", spent, estimate, epochs)
        self.say(f"{name}: finished in {_minutes(spent)} (estimate {_minutes(estimate)}), epochs {epochs}; "
                 f"estimates now x{self.calibration.factor:.2f}")
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


# -- the command ------------------------------------------------------------------------------------

class Log:
    """Prints and keeps every line, and appends it to DIR/gpu.log at once (a killed run
    leaves its log)."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.lines = path, []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


@dataclass
class Check:
    name: str
    command: list[str]
    returncode: int | None  # None: stopped at its time box
    seconds: float
    tail: str


def run_check(name: str, args: list[str], box_s: float, log: Log, env: dict[str, str]) -> Check:
    """pytest in a subprocess (its own CUDA context, its crash not ours), stopped at ``box_s``."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    log(f"check {name}: {' '.join(command[1:])} (time box {_minutes(box_s)})")
    begun = time.time()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=box_s, env=env)
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as stopped:
        code = None
        text = (stopped.stdout or b"").decode(errors="replace") if isinstance(stopped.stdout, bytes) \
            else (stopped.stdout or "")
    seconds = time.time() - begun
    tail = "\n".join(text.strip().splitlines()[-15:])
    verdict = "stopped at its time box" if code is None else "passed" if code == 0 else f"failed ({code})"
    log(f"check {name}: {verdict} in {seconds:.0f} s\n" + "\n".join("    " + t for t in tail.splitlines()))
    return Check(name, command[1:], code, seconds, tail)


def _device_train(device: Any, seeds: list[int], max_epochs: int | None, limit: int | None) -> Train:
    from training.run import train_recipe

    def train(name: str, directory: Path, deadline: float, stop_after: int | None) -> dict[str, Any] | None:
        return train_recipe(name, seeds=seeds, device=device, directory=directory, progress=False,
                            deadline=deadline, stop_after=stop_after, max_epochs=max_epochs, limit=limit)
    return train


def checkpoint_progress(name: str, directory: Path) -> tuple[int, float] | None:
    """(epochs, seconds) of the recipe's first stack group's checkpoint, if it has one."""
    import torch

    from training import results

    state = results.load_checkpoint(results.checkpoint_path(name, 0, directory), torch.device("cpu"))
    if not state or "trainer" not in state:
        return None
    return int(state["trainer"]["epoch"]), float(state["wall_s"])


def _seed_workdir(work: Path) -> None:
    """The committed result files, so that recipes taking options from another's best grid
    point and comparison plots find them; they are not bundled back."""
    from training import results

    work.mkdir(parents=True, exist_ok=True)
    for path in results.results_dir().glob("*.json"):
        shutil.copy2(path, work / path.name)


def bundle(work: Path, out: Path, names: list[str]) -> Path:
    """results.tar.gz of ``names`` (paths under ``work``), laid out as results/... in the
    repository: ``tar -xzf results.tar.gz`` at the repository's root puts them in place."""
    target = out / "results.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for name in sorted(set(names)):
            tar.add(work / name, arcname=f"results/{name}")
    return target


def run(args: argparse.Namespace) -> int:
    from training import estimate as est

    started = time.time()
    cuda = _cuda_name()
    device = est.device_for(args.assume or cuda or "h200")
    plan = make_plan(args.budget, device, seeds=len(args.seeds))
    if args.dry_run:
        print(format_plan(plan))
        if not cuda:
            print("\n(dry run: nothing trained; no CUDA device here)")
        return 0
    if not cuda and not args.allow_cpu:
        print("error: no CUDA device here; --dry-run prints the plan", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("gpu.log", "gpu-run.json", "results.tar.gz", "cuda-checks.xml"):  # of an earlier run
        (out / stale).unlink(missing_ok=True)
    log = Log(out / "gpu.log")
    log(format_plan(plan))
    work = Path(tempfile.mkdtemp(prefix="claims-gpu-"))
    _seed_workdir(work)
    env = {**os.environ, "LEAN_CNN_RESULTS": str(work)}
    checks = [run_check("cuda tests", [*CHECK_TESTS, f"--junitxml={out / 'cuda-checks.xml'}"],
                        min(TESTS_BOX_S, args.budget / 4), log, env)]
    fresh: list[str] = []
    if not (REPO / "results" / "benchmarks-cuda.json").exists() and not args.no_benchmarks:
        saved = f"--benchmark-json={work / 'benchmarks-cuda.json'}"
        checks.append(run_check("cuda benchmarks", [*CHECK_BENCH, saved], min(BENCH_BOX_S, args.budget / 3),
                                log, env))
        if (work / "benchmarks-cuda.json").exists():
            fresh.append("benchmarks-cuda.json")
    import torch

    from claims import figures

    torch_device = torch.device("cuda" if cuda else "cpu")

    def drawn(result: dict[str, Any]) -> None:
        fresh.append(f"{result['recipe']}.json")
        for figure in figures.draw(result, work):
            fresh.append(str(figure.relative_to(work)))

    deadline = started + args.budget - RESERVE_S
    runner = Runner(plan, work, _device_train(torch_device, args.seeds, args.max_epochs, args.limit),
                    checkpoint_progress, say=log, done=drawn)
    outcomes = runner.run(deadline)
    os.environ["LEAN_CNN_RESULTS"] = str(work)
    decided = _verdicts(plan, log)
    if fresh:
        bundle(work, out, fresh)
    left = [o for o in outcomes.values() if o.status not in ("finished", "tried")]
    summary = {
        "budget_s": args.budget, "elapsed_s": round(time.time() - started, 1), "device": cuda or "cpu",
        "assumed": asdict(device), "calibration": runner.calibration.factor,
        "measured": runner.calibration.measured,
        "checks": [asdict(c) for c in checks],
        "plan": [{"recipe": i.recipe, "fits": i.fits, "estimate_s": round(i.estimate.seconds, 1),
                  "epochs": i.estimate.epochs, "epochs_from": i.estimate.epochs_from, "decides": i.decides}
                 for i in plan.items if i.estimate is not None],
        "blocked": {i.recipe: i.blocked for i in plan.blocked},
        "outcomes": [asdict(o) for o in outcomes.values()],
        "verdicts": decided, "bundled": sorted(set(fresh)),
    }
    (out / "gpu-run.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    log(f"\nDone in {_minutes(time.time() - started)} of {_minutes(args.budget)}: "
        f"{sum(o.status in ('finished', 'tried') for o in outcomes.values())} recipes trained, "
        f"{len(decided)} claims decided.")
    for o in left:
        log(f"Left: {o.recipe} ({o.status}{': ' + o.note if o.note else ''}), "
            f"~{_minutes(runner.left_s(plan.item(o.recipe)))} on this device after calibration")
    log(f"Files in {out}: {', '.join(sorted(p.name for p in out.iterdir()))}; to commit: "
        f"tar -xzf {out / 'results.tar.gz'} -C {REPO} && git add results")
    shutil.rmtree(work, ignore_errors=True)
    failed = any(o.status == "failed" for o in outcomes.values())
    return 0 if all(c.returncode == 0 for c in checks) and not failed else 1


def _verdicts(plan: Plan, log: Log) -> dict[str, str]:
    """The verdicts of the plan's claims, judged on the results of this run (and the committed ones)."""
    from claims.registry import registry
    from claims.verdict import PENDING, judge

    decided = {}
    wanted = set(plan.claims) | {c.id for c in registry() if c.measure.get("device") == "cuda"}
    for claim in registry():
        if claim.id in wanted:
            verdict = judge(claim)
            if verdict.verdict != PENDING:
                decided[claim.id] = verdict.verdict
                log(f"decided: {claim.id}: {verdict.verdict}: {verdict.reason[:160]}")
    return decided


def _cuda_name() -> str | None:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def add(sub: argparse._SubParsersAction) -> None:
    """The ``gpu`` subcommand."""
    from training import cli as training_cli

    gpu = sub.add_parser(
        "gpu", help="one budgeted run on a GPU: CUDA checks, then the pending training claims",
        description="Run the CUDA-only checks (tests/test_gpu.py on the device, the CUDA benchmarks "
                    "unless results/benchmarks-cuda.json exists), then train the recipes of the pending "
                    "training claims in the order that decides the most claims per estimated second, "
                    "stopping before --budget; write results.tar.gz, gpu-run.json and gpu.log into "
                    "--out. --dry-run prints the plan on any machine. See docs/gpu.md.")
    gpu.add_argument("--budget", type=training_cli.positive_seconds, required=True, metavar="SECONDS",
                     help="wall-clock seconds for the whole command")
    gpu.add_argument("--out", type=Path, default=Path("gpu-out"), metavar="DIR",
                     help="where the few files that come back are written (default: gpu-out)")
    gpu.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    gpu.add_argument("--assume", choices=("h100", "h200"),
                     help="the device the estimates assume (default: the CUDA device here, else h200)")
    gpu.add_argument("--seeds", type=training_cli.seed_range, nargs="+", action=training_cli.SeedList,
                     default=[0, 1, 2], metavar="S", help="seeds per recipe (default 0 1 2)")
    gpu.add_argument("--no-benchmarks", action="store_true", help="skip the CUDA benchmarks")
    gpu.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)  # machinery tests
    gpu.add_argument("--max-epochs", type=training_cli.positive_int, help=argparse.SUPPRESS)
    gpu.add_argument("--limit", type=training_cli.positive_int, help=argparse.SUPPRESS)
    gpu.set_defaults(run=run)

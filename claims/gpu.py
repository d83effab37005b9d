"""``python -m claims gpu --budget SECONDS``: one budgeted run on a borrowed GPU.

A GPU comes rarely and briefly (docs/gpu.md), so one process does everything in order:
the CUDA-only checks (tests/test_gpu.py on the device, the CUDA benchmarks), then the
recipes of the pending training claims, cheapest claims first (most claims decided per
estimated second, ``training.estimate``), each recipe's seeds and grid points in one stack,
stopping before the budget ends and keeping what finished. What comes back is a few files
in DIR: results.tar.gz (result files, plots, benchmarks, laid out as in the repository),
gpu-run.json (the plan, what ran, the calibration), gpu.log and the checks' JUnit XML.

Nothing here imports torch at import time: ``python -m claims --help`` stays fast.

The plan is made in ``claims.gpu_plan`` and run by ``claims.gpu_runner``; this module holds
the command: the checks, the work directory, the bundle and the summary. Every name stays
importable from it.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from claims.gpu_plan import (  # noqa: F401
    BENCH_BOX_S,
    BENCH_S,
    RESERVE_S,
    TESTS_BOX_S,
    TESTS_S,
    Item,
    Plan,
    _memory_bound_lines,
    _minutes,
    dataset_sizes,
    format_plan,
    has_full_result,
    make_plan,
    order,
    pending_training_claims,
    wants_cuda_session,
)
from claims.gpu_runner import (  # noqa: F401
    CALIBRATION_EPOCHS,
    Outcome,
    Progress,
    Runner,
    Train,
    _setup,
    epochs_per_group,
)

REPO = Path(__file__).resolve().parent.parent
#: pytest arguments of the CUDA-only checks: vmap against the loop, resumption and
#: per-copy Dropout streams, each on the device (skipped where there is no CUDA).
CHECK_TESTS = ["tests/test_gpu.py", "-m", "train", "-k", "cuda"]
#: pytest arguments of the CUDA benchmarks (torch.compile's cases left out: compiling takes
#: tens of seconds each), short rounds: ratios, not precision, are what the claims read.
CHECK_BENCH = ["tests/test_benchmarks.py", "-m", "benchmark", "-k", "not compiled", "--benchmark-enable",
               "--benchmark-max-time=0.05", "--benchmark-min-rounds=5", "--benchmark-warmup=on",
               "--benchmark-warmup-iterations=3"]


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


#: The budget --dry-run plans for where none is given: the device tool's 15 minutes in all.
DRY_RUN_BUDGET_S = 900.0


def run(args: argparse.Namespace) -> int:
    from training import estimate as est

    if args.budget is None:
        if not args.dry_run:
            raise ValueError("gpu: --budget SECONDS is required: the wall-clock seconds the whole run may "
                             "take (the device tool lends 600 s a command at most)")
        args.budget = DRY_RUN_BUDGET_S
    started = time.time()
    cuda = _cuda_name()
    device = est.device_for(args.assume or cuda or "h200")
    plan = make_plan(args.budget, device, seeds=len(args.seeds), skip=args.skip)
    planned = {i.recipe for i in (*plan.items, *plan.blocked)}
    for recipe in dict.fromkeys(args.skip):
        if recipe not in planned:
            print(f"note: --skip {recipe}: no pending claim needs it, so there was nothing to skip",
                  file=sys.stderr)
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
    if wants_cuda_session() and not args.no_benchmarks:
        from training import bench_files as bench

        latest = bench.benchmark_file("cuda")
        committed = latest.exists()
        target = work / latest.name
        target.unlink(missing_ok=True)  # the committed one, copied in above
        check = run_check("cuda benchmarks", [*CHECK_BENCH, f"--benchmark-json={target}"],
                          min(BENCH_BOX_S, args.budget / 3), log, env)
        checks.append(check)
        if check.returncode == 0 and target.exists():
            fresh.append(target.name)
            if committed:  # the latest session stays, under its date
                dated = bench.earlier_name(latest)
                shutil.copy2(latest, work / dated)
                fresh.append(dated)
        else:  # a stopped or failed run is no session: the verdicts read the committed ones
            target.unlink(missing_ok=True)
            if committed:
                shutil.copy2(latest, target)
            log("cuda benchmarks: no new session (the run did not pass); the committed sessions stand")
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


def _recipe_name(name: str) -> str:
    from training import recipes

    if name not in recipes.names():
        raise argparse.ArgumentTypeError(f"unknown recipe {name!r}; 'python -m claims recipes' lists them")
    return name


def _cuda_name() -> str | None:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def add(sub: argparse._SubParsersAction) -> None:
    """The ``gpu`` subcommand."""
    from training import cli as training_cli

    gpu = sub.add_parser(
        "gpu", help="one budgeted run on a GPU: CUDA checks, then the pending training claims",
        description="Run the CUDA-only checks (tests/test_gpu.py on the device, the CUDA benchmarks "
                    "while fewer than two CUDA sessions are committed), then train the recipes of the "
                    "pending training claims in the order that decides the most claims per estimated second, "
                    "stopping before --budget; write results.tar.gz, gpu-run.json and gpu.log into "
                    "--out. --dry-run prints the plan on any machine. See docs/gpu.md.")
    gpu.add_argument("--budget", type=training_cli.positive_seconds, metavar="SECONDS",
                     help=f"wall-clock seconds for the whole command (required, but for --dry-run: "
                          f"{DRY_RUN_BUDGET_S:g}, a lent device's 15 minutes)")
    gpu.add_argument("--out", type=Path, default=Path("gpu-out"), metavar="DIR",
                     help="where the few files that come back are written (default: gpu-out)")
    gpu.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    gpu.add_argument("--assume", choices=("h100", "h200"),
                     help="the device the estimates assume (default: the CUDA device here, else h200)")
    gpu.add_argument("--seeds", type=training_cli.seed_range, nargs="+", action=training_cli.SeedList,
                     default=[0, 1, 2], metavar="S", help="seeds per recipe (default 0 1 2)")
    gpu.add_argument("--no-benchmarks", action="store_true", help="skip the CUDA benchmarks")
    gpu.add_argument("--skip", nargs="+", default=[], metavar="RECIPE", type=_recipe_name,
                     help="leave these recipes out of the plan (trained elsewhere; not by a second "
                          "process on the same GPU, which takes turns with this one: docs/gpu.md)")
    gpu.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)  # machinery tests
    gpu.add_argument("--max-epochs", type=training_cli.positive_int, help=argparse.SUPPRESS)
    gpu.add_argument("--limit", type=training_cli.positive_int, help=argparse.SUPPRESS)
    gpu.set_defaults(run=run)

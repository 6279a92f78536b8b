"""`seqops` command line: one sub-command per pipeline stage (the commands dvc.yaml runs).

    seqops prepare | train | evaluate  [--params params.yaml]

A user error (bad params, bad data) prints one line naming the problem and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from seqops.errors import SeqopsError

STAGES = ("prepare", "train", "evaluate")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        module = importlib.import_module(f"seqops.stages.{stage}")
        doc = (module.__doc__ or "").strip().splitlines()[0]
        cmd = sub.add_parser(stage, help=doc, description=doc)
        cmd.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        module = importlib.import_module(f"seqops.stages.{args.command}")
        module.main(args.params)
    except SeqopsError as exc:
        print(f"seqops {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

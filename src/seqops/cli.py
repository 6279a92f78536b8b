"""`seqops` command line: one sub-command per pipeline stage (the commands dvc.yaml runs).

    seqops prepare | tune | train | evaluate  [--params params.yaml]
    seqops tune --workers N            # N trials side by side (default: tune.workers)
    seqops export | benchmark          # ONNX bundle + parity + int8; latency per runtime
    seqops release [--rollback]        # registry + gate verdict; or champion ← previous-champion
    seqops promote [--allow-rolled-back] [--dry-run]
                                       # champion ← the committed model, judged again now
    seqops predict --model models/ --input FILE [--output FILE]   # onnxruntime only
                                       # (classes, forecasts, or numbers per sequence)
    seqops generate --model models/ --prompt TEXT --max-tokens N [--temperature T]
                    [--top-k K] [--seed S]    # a language model's text, onnxruntime only
    seqops lineage models/model.onnx   # which commit, data, params, trial and run made it
    seqops preset sst2                 # params/sst2.yaml (only what differs) over params.yaml
    seqops --version                   # the installed package's version

A user error (bad params, bad data) prints one line naming the problem and exits with 2.
`seqops promote` refuses with one line on stderr and its own exit status:

    3  the gate, run again against today's champion with today's release params, failed
    4  models/model.onnx, models/preprocessing.json or a report the gate reads is not the
       file dvc.lock at HEAD records (or data/processed/ is not reports/data.json's data),
       or is stale: made under params params.yaml no longer holds (the line names the
       files); commit the pipeline's results, or `dvc checkout` the committed ones
    5  the version was rolled back (`seqops release --rollback`); --allow-rolled-back
       judges and promotes it again
    6  models/model.onnx is not the file the registered version (reports/release.json)
       records, or the registry's copy of it is not
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from seqops.errors import SeqopsError

_PARAMS_HELP = "params file (default: %(default)s)"

STAGES = ("prepare", "tune", "train", "evaluate", "export", "benchmark", "release")


def _first_doc_line(module: str) -> str:
    """A module docstring's first line, read from source: importing the stages would pull in
    torch, which `seqops predict` must not load."""
    spec = importlib.util.find_spec(module)
    source = Path(spec.origin).read_text() if spec and spec.origin else ""
    return next(iter((ast.get_docstring(ast.parse(source)) or "").splitlines()), "")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seqops")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqops", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        doc = _first_doc_line(f"seqops.stages.{stage}")
        cmd = sub.add_parser(stage, help=doc, description=doc)
        cmd.add_argument("--params", default="params.yaml", help=_PARAMS_HELP)
        if stage == "tune":
            cmd.add_argument(
                "--workers",
                type=int,
                default=None,
                help="trials trained side by side on this machine (default: tune.workers)",
            )
        if stage == "release":
            cmd.add_argument(
                "--rollback",
                action="store_true",
                help="move 'champion' back to the 'previous-champion' version and stop",
            )
    predict = sub.add_parser(
        "predict",
        help="class probabilities for raw sequences or texts, forecasts from a history, or "
        "one number per sequence (regression), from the ONNX bundle (no torch)",
        description=_first_doc_line("seqops.serving"),
    )
    predict.add_argument(
        "--model", type=Path, default=Path("models"), help="bundle directory (default: %(default)s)"
    )
    predict.add_argument(
        "--input",
        type=Path,
        required=True,
        help="long-format CSV, TSV, Parquet or JSON lines; text models: a text column, "
        "or a .txt file with one text per line; forecasting models: a history (time and "
        "value columns, optional id)",
    )
    predict.add_argument(
        "--output",
        type=Path,
        help="predictions file (csv/tsv/parquet/jsonl; default: CSV to stdout)",
    )
    generate = sub.add_parser(
        "generate",
        help="continue a prompt with a language model's exported step graph (no torch); the "
        "same seed writes the same text",
        description=_first_doc_line("seqops.tasks.language_modeling.generate"),
    )
    generate.add_argument(
        "--model", type=Path, default=Path("models"), help="bundle directory (default: %(default)s)"
    )
    generate.add_argument("--prompt", required=True, help="text to continue (in the vocabulary)")
    generate.add_argument("--max-tokens", type=int, required=True, help="tokens to write")
    generate.add_argument(
        "--temperature", type=float, default=1.0, help="> 0; lower is more conservative "
        "(default: %(default)s)"
    )  # fmt: skip
    generate.add_argument(
        "--top-k", type=int, default=None, help="draw among the K likeliest tokens (default: all)"
    )
    generate.add_argument(
        "--seed", type=int, default=0, help="sampling seed (default: %(default)s)"
    )
    promote = sub.add_parser(
        "promote",
        help="judge the committed model again against today's 'champion' and, if it passes, "
        "make it 'champion' (exit 3: gate failed, 4: not committed, 5: rolled back, "
        "6: not the registered file)",
        description=_first_doc_line("seqops.promotion"),
    )
    promote.add_argument("--params", default="params.yaml", help=_PARAMS_HELP)
    promote.add_argument(
        "--allow-rolled-back",
        action="store_true",
        help="promote a version `seqops release --rollback` demoted (judged again all the same)",
    )
    promote.add_argument(
        "--dry-run",
        action="store_true",
        help="judge only: the same refusals and exit codes, nothing recorded or moved",
    )
    traced = "trace an ONNX file to its registered version, commit, data, params, trial, run"
    lineage = sub.add_parser("lineage", help=traced, description=traced)
    lineage.add_argument("onnx_file", type=Path, help="e.g. models/model.onnx")
    lineage.add_argument("--params", default="params.yaml", help=_PARAMS_HELP)
    preset = sub.add_parser(
        "preset",
        help="merge a preset (params/NAME.yaml: only what differs) over params.yaml",
        description=_first_doc_line("seqops.presets"),
    )
    preset.add_argument("name", help="preset name, e.g. sst2 for params/sst2.yaml")
    preset.add_argument("--params", default="params.yaml", help=_PARAMS_HELP)
    preset.add_argument(
        "--presets", type=Path, default=Path("params"), help="presets folder (default: %(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in (*STAGES, "promote"):
        from seqops.credentials import tracked_dvc_secrets

        for warning in tracked_dvc_secrets(Path.cwd()):
            print(f"seqops {args.command}: warning: {warning}", file=sys.stderr)
    try:
        if args.command == "predict":
            from seqops.serving import predict_file

            predict_file(args.model, args.input, args.output)
            return 0
        if args.command == "generate":
            from seqops.tasks.language_modeling.generate import Sampling, generate

            sampling = Sampling(args.max_tokens, args.temperature, args.top_k, args.seed)
            print(generate(args.model, args.prompt, sampling))
            return 0
        if args.command == "preset":
            from seqops.presets import main as preset_main

            preset_main(args.name, args.params, args.presets)
            return 0
        if args.command == "lineage":
            import json

            from seqops.registry import lineage_main

            print(json.dumps(lineage_main(args.onnx_file, args.params), indent=2))
            return 0
        if args.command == "promote":
            from seqops.stages.release import promote_main

            promote_main(
                args.params, allow_rolled_back=args.allow_rolled_back, dry_run=args.dry_run
            )
            return 0
        module = importlib.import_module(f"seqops.stages.{args.command}")
        # Only tune and release take options beyond --params.
        extra: dict[str, object] = {}
        if args.command == "tune":
            extra["workers"] = args.workers
        elif args.command == "release":
            extra["rollback_"] = args.rollback
        module.main(args.params, **extra)
    except SeqopsError as exc:
        print(f"seqops {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

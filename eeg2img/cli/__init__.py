"""The ``eeg2img`` command line: one parser, every subcommand (the top floor; nothing imports it).

``data``, ``splits``, ``run``, ``kit`` and ``submit`` live here; ``evaluate``, ``report`` and ``demo`` in their own modules
of this package. Every problem with the user's input ends as one line on stderr (``eeg2img: error: ...``) and exit
code 2, with no traceback and nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eeg2img.errors import UserError

PROG = "eeg2img"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line, exit 2
        raise UserError(f"{self.prog}: {message}")


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


SYNTH_FORMATS = ("cvpr40", "things-eeg2")
# (flag, the format it belongs to, its default there, what it means): an option of the other format is refused.
SYNTH_FORMAT_OPTIONS = (
    ("--classes", "cvpr40", 40, ""),
    ("--images-per-class", "cvpr40", 50, ""),
    ("--block-drift", "cvpr40", 0.0, "strength of the block-design confound (0 = off)"),
    ("--n-channels", "cvpr40", 128, ""),
    ("--n-samples", "cvpr40", 500, "samples per segment before the 20:460 window"),
    ("--train-concepts", "things-eeg2", 60, "concepts of the training partition"),
    ("--test-concepts", "things-eeg2", 20, "concepts of the test partition, none of them in training"),
    ("--images-per-concept", "things-eeg2", 10, "images per training concept (the release: 10)"),
    ("--train-repetitions", "things-eeg2", 4, "repetitions of each training image (the release: 4)"),
    ("--test-repetitions", "things-eeg2", 80, "repetitions of each test image (the release: 80)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="eeg2img-bench: benchmark EEG-to-image reconstruction.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="create or inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    synth = data_sub.add_parser("synth", help="write a synthetic ground-truth dataset (EEG-CVPR40 or THINGS-EEG2 format)")
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--format", choices=SYNTH_FORMATS, default="cvpr40",
                       help="cvpr40: one .pth of 500-sample trials (default); things-eeg2: the preprocessed "
                            "release's sub-XX/*.npy and image folders, for the zero-shot track")
    synth.add_argument("--subjects", type=_positive, default=None, help="default: 6 (cvpr40), 3 (things-eeg2)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--image-size", type=_positive, default=64)
    synth.add_argument("--signal-strength", type=float, default=1.0, help="scale of the stimulus-driven EEG signal")
    synth.add_argument("--subject-variability", type=float, default=1.0,
                       help="how far each subject departs from the shared forward model (0: identical subjects)")
    synth.add_argument("--no-progress", action="store_true")
    for flag, kind, default, help_text in SYNTH_FORMAT_OPTIONS:
        synth.add_argument(flag, type=_positive if flag != "--block-drift" else float, default=None,
                           help=f"{kind} only; default {default}" + (f": {help_text}" if help_text else ""))
    info = data_sub.add_parser("info", help="summarise an EEG-CVPR40 .pth or a THINGS-EEG2 folder")
    info.add_argument("path", type=Path)
    info.add_argument("--json", action="store_true")

    splits = sub.add_parser("splits", help="show the folds of an evaluation protocol")
    splits.add_argument("--dataset", required=True, type=Path)
    splits.add_argument("--protocol", required=True, help="per-subject | loso | pooled | official | zero-shot | zero-shot-loso")
    splits.add_argument("--seed", type=int, default=0)
    splits.add_argument("--subjects", type=lambda s: [int(x) for x in s.split(",")], default=None, help="e.g. 1,2,3")
    splits.add_argument("--allow-test-images-in-train", action="store_true", help="loso: let other subjects' EEG for the test images train")
    splits.add_argument("--split-file", type=Path, default=None, help="official: the split file (default: next to the dataset)")
    splits.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="run the experiment grid of a TOML config")
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--out", type=Path, default=None, help="runs directory (default: runs_dir of the config, else ./runs)")
    run.add_argument("--executor", choices=("inline", "process", "ray"), default=None)
    run.add_argument("--address", default=None,
                     help='--executor ray: the cluster to join ("auto", "ray://host:port"); default: start a local one')
    run.add_argument("--workers", type=_positive, default=None)
    run.add_argument("--prune", action="store_true",
                     help="first delete the cells of the runs directory that this config does not refer to")

    kit = sub.add_parser("kit", help="the submission kit of a config's benchmark, for an outside lab")
    kit.add_argument("--config", required=True, type=Path)
    kit.add_argument("--out", required=True, type=Path, help="the kit folder (a new one, or a kit to replace)")
    kit.add_argument("--no-progress", action="store_true")

    submit = sub.add_parser("submit", help="validate an outside lab's submission and score it into a run store")
    submit.add_argument("submission", type=Path, help="the folder holding submission.toml")
    submit.add_argument("--runs", required=True, type=Path, help="the run store of the benchmark it was made for")
    submit.add_argument("--no-progress", action="store_true")

    from eeg2img.cli import evaluate as evaluate_cli
    from eeg2img.cli import report as report_cli

    evaluate_cli.add_arguments(sub.add_parser("evaluate", help="evaluate a folder of reconstructions against the stimuli"))

    report = sub.add_parser("report", help="the leaderboard report of a runs directory ([runs] RUNS_DIR), or the "
                                           "benchmark latency history (latency)")
    report_sub = report.add_subparsers(dest="report_command", required=True, parser_class=_Parser)
    report_cli.add_report_arguments(report_sub.add_parser("runs", help="the leaderboard report of a runs directory"))
    report_cli.add_latency_arguments(report_sub.add_parser("latency", help="the pytest-benchmark latency history"))

    demo = sub.add_parser("demo", help="synthetic data → every method → metrics → results table and report")
    demo.add_argument("--out", type=Path, default=Path("demo-out"))
    demo.add_argument("--quick", action="store_true", help="fewer subjects, classes and steps (≈2 minutes)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--track", choices=("reconstruction", "things"), default="reconstruction",
                      help="reconstruction: EEG-CVPR40-format set, every reconstruction method (default); things: "
                           "the THINGS-EEG2 zero-shot track (synthetic set, embedding methods, retrieval metrics)")
    return parser


REPORT_COMMANDS = ("runs", "latency")


def _with_default_report_command(argv: list[str]) -> list[str]:
    """``report RUNS_DIR ...`` means ``report runs RUNS_DIR ...`` (the form every guide uses)."""
    if len(argv) > 1 and argv[0] == "report" and argv[1] not in (*REPORT_COMMANDS, "-h", "--help"):
        return [argv[0], "runs", *argv[1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(_with_default_report_command(argv))
        return int(_dispatch(args) or 0)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # an operating-system problem with a path the user gave: one line, exit 2
        from eeg2img.errors import path_error

        print(f"{PROG}: error: {path_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _synth(args) -> int:
    chosen = {}
    for flag, kind, default, _ in SYNTH_FORMAT_OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if kind != args.format:
            if value is not None:
                raise UserError(f"{flag} is a {kind} option; drop it, or pass --format {kind}")
            continue
        chosen[flag[2:].replace("-", "_")] = default if value is None else value
    common = dict(seed=args.seed, image_size=args.image_size, signal_strength=args.signal_strength,
                  subject_variability=args.subject_variability, progress=not args.no_progress)
    if args.format == "things-eeg2":
        from eeg2img.datasets.synthetic_things import generate_things_eeg2

        path = generate_things_eeg2(args.out, subjects=args.subjects or 3, **chosen, **common)
    else:
        from eeg2img.datasets.synthetic import generate_synthetic

        path = generate_synthetic(args.out, subjects=args.subjects or 6, **chosen, **common)
    print(path)
    return 0


def _dispatch(args) -> int:
    if args.command == "data" and args.data_command == "synth":
        return _synth(args)
    if args.command == "data" and args.data_command == "info":
        from eeg2img.datasets import load_dataset

        summary = load_dataset(args.path).summary()
        if args.json:
            print(json.dumps(summary))
        else:
            rows = _flat_rows(summary)
            width = max(map(len, rows))
            for k, v in rows.items():
                print(f"{k:<{width}}  {v}")
        return 0
    if args.command == "splits":
        return _splits(args)
    if args.command == "run":
        return _run(args)
    if args.command == "kit":
        from eeg2img.grid.config import load_config
        from eeg2img.grid.kit import write_kit

        print(write_kit(load_config(args.config), args.out, progress=not args.no_progress))
        return 0
    if args.command == "submit":
        from eeg2img.grid.submission import submit

        keys = submit(args.submission, args.runs, progress=not args.no_progress)
        print(f"{keys[0].method}: {len(keys)} fold(s) scored into {args.runs}")
        return 0
    if args.command == "evaluate":
        from eeg2img.cli.evaluate import run as run_evaluate

        return run_evaluate(args)
    if args.command == "report":
        from eeg2img.cli.report import run_latency, run_report

        return (run_latency if args.report_command == "latency" else run_report)(args)
    if args.command == "demo":
        from eeg2img.cli.demo import run_demo

        return run_demo(args.out, quick=args.quick, seed=args.seed, track=args.track)
    raise UserError(f"unknown command {args.command}")


def _flat_rows(record: dict, prefix: str = "") -> dict:
    """``data info``'s text rows: nested records (the loader's provenance, e.g. segments dropped by reason)
    one dotted key a line, so every count is on a line of its own."""
    rows = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.update(_flat_rows(value, f"{name}." if key != "provenance" else ""))
        else:
            rows[name] = value
    return rows


def _splits(args) -> int:
    from eeg2img.datasets import load_dataset
    from eeg2img.splits import make_folds

    dataset = load_dataset(args.dataset)
    folds = make_folds(
        dataset, args.protocol, args.seed, subjects=args.subjects,
        allow_test_images_in_train=args.allow_test_images_in_train, split_file=args.split_file,
    )
    if args.json:
        print(json.dumps({"protocol": args.protocol, "folds": [f.to_json() for f in folds]}))
        return 0
    print(f"{args.protocol}: {len(folds)} fold(s) of {dataset.name} ({len(dataset)} trials)")
    for f in folds:
        print(f"  {f.name:<12} train {len(f.train):>6}  val {len(f.val):>5}  test {len(f.test):>5}  {f.fingerprint[:16]}")
    return 0


def _run(args) -> int:
    from eeg2img.grid.config import load_config
    from eeg2img.grid.runner import make_executor, run_grid

    config = load_config(args.config)
    runs_dir = args.out or (Path(config.runs_dir) if config.runs_dir else Path("runs"))
    name = args.executor or config.executor
    if args.address and name != "ray":
        raise UserError("--address is for --executor ray (the Ray cluster to join); add --executor ray or drop it")
    executor = make_executor(name, args.workers or config.workers, args.address or config.address)
    table = run_grid(config, runs_dir, executor=executor, prune_others=args.prune)
    print(f"{len(table)} result rows → {runs_dir / 'results.csv'}")
    return 0


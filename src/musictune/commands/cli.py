"""`musictune` command line: train, demo-data, sweep, lab, report, extract, export, predict.

    musictune train --model lstm --features mel --epochs 2
    musictune demo-data --out demo --size tiny
    musictune sweep lstm_spectrogram --samples 100
    musictune lab --budget quick
    musictune report --storage results --sweep lstm_spectrogram-20261126-120501
    musictune extract ~/music/genres data/mine --jobs 4
    musictune export results/lstm_spectrogram --out models/genre
    musictune predict models/genre song.mp3 ~/music/new --csv predictions.csv

Bad input ends in one line on stderr naming the problem and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from musictune.atomic import ensure_writable
from musictune.commands.report import add_report_parser
from musictune.commands.train import WRITABLE_FIX, add_train_parser
from musictune.errors import EXIT_USAGE, UserError
from musictune.options import ArgumentParser, add_options, from_args, positive_int, run_main
from musictune.serving.export import add_export_parser
from musictune.serving.predict import add_predict_parser

INTERRUPTED = "no half-written file was left; run it again"

# --------------------------------------------------------------------------- demo-data


def add_demo_parser(sub) -> None:
    p = sub.add_parser("demo-data", help="generate the synthetic demo data set")
    p.add_argument(
        "--out",
        type=Path,
        help="target folder (default: the user cache, used "
        "by every command when no data directory is given)",
    )
    p.add_argument("--size", choices=["tiny", "small"], default="small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    from musictune.data.demo import ensure_demo, generate_demo

    if args.out is None:
        path = ensure_demo(args.size, seed=args.seed)
    else:
        ensure_writable(args.out.parent, "--out: the parent folder", WRITABLE_FIX)
        path = generate_demo(args.out, args.size, seed=args.seed)
    print(f"demo data ({args.size}) at {path}")


# --------------------------------------------------------------------------- sweep


def add_sweep_parser(sub) -> None:
    sweep_arguments(sub.add_parser("sweep", help="run a Ray Tune sweep of a preset"))


def sweep_arguments(parser: ArgumentParser, preset: str | None = None) -> None:
    """The sweep's options on `parser`; with `preset` (a preset script's) that one is fixed."""
    from musictune.tuning.options import SweepOptions

    add_options(parser, SweepOptions, skip=("preset",) if preset else ())
    parser.set_defaults(handler=run_sweep_command, **({"preset": preset} if preset else {}))


def sweep_options_from_args(args: argparse.Namespace):
    """The SweepOptions of a parsed `sweep` command line. argparse checked each value's type;
    the checks of the options together run once, when the sweep plans itself (`make_plan`)."""
    from musictune.tuning.options import SweepOptions

    return from_args(SweepOptions, args, check=False)


def run_sweep_command(args: argparse.Namespace) -> None:
    from musictune.tuning.runner import run_sweep

    run_sweep(sweep_options_from_args(args))


def preset_parser(preset: str) -> ArgumentParser:
    from musictune.tuning.presets import PRESETS

    spec = PRESETS[preset]  # a sweeps/ script names its own preset
    description = f"{spec.doc} ({spec.summary}): `musictune sweep {preset}` under another name."
    parser = ArgumentParser(prog=f"python sweeps/{preset}.py", description=description)
    sweep_arguments(parser, preset)
    return parser


def sweep_main(preset: str) -> None:
    """Entry point of `sweeps/<preset>.py`: `musictune sweep <preset>` under the script's own
    name, so that its usage, --help and errors name what the user typed."""
    sys.exit(run_command(f"python sweeps/{preset}.py", lambda: preset_parser(preset), sys.argv[1:]))


# --------------------------------------------------------------------------- extract


def add_extract_parser(sub) -> None:
    p = sub.add_parser(
        "extract", help="turn a folder of audio (genre subfolders or a CSV) into the data layout"
    )
    p.add_argument("audio_root", type=Path, metavar="AUDIO_ROOT", help="one subfolder per genre")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="new folder, or one to resume")
    p.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="columns path,genre[,valence,energy,danceability]; paths relative to its folder",
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.15, metavar="F", help="share of files for test"
    )
    p.add_argument(
        "--jobs", type=positive_int, metavar="N", help="parallel processes (default: all cores)"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="the middle SECONDS of each file, all of it when shorter (default %(default)g: "
        "whole songs; 30: clips like the course's; 0: whole files however long)",
    )
    p.add_argument(
        "--mapping", type=Path, metavar="FILE", help='JSON {"genre": "class" or null} to fold'
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    p.set_defaults(handler=run_extract)


def run_extract(args: argparse.Namespace) -> None:
    from musictune.audio.extract import extract

    s = extract(
        args.audio_root,
        args.out_dir,
        csv=args.csv,
        test_fraction=args.test_fraction,
        jobs=args.jobs,
        duration=args.duration,
        mapping=args.mapping,
        seed=args.seed,
    )
    if s.failed:
        print(f"skipped {len(s.failed)} file(s) that could not be used:", file=sys.stderr)
        for key, reason in s.failed:
            print(f"  {key}: {reason}", file=sys.stderr)
    for note in s.notes:
        print(f"note: {note}")
    genres = ", ".join(f"{g} {n}" for g, n in s.genres.items())
    print(
        f"{s.tracks} files in {s.out_dir} ({s.extracted} extracted now, {s.skipped} already "
        f"done): {s.splits.get('train', 0)} train / {s.splits.get('test', 0)} test; {genres}"
    )
    print(f"layouts: {', '.join(s.layouts)}; train on it: musictune train --data-dir {s.out_dir}")


# --------------------------------------------------------------------------- lab


def add_lab_parser(sub) -> None:
    from musictune.commands.lab import LabOptions

    p = sub.add_parser("lab", help="the course lab's whole plan: every sweep, then one report")
    add_options(p, LabOptions)
    p.set_defaults(handler=run_lab_command)


def run_lab_command(args: argparse.Namespace) -> None:
    from musictune.commands.lab import LabOptions, run_lab

    run_lab(from_args(LabOptions, args))


# --------------------------------------------------------------------------- main

SUBCOMMANDS = [
    add_train_parser,
    add_demo_parser,
    add_sweep_parser,
    add_lab_parser,
    add_report_parser,
    add_extract_parser,
    add_export_parser,
    add_predict_parser,
]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="musictune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def package_version() -> str:
    """The installed distribution's version (what pip reports), else the source tree's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("musictune")
    except PackageNotFoundError:
        from musictune import __version__

        return __version__


def subcommands(parser: ArgumentParser) -> dict[str, ArgumentParser]:
    """Name -> parser of each subcommand (argparse keeps them only on its subparsers action)."""
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def run_command(prog: str, build: Callable[[], ArgumentParser], argv: Sequence[str] | None) -> int:
    """Build the parser, parse `argv`, run its handler: `musictune` and the preset scripts alike."""
    try:
        parser = build()  # the model choices may import $MUSICTUNE_MODELS
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args, unknown = parser.parse_known_args(argv)
    # A subcommand's own parser names it in errors and its --help lists its options.
    command = subcommands(parser)[args.command] if "command" in args else parser
    if unknown:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    return run_main(command.prog, args.handler, args, getattr(args, "interrupted", INTERRUPTED))


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("musictune", build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())

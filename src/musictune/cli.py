"""`musictune` command line: train, demo-data, sweep, extract.

    musictune train --model lstm --features mel --epochs 2
    musictune demo-data --out demo --size tiny
    musictune sweep lstm_spectrogram --samples 100
    musictune extract ~/music/genres data/mine --jobs 4

Bad input ends in one line on stderr naming the problem and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from musictune.atomic import ensure_writable
from musictune.errors import EXIT_USAGE, UserError

WRITABLE_FIX = "choose a folder you can write"

if TYPE_CHECKING:
    from musictune.training import TrainState


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and still exits 2), and that takes no
    abbreviations: a typo such as `--sample 3` is an error, not silently `--samples 3`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help="data in the patreco3 layout (default: $MUSICTUNE_DATA, else the demo data set)",
    )
    p.add_argument("--features", choices=["mel", "chroma", "fused"], default="mel")
    p.add_argument("--beat", action="store_true", help="beat-synced clips instead of full length")
    p.add_argument("--task", choices=["genre", "regression", "multitask"], default="genre")
    p.add_argument(
        "--target",
        choices=["valence", "energy", "danceability"],
        help="affect target for --task regression",
    )


# --------------------------------------------------------------------------- train


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one configuration without Ray")
    p.add_argument("--model", default="lstm", help="model name (lstm, cnn)")
    add_data_args(p)
    p.add_argument("--epochs", type=positive_int, default=20, help="maximum epochs")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--dropout", type=fraction, default=0.2)
    p.add_argument("--layers", type=positive_int, default=1, help="LSTM layers")
    p.add_argument("--hidden", type=positive_int, default=64, help="LSTM hidden size")
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--conv-blocks", type=positive_int, default=4, help="CNN conv blocks (1-4)")
    p.add_argument("--patience", type=non_negative_int, default=10, help="0 disables")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--overfit",
        type=non_negative_int,
        default=0,
        metavar="BATCHES",
        help="sanity check: train on this many fixed batches until the loss is ~0",
    )
    p.add_argument("--checkpoint-dir", type=Path, help="write best.pt and last.pt here")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint file")
    p.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> dict | None:
    """Train one configuration, then test its best epoch's weights (returned for callers)."""
    from musictune.data import load_task
    from musictune.metrics import PRIMARY_METRIC
    from musictune.models import list_models, model_kwargs
    from musictune.training import TrainConfig, build_model, evaluate, fit, load_checkpoint

    if args.model not in list_models():
        raise UserError(f"unknown model {args.model!r}: choose one of {', '.join(list_models())}")
    if args.task == "regression" and not args.target:
        raise UserError("--task regression needs --target valence|energy|danceability")
    config = TrainConfig(
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        overfit_batches=args.overfit,
    )
    if args.overfit:
        config.patience = 0
    if args.checkpoint_dir:
        ensure_writable(args.checkpoint_dir, "--checkpoint-dir", WRITABLE_FIX)
    resume = load_checkpoint(args.resume) if args.resume else None
    data = load_task(args.task, args.data_dir, args.features, args.beat, args.target)
    print(
        f"data: {data.task} {data.features}{' beat-synced' if data.beat else ''}: "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test clips, "
        f"{data.n_features} features"
    )
    options = {
        "hidden_size": args.hidden,
        "num_layers": args.layers,
        "dropout": args.dropout,
        "bidirectional": args.bidirectional,
        "conv_blocks": args.conv_blocks,
    }
    model = build_model(data, args.model, seed=args.seed, **model_kwargs(args.model, options))
    started = time.perf_counter()

    def show(metrics: dict, state, model, optimizer) -> None:
        shown = "  ".join(
            f"{k} {v:.4f}"
            for k, v in metrics.items()
            if k.startswith(("train_loss", "val_")) and isinstance(v, float)
        )
        print(
            f"epoch {metrics['epoch']:3d}  {shown}  ({time.perf_counter() - started:.1f}s)",
            flush=True,
        )
        if metrics.get("diverged"):
            print("loss became NaN/inf: stopped (try a lower --lr)")

    state = fit(
        model, data, config, on_epoch=show, resume=resume, checkpoint_dir=args.checkpoint_dir
    )
    metric = PRIMARY_METRIC[model.head.task]
    print(f"best epoch {state.best_epoch} of {state.epoch}: {metric} {state.best_metric:.4f}")
    if args.checkpoint_dir:
        written = [n for n in ("best.pt", "last.pt") if (args.checkpoint_dir / n).is_file()]
        print(f"checkpoints in {args.checkpoint_dir}: {', '.join(written)}")
    if args.overfit:
        return None
    weights, source = best_weights(state, args)
    if weights is None:
        tested_epoch = state.epoch
        print(
            f"tested the last epoch ({state.epoch} of {state.epoch}) on validation and test: "
            f"the best epoch ({state.best_epoch}) came before the resumed checkpoint and its "
            "best.pt is neither in --checkpoint-dir nor beside --resume"
        )
    else:
        model.load_state_dict(weights)
        tested_epoch = state.best_epoch
        print(
            f"tested the best epoch ({state.best_epoch} of {state.epoch}; weights {source}) "
            "on validation and test"
        )
    final_val = evaluate(model, data.val, data.targets)
    final_test = evaluate(model, data.test, data.targets)
    print("final " + "  ".join(f"val_{k} {v:.4f}" for k, v in final_val.items()))
    print(
        "final "
        + "  ".join(f"test_{k} {v:.4f}" for k, v in final_test.items())
        + f"  ({data.test_note})"
    )
    return {
        "tested_epoch": tested_epoch,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        "val": final_val,
        "test": final_test,
    }


def best_weights(state: TrainState, args: argparse.Namespace) -> tuple[dict | None, str]:
    """The best epoch's weights and where they came from: fit's in-memory copy or, for a run
    resumed after its best epoch, the best.pt of --checkpoint-dir or beside --resume."""
    from musictune.training import load_checkpoint

    if state.best_weights is not None:
        return state.best_weights, "kept in memory"
    folders = [args.checkpoint_dir, args.resume.parent if args.resume else None]
    for path in [f / "best.pt" for f in folders if f is not None]:
        if path.is_file():
            best = load_checkpoint(path)
            if best["state"].get("epoch") == state.best_epoch:
                return best["model"], f"from {path}"
    return None, ""


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
    from musictune.demo import ensure_demo, generate_demo

    if args.out is None:
        path = ensure_demo(args.size, seed=args.seed)
    else:
        ensure_writable(args.out.parent, "--out: the parent folder", WRITABLE_FIX)
        path = generate_demo(args.out, args.size, seed=args.seed)
    print(f"demo data ({args.size}) at {path}")


# --------------------------------------------------------------------------- sweep


def add_sweep_parser(sub) -> None:
    from musictune.tuning.affect import add_affect_arguments
    from musictune.tuning.options import add_sweep_arguments
    from musictune.tuning.presets import PRESETS

    p = sub.add_parser("sweep", help="run a Ray Tune sweep of a preset")
    p.add_argument("preset", help="one of: " + ", ".join(sorted(PRESETS)))
    p.add_argument(
        "--target",
        choices=["valence", "energy", "danceability"],
        help="affect target of regression presets (default energy)",
    )
    add_affect_arguments(p)
    add_sweep_arguments(p)
    p.set_defaults(handler=run_sweep_command)


def sweep_options_from_args(args: argparse.Namespace):
    """SweepOptions of a parsed `sweep` command line, affect flags included."""
    from musictune.tuning.affect import affect_extra
    from musictune.tuning.options import options_from_args
    from musictune.tuning.presets import get_preset

    get_preset(args.preset)
    options = options_from_args(args.preset, args)
    options.extra |= affect_extra(args.preset, args)
    return options


def run_sweep_command(args: argparse.Namespace) -> None:
    from musictune.tuning.runner import run_sweep

    run_sweep(sweep_options_from_args(args))


def sweep_main(preset: str) -> None:
    """Entry point of `sweeps/<preset>.py`: the same CLI as `musictune sweep <preset>`."""
    sys.exit(main(["sweep", preset, *sys.argv[1:]]))


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
        default=30.0,
        metavar="SECONDS",
        help="seconds taken from the middle of each file (0: whole files; default 30)",
    )
    p.add_argument(
        "--mapping", type=Path, metavar="FILE", help='JSON {"genre": "class" or null} to fold'
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    p.set_defaults(handler=run_extract)


def run_extract(args: argparse.Namespace) -> None:
    from musictune.extract import extract

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


# --------------------------------------------------------------------------- main

SUBCOMMANDS = [add_train_parser, add_demo_parser, add_sweep_parser, add_extract_parser]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="musictune", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except UserError as exc:
        print(f"musictune {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # A path the checks above did not foresee (disk full, permissions): still one line.
        where = f" ({exc.filename}): check the path, its permissions and the free space"
        print(
            f"musictune {args.command}: error: {exc.strerror or exc}"
            + (where if exc.filename else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        # A sweep's own interruption says what was kept and how to resume.
        note = f": {exc}" if str(exc) else ": no half-written file was left; run it again"
        print(f"musictune {args.command}: interrupted{note}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

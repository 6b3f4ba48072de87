"""`musictune train`: one configuration trained without Ray, then its best epoch tested.

    musictune train --model lstm --features mel --epochs 2
    musictune train --model cnn --task regression --target energy --conv-blocks 3

Each model family's knobs (`--layers`, `--hidden`, `--conv-blocks`, ...) come from the model
registry, so a new family's options appear here without editing this file.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from musictune.atomic import ensure_writable
from musictune.audio.features import VIEWS
from musictune.errors import UserError
from musictune.layout import AFFECT_TARGETS
from musictune.models import SHARED_DEFAULTS, families, get_family
from musictune.options import (
    add_options,
    fraction,
    from_args,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
)
from musictune.tasks import TASKS
from musictune.training.selection import PATIENCE, SELECT_BY

WRITABLE_FIX = "choose a folder you can write"


@dataclass
class TrainOptions:
    OPTION_GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "model and data": ("model", "data_dir", "features", "beat", "task", "target"),
        "training": (
            "epochs", "lr", "weight_decay", "batch_size", "dropout", "crop", "patience",
            "select_by", "seed", "device", "overfit",
        ),
        "checkpoints": ("checkpoint_dir", "resume"),
    }  # fmt: skip

    model: str = option("lstm", "model family: lstm, cnn, or one of $MUSICTUNE_MODELS")
    data_dir: str | None = option(
        None, "data in the patreco3 layout (default: $MUSICTUNE_DATA, else the demo data set)"
    )
    features: str = option("mel", "feature view", choices=list(VIEWS))
    beat: bool = option(False, "beat-synced clips instead of full length")
    task: str = option("genre", "what to learn", choices=list(TASKS))
    target: str | None = option(
        None, "affect target for --task regression", choices=list(AFFECT_TARGETS)
    )
    epochs: int = option(20, "maximum epochs", type=positive_int)
    lr: float = option(SHARED_DEFAULTS["lr"], "Adam learning rate", type=positive_float)
    weight_decay: float = option(0.0, "Adam L2 penalty", type=float)
    batch_size: int = option(32, "clips per batch", type=positive_int)
    dropout: float = option(SHARED_DEFAULTS["dropout"], "dropout", type=fraction)
    crop: float = option(
        0.0,
        "train on a random crop of this many seconds of each clip, anew every epoch, and score "
        "clips on their consecutive windows, averaged (beat-synced: 2 beats a second); "
        "0: whole clips",
        type=non_negative_float,
        metavar="SECONDS",
    )
    patience: int = option(PATIENCE, "early stopping; 0 disables", type=non_negative_int)
    select_by: str = option(
        "metric",
        "the best epoch (tested, early stopping): validation metric, or loss as the course did",
        choices=list(SELECT_BY),
    )
    seed: int = option(0, "weights, shuffling and dropout", type=int)
    device: str = option("auto", "auto, cpu, cuda, cuda:1 ...")
    overfit: int = option(
        0,
        "sanity check: train on this many fixed batches until the loss is ~0",
        type=non_negative_int,
        metavar="BATCHES",
    )
    checkpoint_dir: Path | None = option(None, "write best.pt and last.pt here", type=Path)
    resume: Path | None = option(None, "continue from a checkpoint file", type=Path)
    knobs: dict | None = None  # the family's knobs, from the registry's flags

    def validate(self) -> None:
        get_family(self.model)  # an unknown name fails with the known ones
        if self.task == "regression" and not self.target:
            raise UserError("--task regression needs --target valence|energy|danceability")


def add_knob_options(parser: argparse.ArgumentParser) -> None:
    """Every registered family's knobs, each flag once (families may share a knob)."""
    group = parser.add_argument_group("model knobs (from the model registry)")
    flags: dict[str, list] = {}
    for family in families():
        for knob in family.knobs:
            flags.setdefault(knob.flag, []).append((family, knob))
    for flag, owners in flags.items():
        family, knob = owners[0]
        default = family.defaults[knob.name]
        kind = knob.kind or type(default)
        kwargs = (
            {"action": "store_true"}
            if kind is bool
            else {
                "type": positive_int if kind is int else float,
                "metavar": flag.lstrip("-").upper().replace("-", "_"),
            }
        )
        defaults = [f"{f.name} {f.defaults[k.name]}" for f, k in owners]
        shown = [d for d in defaults if not d.endswith(" None")]
        text = f"{knob.help} (default: {', '.join(shown)})" if shown else knob.help
        group.add_argument(flag, dest=f"knob_{knob.name}", help=text, **kwargs)


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one configuration without Ray")
    add_options(p, TrainOptions)
    add_knob_options(p)
    p.set_defaults(handler=run_train)


def train_options(args: argparse.Namespace) -> TrainOptions:
    knobs = {
        k.removeprefix("knob_"): v
        for k, v in vars(args).items()
        if k.startswith("knob_") and v not in (None, False)
    }
    return from_args(TrainOptions, args, knobs=knobs)


def run_train(args: argparse.Namespace) -> dict | None:
    """Train one configuration, then test its best epoch's weights (returned for callers)."""
    from musictune.data.dataset import load_task
    from musictune.training.checkpoints import load_checkpoint
    from musictune.training.loop import TrainConfig, fit

    options = train_options(args)
    config = TrainConfig(
        lr=options.lr,
        weight_decay=options.weight_decay,
        batch_size=options.batch_size,
        max_epochs=options.epochs,
        patience=0 if options.overfit else options.patience,
        seed=options.seed,
        device=options.device,
        overfit_batches=options.overfit,
        select_by=options.select_by,
    )
    if options.checkpoint_dir:
        ensure_writable(options.checkpoint_dir, "--checkpoint-dir", WRITABLE_FIX)
    resume = load_checkpoint(options.resume) if options.resume else None
    data = load_task(options.task, options.data_dir, options.features, options.beat, options.target)
    if options.checkpoint_dir:
        from musictune.serving.export_sources import record_train_run

        record_train_run(options)  # run.json beside best.pt: what `musictune export` reads
    print(
        f"data: {data.task} {data.features}{' beat-synced' if data.beat else ''}: "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test clips, "
        f"{data.n_features} features"
    )
    model = family_model(options, data)
    if model.window:
        print(f"crops: {describe_crop(data, options.crop)}")
    state = fit(
        model,
        data,
        config,
        on_epoch=epoch_printer(),
        resume=resume,
        checkpoint_dir=options.checkpoint_dir,
    )
    return test_best_epoch(model, data, state, options)


def family_model(options: TrainOptions, data):
    from musictune.models import get_family
    from musictune.training.loop import build_model

    family = get_family(options.model)
    values = {**family.defaults, "dropout": options.dropout, **(options.knobs or {})}
    window = data.check_crop(options.crop)
    return build_model(data, family.name, seed=options.seed, window=window, **family.kwargs(values))


def describe_crop(data, seconds: float) -> str:
    from musictune.data.batches import windows

    frames = data.crop_frames(seconds)
    unit = "beats" if data.beat else "frames"
    count = len(windows(data.val.lengths, frames)[0])
    return (
        f"{seconds:g} s ({frames} {unit}) drawn at random from each training clip every epoch; "
        f"validation scores each clip on its windows ({count} for {len(data.val)} clips), averaged"
    )


def epoch_printer():
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

    return show


def test_best_epoch(model, data, state, options: TrainOptions) -> dict | None:
    """Load the best epoch's weights (or say why the last is tested) and test on val and test."""
    from musictune.training.metrics import PRIMARY_METRIC
    from musictune.training.scoring import evaluate

    metric = PRIMARY_METRIC[model.head.task]
    print(f"best epoch {state.best_epoch} of {state.epoch}: {metric} {state.best_metric:.4f}")
    if options.checkpoint_dir:
        written = [n for n in ("best.pt", "last.pt") if (options.checkpoint_dir / n).is_file()]
        print(f"checkpoints in {options.checkpoint_dir}: {', '.join(written)}")
    if options.overfit:
        return None
    weights, source = best_weights(state, options)
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


def best_weights(state, options: TrainOptions) -> tuple[dict | None, str]:
    """The best epoch's weights and where they came from: fit's in-memory copy or, for a run
    resumed after its best epoch, the best.pt of --checkpoint-dir or beside --resume."""
    from musictune.training.checkpoints import load_checkpoint

    if state.best_weights is not None:
        return state.best_weights, "kept in memory"
    folders = [options.checkpoint_dir, options.resume.parent if options.resume else None]
    for path in [f / "best.pt" for f in folders if f is not None]:
        if path.is_file():
            best = load_checkpoint(path)
            if best["state"].get("epoch") == state.best_epoch:
                return best["model"], f"from {path}"
    return None, ""

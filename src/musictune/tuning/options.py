"""The sweep command line shared by `musictune sweep PRESET` and every `sweeps/*.py` preset."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from musictune.errors import UserError
from musictune.tuning.space import DROPOUT_RANGE, LR_RANGE

SMOKE = {"samples": 4, "max_epochs": 2, "grace_period": 1}
DEFAULTS = {"samples": 20, "max_epochs": 50, "grace_period": 1}


@dataclass
class SweepOptions:
    preset: str
    samples: int
    search: str = "random"
    scheduler: str = "asha"
    max_epochs: int = 50
    grace_period: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    data_dir: str | None = None
    storage: str | None = None
    name: str | None = None
    resume: bool = False
    address: str | None = None
    seed: int = 0
    smoke_test: bool = False
    lr_range: tuple[float, float] = LR_RANGE
    dropout_range: tuple[float, float] = DROPOUT_RANGE
    batch_size: int = 32
    patience: int = 10
    checkpoint_every: int = 5
    max_failures: int = 2
    amp: bool = False
    target: str | None = None
    # After the sweep, train the untuned default once for the test-split comparison.
    baseline_train: bool = True
    extra: dict = field(default_factory=dict)  # preset-specific fixed config values

    def validate(self) -> None:
        lo, hi = self.lr_range
        problems = [
            (self.samples < 1, f"--samples must be at least 1, got {self.samples}"),
            (self.max_epochs < 1, f"--max-epochs must be at least 1, got {self.max_epochs}"),
            (self.grace_period < 1, f"--grace-period must be at least 1, got {self.grace_period}"),
            (
                self.scheduler == "asha" and self.grace_period > self.max_epochs,
                f"--grace-period {self.grace_period} is above --max-epochs {self.max_epochs}: "
                "lower it or raise --max-epochs",
            ),
            (self.cpus_per_trial <= 0, f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}"),
            (self.gpus_per_trial < 0, f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}"),
            (
                self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial),
                f"--gpus-per-trial {self.gpus_per_trial}: above 1 it must be a whole number",
            ),
            (
                self.max_concurrent is not None and self.max_concurrent < 1,
                f"--max-concurrent must be at least 1, got {self.max_concurrent}",
            ),
            (lo <= 0 or hi <= 0, f"--lr-min/--lr-max must be > 0, got {lo:g} and {hi:g}"),
            (lo >= hi, f"--lr-min {lo:g} must be below --lr-max {hi:g}"),
            (
                not 0 <= self.dropout_range[0] < self.dropout_range[1] < 1,
                "--dropout-min/--dropout-max must satisfy 0 <= min < max < 1, got "
                f"{self.dropout_range[0]:g} and {self.dropout_range[1]:g}",
            ),
            (self.max_failures < 0, f"--max-failures must be >= 0, got {self.max_failures}"),
        ]
        for bad, message in problems:
            if bad:
                raise UserError(message)


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a(
        "--samples",
        type=int,
        help=f"trials (default {DEFAULTS['samples']}; smoke test {SMOKE['samples']})",
    )
    a("--search", choices=["random", "optuna"], default="random", help="random or Optuna TPE")
    a("--scheduler", choices=["asha", "fifo"], default="asha", help="ASHA stops poor trials early")
    a("--max-epochs", type=int, help="epoch budget per trial (default 50; smoke test 2)")
    a("--grace-period", type=int, help="ASHA: epochs before a trial can be stopped (default 1)")
    a("--cpus-per-trial", type=float, default=1.0, help="also the torch threads of a trial")
    a("--gpus-per-trial", type=float, default=0.0, help="fractions pack trials on one GPU")
    a("--max-concurrent", type=int, help="trials at once (default: as many as resources allow)")
    a("--data-dir", help="patreco3-layout data (default: $MUSICTUNE_DATA, else demo data)")
    a("--storage", help="results folder or URI such as s3://bucket/path (default ./results)")
    a("--name", help="experiment name (default: PRESET-YYYYmmdd-HHMMSS)")
    a("--resume", action="store_true", help="continue --name (or the latest run of this preset)")
    a("--address", help="existing Ray cluster (default: $RAY_ADDRESS, else a local one)")
    a("--seed", type=int, default=0, help="search and training seed")
    a("--smoke-test", action="store_true", help="tiny demo data, 4 trials, 2 epochs (CI)")
    a("--lr-min", type=float, default=LR_RANGE[0])
    a("--lr-max", type=float, default=LR_RANGE[1])
    a("--dropout-min", type=float, default=DROPOUT_RANGE[0])
    a("--dropout-max", type=float, default=DROPOUT_RANGE[1])
    a("--batch-size", type=int, default=32)
    a("--patience", type=int, default=10, help="early stopping inside a trial (0 disables)")
    a("--checkpoint-every", type=int, default=5, help="epochs between trial checkpoints")
    a("--max-failures", type=int, default=2, help="retries of a crashed trial from its checkpoint")
    a("--amp", action="store_true", help="mixed precision on CUDA")
    a(
        "--no-baseline-train",
        action="store_true",
        help="skip training the untuned default for the end-of-sweep test comparison",
    )


def options_from_args(preset: str, args: argparse.Namespace) -> SweepOptions:
    base = SMOKE if args.smoke_test else DEFAULTS
    options = SweepOptions(
        preset=preset,
        samples=args.samples if args.samples is not None else base["samples"],
        search=args.search,
        scheduler=args.scheduler,
        max_epochs=args.max_epochs if args.max_epochs is not None else base["max_epochs"],
        grace_period=args.grace_period if args.grace_period is not None else base["grace_period"],
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        data_dir=args.data_dir,
        storage=args.storage,
        name=args.name,
        resume=args.resume,
        address=args.address or os.environ.get("RAY_ADDRESS") or None,
        seed=args.seed,
        smoke_test=args.smoke_test,
        lr_range=(args.lr_min, args.lr_max),
        dropout_range=(args.dropout_min, args.dropout_max),
        batch_size=args.batch_size,
        patience=args.patience,
        checkpoint_every=args.checkpoint_every,
        max_failures=args.max_failures,
        amp=args.amp,
        target=getattr(args, "target", None),
        baseline_train=not args.no_baseline_train,
    )
    if options.batch_size < 1 or options.patience < 0 or options.checkpoint_every < 1:
        raise UserError("--batch-size and --checkpoint-every must be >= 1, --patience >= 0")
    options.validate()
    return options

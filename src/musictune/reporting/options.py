"""What a report run is asked to do, declared once (flags, defaults, help); cheap to import."""

from __future__ import annotations

from dataclasses import dataclass

from musictune.errors import UserError
from musictune.options import non_negative_int, option, positive_float, positive_int
from musictune.training.selection import PATIENCE
from musictune.tuning.experiments import RerunSettings


@dataclass
class ReportOptions:
    storage: str | None = option(
        None, "sweep results folder (default ./results or $MUSICTUNE_RESULTS)"
    )
    sweeps: list[str] | None = option(
        None, "only this experiment (repeatable)", flag="--sweep", action="append", metavar="NAME"
    )
    out: str | None = option(None, "report parent folder (default: reports/ beside the storage)")
    rerun: bool = option(True, "test the sweep checkpoints instead", flag="--no-rerun")
    seeds: int = option(3, "rerun seeds K (default 3)", type=positive_int)
    top: int = option(1, "best configs to rerun (default 1)", type=positive_int)
    rerun_max_epochs: int = option(1000, "rerun budget (default 1000)", type=positive_int)
    rerun_patience: int = option(
        PATIENCE, f"early stopping (default {PATIENCE})", type=non_negative_int
    )
    data_dir: str | None = option(None, "data folder (default: the one recorded in sweep.json)")
    cpus_per_trial: float = option(1.0, "CPUs of a rerun trial", type=positive_float)
    gpus_per_trial: float = option(0.0, "GPUs of a rerun trial (fractions share one)", type=float)
    address: str | None = option(None, "existing Ray cluster for the reruns (default: local)")
    render_only: str | None = option(
        None,
        "rebuild REPORT_DIR (default: the newest report in --out, or reports/ beside the "
        "storage) from its saved results into a new dated folder: no reruns, no training",
        nargs="?",
        const="",
        metavar="REPORT_DIR",
    )

    @property
    def settings(self) -> RerunSettings:
        return RerunSettings(
            self.seeds, self.rerun_max_epochs, self.rerun_patience, self.cpus_per_trial,
            self.gpus_per_trial, self.address,
        )  # fmt: skip

    def validate(self) -> None:
        if self.top < 1:
            raise UserError(f"--top must be at least 1, got {self.top}")
        if self.seeds < 1 or self.rerun_max_epochs < 1 or self.rerun_patience < 0:
            raise UserError("--seeds and --rerun-max-epochs must be >= 1, --rerun-patience >= 0")
        if self.gpus_per_trial < 0:
            raise UserError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")

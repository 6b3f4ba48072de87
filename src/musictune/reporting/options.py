"""What a report run is asked to do; plain values, cheap to import (bad input fails fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from musictune.errors import UserError


@dataclass
class RerunSettings:
    seeds: int = 3  # K: independent trainings of the same config
    max_epochs: int = 1000  # the course's long budget; early stopping ends runs far sooner
    patience: int = 10  # epochs without a better validation metric
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None

    def validate(self) -> None:
        if self.seeds < 1 or self.max_epochs < 1 or self.patience < 0:
            raise UserError("--seeds and --rerun-max-epochs must be >= 1, --rerun-patience >= 0")


@dataclass
class ReportOptions:
    storage: str | None = None  # default: the sweeps' default results folder
    sweeps: list[str] | None = None  # experiment names; default every finished one
    out: str | None = None  # default: reports/ beside the storage folder
    rerun: bool = True  # False: test the sweep's own best checkpoint instead
    top: int = 1  # best configs to rerun per experiment
    data_dir: str | None = None  # default: the data folder recorded in sweep.json
    settings: RerunSettings = field(default_factory=RerunSettings)
    render_only: str | None = None  # rebuild this report from its saved results ("": newest)

    def validate(self) -> None:
        if self.top < 1:
            raise UserError(f"--top must be at least 1, got {self.top}")
        self.settings.validate()

"""What one trial is: its hyperparameters (the Ray config) and the settings fixed for the run.

The config holds only what a search could vary (lr, dropout, a family's knobs, loss weights,
freeze_backbone, batch size, the crop in seconds, seed); the budget, threads and the model
family are the same for every trial of a sweep or rerun and travel beside the data via
`tune.with_parameters`. The Ray trainables, the sweep's untuned-default training and the
reports all build a trial's model and training settings here, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from musictune.data.dataset import Dataset
from musictune.models import ModelFamily, MusicModel
from musictune.training.affect import set_loss_weights, transfer_model
from musictune.training.loop import TrainConfig, build_model, start_at_train_mean
from musictune.training.selection import PATIENCE, selection


@dataclass(frozen=True)
class TrialSettings:
    # The model family (a transfer trial uses its source's backbone). The object, not its
    # name: unpickling it on a Ray worker imports the family's module, which registers it
    # there too, so a family defined outside the package needs no set-up on the workers.
    family: ModelFamily
    max_epochs: int
    patience: int = PATIENCE
    checkpoint_every: int = 5
    threads: int = 1  # torch threads: the trial's CPU share, so concurrent trials don't fight
    amp: bool = False
    quiet: bool = False  # reruns checkpoint every epoch: Ray's line per checkpoint is noise
    select_by: str = "metric"  # the best epoch: by validation metric, or loss (the course)

    def score(self, metric: str) -> tuple[str, str]:
        """The checkpoint attribute and mode that pick a trial's best epoch."""
        return selection(metric, self.select_by)

    def train_config(self, config: dict, device: str = "auto") -> TrainConfig:
        return TrainConfig(
            lr=config["lr"],
            weight_decay=config.get("weight_decay", 0.0),
            batch_size=config.get("batch_size", 32),
            max_epochs=self.max_epochs,
            patience=self.patience,
            checkpoint_every=self.checkpoint_every,
            seed=config.get("seed", 0),
            amp=self.amp,
            device=device,
            select_by=self.select_by,
        )

    def with_budget(self, max_epochs: int, patience: int) -> TrialSettings:
        return replace(self, max_epochs=max_epochs, patience=patience)


def trial_model(
    config: dict, data: Dataset, settings: TrialSettings, source: dict | None = None
) -> MusicModel:
    """The model a trial starts from: the family with the config's knobs, or for a transfer
    trial (`source`: a genre checkpoint's weights and spec) that backbone under a new head."""
    seed = int(config.get("seed", 0))
    window = data.crop_frames(float(config.get("crop", 0) or 0))
    if source is not None:
        model = transfer_model(
            source,
            data.n_features,
            dropout=config["dropout"],
            freeze=bool(config["freeze_backbone"]),
            seed=seed,
        )
        model.window = window
        start_at_train_mean(model, data)
        return model
    family = settings.family
    model = build_model(data, family.name, seed=seed, window=window, **family.kwargs(config))
    set_loss_weights(model, config, data.targets)  # multitask only: the sweep's loss weights
    return model

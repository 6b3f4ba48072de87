"""Where a transfer sweep starts: the best checkpoint of a finished genre CNN sweep.

Found through Ray's result API and loaded once on the driver; the trials get its weights and
model spec through the object store (see `tuning.trainable`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from musictune.errors import UserError
from musictune.training.affect import TRANSFER_FAMILIES
from musictune.training.checkpoints import CHECKPOINT_FILE, load_checkpoint
from musictune.training.selection import selection
from musictune.tuning.storage import SWEEP_FILE, is_uri


@dataclass
class TransferSource:
    weights: dict  # what a transfer trial needs: {"model": state dict, "model_spec": spec}
    label: str  # "the best checkpoint of sweep 'x' (trial)", for error messages
    meta: dict  # the genre sweep's sweep.json
    info: dict  # recorded in the transfer sweep's sweep.json ("transfer")

    @property
    def conv_blocks(self) -> int | None:
        return self.weights["model_spec"].get("conv_blocks")


def source_weights(checkpoint: dict) -> dict:
    """What a transfer trial needs of a genre checkpoint: its weights and model spec."""
    return {"model": checkpoint["model"], "model_spec": checkpoint["model_spec"]}


def transfer_source(meta: dict) -> dict | None:
    """The genre weights a finished transfer sweep started from (None for other sweeps)."""
    info = meta.get("transfer")
    return source_weights(load_checkpoint(info["source_checkpoint"])) if info else None


def genre_sweep_meta(preset: str, sweep: str | None, root: str, genre_presets: list[str]) -> dict:
    """sweep.json of the --from-sweep genre CNN sweep, refused unless finished and a CNN's."""
    if not sweep:
        raise UserError(
            f"{preset} needs --from-sweep NAME, a finished genre CNN sweep in the storage folder "
            f"(run e.g. `musictune sweep cnn_spectrogram --smoke-test` first)"
        )
    if is_uri(root):
        raise UserError(
            "--from-sweep reads the genre sweep's sweep.json from a local --storage folder: "
            "copy the experiment to a local folder and pass that"
        )
    meta_file = Path(root) / sweep / SWEEP_FILE
    if not meta_file.is_file():
        raise UserError(
            f"no sweep {sweep!r} in {root}: pass --from-sweep the name of a finished genre "
            f"CNN sweep there, or --storage the folder that holds it"
        )
    meta = json.loads(meta_file.read_text())
    if meta.get("task") != "genre" or meta.get("model") not in TRANSFER_FAMILIES:
        raise UserError(
            f"sweep {sweep!r} is a {meta.get('task')} {meta.get('model')} sweep: transfer needs a "
            f"genre CNN sweep ({' or '.join(genre_presets)})"
        )
    if meta.get("status") != "finished":
        raise UserError(
            f"sweep {sweep!r} has not finished (status {meta.get('status')}): resume it with "
            f"--resume --name {sweep}, or choose a finished one"
        )
    return meta


def _best_checkpoint(folder: Path, sweep: str, metric: str, mode: str, select_by: str):
    """The best trial by the one tie-break (`summary.ranked_results`, as the sweep's tuned best
    and its reports choose it), and its best epoch's checkpoint by what the sweep selected epochs
    with (trials checkpoint every new best epoch)."""
    from ray.tune import ExperimentAnalysis, ResultGrid

    from musictune.tuning.summary import ranked_results

    score = selection(metric, select_by) if mode == "max" else (metric, mode)
    try:
        grid = ResultGrid(ExperimentAnalysis(str(folder), default_metric=metric, default_mode=mode))
        ranked = ranked_results(grid, metric, select_by)
    except (ValueError, RuntimeError) as exc:
        raise UserError(
            f"sweep {sweep!r} has no trial result to transfer from ({str(exc).splitlines()[0]}); "
            "choose a sweep whose trials finished"
        ) from None
    if not ranked:
        raise UserError(
            f"sweep {sweep!r} has no trial that finished to transfer from; choose a sweep whose "
            "trials finished"
        )
    best = ranked[0]
    checkpoint = best.get_best_checkpoint(*score) if best.best_checkpoints else best.checkpoint
    if checkpoint is None:
        raise UserError(f"the best trial of sweep {sweep!r} saved no checkpoint: rerun that sweep")
    return best, checkpoint


def find_source(preset: str, sweep: str | None, root: str, genre_presets: list[str]):
    """The genre sweep's best checkpoint, loaded, with what the transfer sweep records of it."""
    meta = genre_sweep_meta(preset, sweep, root, genre_presets)
    metric, mode = meta["metric"], meta.get("mode", "max")
    select_by = meta.get("select_by", "metric")
    best, checkpoint = _best_checkpoint(Path(root) / sweep, sweep, metric, mode, select_by)
    with checkpoint.as_directory() as directory:
        loaded = load_checkpoint(Path(directory) / CHECKPOINT_FILE)
    trial = Path(best.path).name
    history = best.metrics_dataframe
    score = float(history[metric].max()) if history is not None and metric in history else None
    info = {
        "source_sweep": sweep,
        "source_trial": trial,
        "source_metric": metric,
        "source_best": score,
        "source_checkpoint": checkpoint.path,
        "checkpoint_epoch": loaded["state"]["epoch"],
        "checkpoint_value": (loaded["state"]["history"] or [{}])[-1].get(metric),
        "conv_blocks": loaded["model_spec"].get("conv_blocks"),
    }
    label = f"the best checkpoint of sweep {sweep!r} ({trial})"
    return TransferSource(source_weights(loaded), label, meta, info)

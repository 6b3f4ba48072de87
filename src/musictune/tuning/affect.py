"""What the affect presets add to a sweep: target, feature view, loss weights, transfer source.

`add_affect_arguments` and `affect_extra` turn the affect flags of the sweep command into fixed
config values (`SweepOptions.extra`); `plan_affect` resolves them for `run_sweep`: the target
(default energy), the view, equal loss weights, and for transfer the genre sweep's best
checkpoint, found through Ray's result API and checked against the model before trials start.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from musictune.affect import check_fits
from musictune.data import Dataset
from musictune.errors import UserError
from musictune.layout import AFFECT_TARGETS
from musictune.tuning.presets import PRESETS, Preset
from musictune.tuning.space import loss_weight_space, transfer_space

REGRESSION_PRESETS = sorted(
    n for n, p in PRESETS.items() if p.task == "regression" and not p.transfer
)
GENRE_CNN_PRESETS = sorted(n for n, p in PRESETS.items() if p.task == "genre" and p.model == "cnn")


@dataclass
class AffectPlan:
    preset: Preset  # with the feature view the sweep really uses
    target: str | None = None
    extra: dict = field(default_factory=dict)  # config values added to the search space
    meta: dict = field(default_factory=dict)  # added to sweep.json
    notes: list[str] = field(default_factory=list)  # printed when the sweep starts
    source: dict | None = None  # transfer: genre weights + model spec, shared with the trials
    source_label: str = ""
    data_dir: str | None = None  # transfer: the genre sweep's data folder, if it still exists

    def check(self, data: Dataset) -> None:
        if self.source is not None:
            check_fits(self.source, data.n_features, self.source_label)


# --------------------------------------------------------------------------- command line


def positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_affect_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--features", choices=["mel", "chroma", "fused"], help="regression/multitask: feature view")
    a("--beat", action="store_true", help="regression/multitask: beat-synced clips")
    a(
        "--loss-weights",
        type=positive,
        nargs=len(AFFECT_TARGETS),
        metavar=tuple(t[0].upper() for t in AFFECT_TARGETS),
        help="multitask: relative weights of the valence, energy, danceability MSEs "
        "(default 1 1 1; scaled to average 1)",
    )
    a("--tune-loss-weights", action="store_true", help="multitask: tune the three weights")
    a("--from-sweep", metavar="NAME", help="transfer presets: the finished genre CNN sweep")


def affect_extra(preset_name: str, args: argparse.Namespace) -> dict:
    """Fixed config values from the affect flags; a flag the preset does not use is an error."""
    preset = PRESETS[preset_name]
    extra: dict = {}
    if args.features or args.beat:
        if preset.task == "genre" or preset.transfer:
            where = (
                "the --from-sweep genre sweep"
                if preset.transfer
                else "the preset name (e.g. lstm_fused_beat)"
            )
            raise UserError(f"--features/--beat do not apply to {preset_name}: its view is {where}")
        extra |= {"features": args.features or preset.features, "beat": args.beat}
    if args.loss_weights or args.tune_loss_weights:
        if preset.task != "multitask":
            raise UserError(
                f"--loss-weights/--tune-loss-weights are for multitask, not {preset_name}"
            )
        if args.loss_weights and args.tune_loss_weights:
            raise UserError("give --loss-weights or --tune-loss-weights, not both")
        extra |= loss_weight_space(AFFECT_TARGETS, args.loss_weights, args.tune_loss_weights)
    if args.from_sweep:
        if not preset.transfer:
            raise UserError(f"--from-sweep applies to transfer_energy, not {preset_name}")
        extra["source_sweep"] = args.from_sweep
    return extra


# --------------------------------------------------------------------------- planning


def resolve_target(name: str, preset: Preset, target: str | None) -> str | None:
    """Regression: --target or the preset's default; transfer: its one target; else none."""
    if preset.task == "genre" and target:
        raise UserError(
            f"--target applies to regression presets ({', '.join(REGRESSION_PRESETS)}); "
            f"{name} is a genre preset"
        )
    if preset.task == "multitask" and target:
        raise UserError(
            f"{name} trains valence, energy and danceability together: drop --target "
            "(cnn_regression or lstm_regression take one)"
        )
    if preset.transfer and target not in (None, preset.target):
        raise UserError(f"{name} trains on {preset.target} only: drop --target {target}")
    if preset.task == "regression":
        target = target or preset.target
        if target not in AFFECT_TARGETS:
            raise UserError(f"unknown target {target!r}: choose one of {', '.join(AFFECT_TARGETS)}")
    return target


def plan_affect(
    name: str, preset: Preset, target: str | None, extra: dict, root: str
) -> AffectPlan:
    """Everything an affect preset adds to the sweep (nothing for a genre preset)."""
    plan = AffectPlan(preset, resolve_target(name, preset, target))
    if preset.task == "genre":
        return plan
    if "features" in extra or "beat" in extra:
        features, beat = extra.get("features", preset.features), extra.get("beat", preset.beat)
        plan.preset = replace(preset, features=features, beat=bool(beat))
    if plan.target:
        chosen = target is not None or preset.transfer
        default = "" if chosen else " (the default; --target picks another)"
        plan.notes.append(f"target: {plan.target}{default}")
    if preset.task == "multitask":
        weights = {k: v for k, v in extra.items() if k.startswith("loss_weight_")}
        if not weights:
            weights = loss_weight_space(AFFECT_TARGETS)
            plan.extra |= weights
        fixed = all(isinstance(v, float) for v in weights.values())
        plan.meta["loss_weights"] = (
            {k.removeprefix("loss_weight_"): v for k, v in weights.items()} if fixed else "tuned"
        )
        plan.notes.append(f"loss weights: {plan.meta['loss_weights']} (relative, scaled to mean 1)")
    if preset.transfer:
        _plan_transfer(plan, name, extra.get("source_sweep"), root)
    return plan


def _plan_transfer(plan: AffectPlan, name: str, sweep: str | None, root: str) -> None:
    from musictune.training import CHECKPOINT_FILE, load_checkpoint
    from musictune.tuning.storage import SWEEP_FILE, is_uri

    if not sweep:
        raise UserError(
            f"{name} needs --from-sweep NAME, a finished genre CNN sweep in the storage folder "
            f"(run e.g. `python sweeps/cnn_spectrogram.py --smoke-test` first)"
        )
    if is_uri(root):
        raise UserError(
            "--from-sweep reads the genre sweep's sweep.json from a local --storage folder: "
            "copy the experiment to a local folder and pass that"
        )
    folder = Path(root) / sweep
    meta_file = folder / SWEEP_FILE
    if not meta_file.is_file():
        raise UserError(
            f"no sweep {sweep!r} in {root}: pass --from-sweep the name of a finished genre "
            f"CNN sweep there, or --storage the folder that holds it"
        )
    meta = json.loads(meta_file.read_text())
    if meta.get("task") != "genre" or meta.get("model") != "cnn":
        raise UserError(
            f"sweep {sweep!r} is a {meta.get('task')} {meta.get('model')} sweep: transfer needs a "
            f"genre CNN sweep ({' or '.join(GENRE_CNN_PRESETS)})"
        )
    if meta.get("status") != "finished":
        raise UserError(
            f"sweep {sweep!r} has not finished (status {meta.get('status')}): resume it with "
            f"--resume --name {sweep}, or choose a finished one"
        )
    metric, mode = meta["metric"], meta.get("mode", "max")
    try:
        from ray.tune import ExperimentAnalysis, ResultGrid

        grid = ResultGrid(ExperimentAnalysis(str(folder), default_metric=metric, default_mode=mode))
        best = grid.get_best_result(metric, mode, scope="all")
        checkpoint = (
            best.get_best_checkpoint(metric, mode) if best.best_checkpoints else best.checkpoint
        )
    except (ValueError, RuntimeError) as exc:
        raise UserError(
            f"sweep {sweep!r} has no trial result to transfer from ({str(exc).splitlines()[0]}); "
            "choose a sweep whose trials finished"
        ) from None
    if checkpoint is None:
        raise UserError(f"the best trial of sweep {sweep!r} saved no checkpoint: rerun that sweep")
    with checkpoint.as_directory() as directory:
        loaded = load_checkpoint(Path(directory) / CHECKPOINT_FILE)
    trial = Path(best.path).name
    plan.source = source_weights(loaded)
    plan.source_label = f"the best checkpoint of sweep {sweep!r} ({trial})"
    plan.preset = replace(plan.preset, features=meta["features"], beat=bool(meta["beat"]))
    if meta.get("data_dir") and Path(meta["data_dir"]).is_dir():
        plan.data_dir = meta["data_dir"]
    conv_blocks = loaded["model_spec"].get("conv_blocks")
    plan.extra |= {**transfer_space(), "conv_blocks": conv_blocks, "source_sweep": sweep}
    history = best.metrics_dataframe
    score = float(history[metric].max()) if history is not None and metric in history else None
    plan.meta["transfer"] = {
        "source_sweep": sweep,
        "source_trial": trial,
        "source_metric": metric,
        "source_best": score,
        "source_checkpoint": checkpoint.path,
        "checkpoint_epoch": loaded["state"]["epoch"],
        "checkpoint_value": (loaded["state"]["history"] or [{}])[-1].get(metric),
        "conv_blocks": conv_blocks,
    }
    shown = "?" if score is None else f"{score:.4f}"
    plan.notes.append(
        f"transfer: {sweep} best trial {trial} ({metric} {shown}), {conv_blocks} conv blocks, "
        f"{meta['features']}{' beat-synced' if meta['beat'] else ''}; tuning freeze_backbone"
    )


def source_weights(checkpoint: dict) -> dict:
    """What a transfer trial needs of a genre checkpoint: its weights and model spec."""
    return {"model": checkpoint["model"], "model_spec": checkpoint["model_spec"]}


def transfer_source(meta: dict) -> dict | None:
    """The genre weights a finished transfer sweep started from (None for other sweeps).

    For retraining a transfer config: `train_transfer(config, data, source=...)`.
    """
    from musictune.training import load_checkpoint

    info = meta.get("transfer")
    return source_weights(load_checkpoint(info["source_checkpoint"])) if info else None

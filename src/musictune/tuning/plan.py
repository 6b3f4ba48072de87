"""One sweep, planned: the options checked against the preset and turned into a typed plan.

`make_plan` is the only place that reads `SweepOptions`: it settles the task, model, feature
view, target, transfer source, search space, resources and storage, refusing any option that
does not fit the preset with one line that says what to do. The runner only carries it out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from musictune.data.dataset import Dataset
from musictune.errors import UserError
from musictune.layout import AFFECT_TARGETS
from musictune.models import get_family
from musictune.options import first_problem
from musictune.training.metrics import PRIMARY_METRIC
from musictune.training.trial import TrialSettings
from musictune.tuning.cluster import Resources, check_address
from musictune.tuning.mlflow_tracking import store
from musictune.tuning.options import SweepOptions
from musictune.tuning.presets import PRESETS, Preset
from musictune.tuning.space import (
    TRAINING_KEYS,
    apply_user_space,
    largest,
    loss_weight_space,
    search_space,
    transfer_space,
)
from musictune.tuning.storage import choose_name, experiment_path, storage_root
from musictune.tuning.transfer import TransferSource, find_source

REGRESSION_PRESETS = sorted(
    n for n, p in PRESETS.items() if p.task == "regression" and not p.transfer
)
GENRE_CNN_PRESETS = sorted(n for n, p in PRESETS.items() if p.task == "genre" and p.model == "cnn")


@dataclass
class SweepPlan:
    options: SweepOptions  # as typed: the resume command and sweep.json repeat them
    preset: Preset  # with the feature view and model the sweep really uses
    target: str | None  # regression: the one affect target
    metric: str  # validation metric the search maximises
    space: dict  # the trial config: hyperparameters only
    settings: TrialSettings  # fixed for every trial: family, budget, threads
    resources: Resources
    root: str  # storage folder or URI
    name: str  # experiment name
    source: TransferSource | None = None
    meta: dict = field(default_factory=dict)  # added to sweep.json
    notes: list[str] = field(default_factory=list)  # printed when the sweep starts
    mlflow: tuple[str, str | None] | None = None  # --mlflow: (tracking URI, artifact location)

    @property
    def task(self) -> str:
        return self.preset.task

    @property
    def path(self) -> str:
        return experiment_path(self.root, self.name)

    @property
    def columns(self) -> list[str]:
        """The sweep summary's columns besides lr and dropout: what the family declares."""
        return ["freeze_backbone"] if self.source else get_family(self.preset.model).columns

    def check(self, data: Dataset) -> None:
        """Crops must fit the clips and a transfer source the data, before minutes of trials."""
        crop = largest(self.space.get("crop", 0))
        if crop:
            data.check_crop(crop)
        if self.source is not None:
            from musictune.training.affect import check_fits

            check_fits(self.source.weights, data.n_features, self.source.label)


# --------------------------------------------------------------------------- checks


def check_affect_flags(options: SweepOptions, preset: Preset) -> None:
    """A flag the preset does not use is an error, never silently ignored."""
    name = preset.name
    view_of = "the preset name (e.g. lstm_fused_beat)"
    if preset.transfer:
        view_of = "the --from-sweep genre sweep"
    first_problem(
        [
            (
                (options.features or options.beat or options.full)
                and (preset.task == "genre" or preset.transfer),
                f"--features/--beat/--full do not apply to {name}: its view is {view_of}",
            ),
            (
                (options.loss_weights or options.tune_loss_weights) and preset.task != "multitask",
                f"--loss-weights/--tune-loss-weights are for multitask, not {name}",
            ),
            (
                bool(options.loss_weights) and options.tune_loss_weights,
                "give --loss-weights or --tune-loss-weights, not both",
            ),
            (
                bool(options.from_sweep) and not preset.transfer,
                f"--from-sweep applies to transfer_energy, not {name}",
            ),
            (
                bool(options.model) and preset.transfer,
                f"{name} fine-tunes the genre sweep's CNN: drop --model",
            ),
        ]
    )


def resolve_target(preset: Preset, target: str | None) -> str | None:
    """Regression: --target or the preset's default; transfer: its one target; else none."""
    name = preset.name
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


# --------------------------------------------------------------------------- the plan


def _view(options: SweepOptions, preset: Preset) -> Preset:
    """The preset with the model and feature view this sweep really uses."""
    if options.model:
        preset = replace(preset, model=get_family(options.model).name)
    if options.features or options.beat or options.full:
        beat = options.beat or (preset.beat and not options.full)
        preset = replace(preset, features=options.features or preset.features, beat=beat)
    return preset


def _loss_weights(options: SweepOptions, plan: SweepPlan) -> None:
    weights = loss_weight_space(AFFECT_TARGETS, options.loss_weights, options.tune_loss_weights)
    plan.space |= weights
    fixed = all(isinstance(v, float) for v in weights.values())
    plan.meta["loss_weights"] = (
        {k.removeprefix("loss_weight_"): v for k, v in weights.items()} if fixed else "tuned"
    )
    plan.notes.append(f"loss weights: {plan.meta['loss_weights']} (relative, scaled to mean 1)")


def _transfer(options: SweepOptions, plan: SweepPlan) -> None:
    source = find_source(plan.preset.name, options.from_sweep, plan.root, GENRE_CNN_PRESETS)
    genre = source.meta
    plan.source = source
    view = {"features": genre["features"], "beat": bool(genre["beat"])}
    plan.preset = replace(plan.preset, model=genre["model"], **view)
    plan.space = {k: v for k, v in plan.space.items() if k in ("lr", "dropout")}
    plan.space |= {**transfer_space(), "batch_size": options.batch_size, "seed": options.seed}
    plan.space |= {"crop": options.crop} if options.crop else {}
    plan.meta["transfer"] = source.info
    best = source.info["source_best"]
    shown = "?" if best is None else f"{best:.4f}"
    plan.notes.append(
        f"transfer: {options.from_sweep} best trial {source.info['source_trial']} "
        f"({source.info['source_metric']} {shown}), {source.conv_blocks} conv blocks, "
        f"{genre['features']}{' beat-synced' if genre['beat'] else ''}; tuning freeze_backbone"
    )


def make_plan(options: SweepOptions) -> SweepPlan:
    """Check every option against the preset and each other; fail before any data is read.
    The one place a sweep's options are checked, however they were made."""
    options.validate()
    preset = PRESETS[options.preset]  # validate() refused an unknown name
    check_affect_flags(options, preset)
    target = resolve_target(preset, options.target)
    address = options.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_address(address)  # in seconds, before any minutes of data loading
    resources = Resources(
        options.cpus_per_trial, options.gpus_per_trial, options.max_concurrent, address
    )
    preset = _view(options, preset)
    root = storage_root(options.storage)
    plan = SweepPlan(
        options=options,
        preset=preset,
        target=target,
        metric=PRIMARY_METRIC[preset.task],
        space={
            **search_space(preset.model, options.lr_range, options.dropout_range),
            "batch_size": options.batch_size,
            **({"crop": options.crop} if options.crop else {}),
            "seed": options.seed,
        },
        settings=TrialSettings(
            family=get_family(preset.model),
            max_epochs=options.max_epochs,
            patience=options.patience,
            checkpoint_every=options.checkpoint_every,
            threads=resources.threads,
            amp=options.amp,
            select_by=options.select_by,
        ),
        resources=resources,
        root=root,
        name=choose_name(options.preset, options.name, options.resume, root),
    )
    if target:
        chosen = options.target is not None or preset.transfer
        default = "" if chosen else " (the default; --target picks another)"
        plan.notes.append(f"target: {target}{default}")
    if preset.task == "multitask":
        _loss_weights(options, plan)
    if preset.transfer:
        _transfer(options, plan)
    if options.mlflow is not None and not options.resume:  # a resumed Tuner keeps its callbacks
        plan.mlflow = store(options.mlflow, root)
        plan.meta["mlflow"] = {"uri": plan.mlflow[0], "experiment": plan.name}
    plan.space = apply_user_space(plan.space, known_keys(plan), options.space_file, options.sets)
    return plan


def known_keys(plan: SweepPlan) -> dict:
    """What a trial of this plan reads from its config (what --set and --space may name), each
    with a value of its kind (None: any)."""
    keys = {**TRAINING_KEYS, **{k: 1.0 for k in plan.space if k.startswith("loss_weight_")}}
    if plan.source is not None:
        return {**keys, "freeze_backbone": False}
    arguments = get_family(plan.preset.model).arguments
    skip = {*keys, "data_frames"}
    return {**keys, **{k: v for k, v in arguments.items() if k not in skip}}

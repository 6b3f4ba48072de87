"""Real Ray Tune sweeps on a local Ray: presets, ASHA, Optuna, shared data, TensorBoard, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from musictune.audio import features
from musictune.training.checkpoints import load_checkpoint
from musictune.training.selection import rank_order
from musictune.tuning.experiments import find_experiments
from musictune.tuning.plan import GENRE_CNN_PRESETS, make_plan
from musictune.tuning.presets import PRESETS
from musictune.tuning.runner import build_scheduler, run_sweep
from musictune.tuning.storage import SWEEP_FILE, TRIALS_FILE
from musictune.tuning.transfer import find_source

from .conftest import sweep_options

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def event_scalars(trial_dir: Path) -> dict[str, list[float]]:
    """Read a trial's TensorBoard event file back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trial_dir))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


GENRE_PRESETS = sorted(n for n, p in PRESETS.items() if p.task == "genre")
# Whole sweeps here for the CNN and the fused view; lstm_spectrogram, its beat view and
# lstm_chroma run whole sweeps in other tests. Every preset's trial config trains on its view
# below, without Ray's per-sweep start-up (several seconds of worker imports each).
SWEPT_PRESETS = ["cnn_spectrogram_beat", "lstm_fused"]


@pytest.mark.parametrize("preset", GENRE_PRESETS)
def test_every_preset_trial_config_trains_on_its_view(preset, demo_tiny, tmp_path):
    from ray.tune.search.sample import Domain

    from musictune.data.dataset import load_task
    from musictune.training.loop import fit
    from musictune.training.trial import trial_model

    spec = PRESETS[preset]
    options = sweep_options(preset, "--smoke-test", "--max-epochs", "1", "--storage", str(tmp_path))
    plan = make_plan(options)
    config = {k: v.sample() if isinstance(v, Domain) else v for k, v in plan.space.items()}
    data = load_task(spec.task, demo_tiny, spec.features, spec.beat)
    view = features.VIEWS[spec.features]
    assert data.n_features == view.stop - view.start
    assert (data.train.lengths.max() < 20) == spec.beat  # beat-synced tiny clips: a few beats
    model = trial_model(config, data, plan.settings)
    assert 0 <= fit(model, data, plan.settings.train_config(config)).best_metric <= 1


# The CNN's sweep also selects by 2-fold cross-validation on crops: the K-fold trainable,
# its checkpoints and the tuned best's retraining run through real Ray there.
SMOKE_EXTRA = {"cnn_spectrogram_beat": ("--folds", "2", "--crop", "2"), "lstm_fused": ()}


@pytest.mark.parametrize("preset", SWEPT_PRESETS)
def test_presets_run_their_smoke_test(preset, ray_local, demo_tiny, tmp_path):
    extra = SMOKE_EXTRA[preset]
    argv = ("--smoke-test", "--samples", "1", "--storage", str(tmp_path), *extra)
    run_sweep(sweep_options(preset, *argv))
    (experiment,) = tmp_path.iterdir()
    table = pd.read_csv(experiment / TRIALS_FILE)
    assert len(table) == 1 and (table["status"] == "TERMINATED").all()
    assert table["best_val_macro_f1"].between(0, 1).all()
    meta = json.loads((experiment / SWEEP_FILE).read_text())
    assert meta["status"] == "finished" and meta["preset"] == preset
    trial_dirs = [p for p in experiment.iterdir() if p.is_dir()]
    assert all(list(d.glob("events.out.tfevents.*")) for d in trial_dirs)
    if not extra:
        assert meta["folds"] == 0 and "crop" not in meta["space"]
        return
    assert meta["folds"] == 2 and meta["space"]["crop"] == 2.0 and meta["val_clips"] < 50
    assert meta["test"]["tuned"]["retrained"] is True  # K-fold: retrained, then tested
    (checkpoint,) = sorted(trial_dirs[0].glob("checkpoint_*/checkpoint.pt"))[-1:]
    saved = load_checkpoint(checkpoint)
    assert len(saved["folds"]) == 2 and saved["window"] == 4  # 2 s = 4 beats
    history = pd.read_csv(trial_dirs[0] / "progress.csv")
    assert {"val_macro_f1_sd", "val_loss_sd"} <= set(history) and (history["folds"] == 2).all()


def test_set_and_space_fix_and_widen_the_search(ray_local, fake_root, tmp_path):
    """The course's LSTM through the preset's own family: --set fixes a key in every trial,
    --space replaces a range, and sweep.json records the space actually searched."""
    space = tmp_path / "space.yaml"
    space.write_text("num_layers: {choice: [2]}\nlr: {loguniform: [0.001, 0.002]}\n")
    run_sweep(
        sweep_options(
            "lstm_spectrogram",
            "--smoke-test",
            "--samples",
            "2",
            "--max-epochs",
            "1",
            "--set",
            "hidden_size=128",
            "--set",
            "bidirectional=false",
            "--space",
            str(space),
            "--data-dir",
            str(fake_root),
            "--storage",
            str(tmp_path),
            "--name",
            "course-lstm",
            "--no-baseline-train",
        )  # fmt: skip
    )
    table = pd.read_csv(tmp_path / "course-lstm" / TRIALS_FILE)
    assert (table["hidden_size"] == 128).all() and not table["bidirectional"].any()
    assert (table["num_layers"] == 2).all() and table["lr"].between(0.001, 0.002).all()
    meta = json.loads((tmp_path / "course-lstm" / SWEEP_FILE).read_text())
    assert meta["space"]["hidden_size"] == 128 and meta["space"]["bidirectional"] is False
    assert meta["space"]["lr"] == {"loguniform": [0.001, 0.002]}
    assert meta["space"]["dropout"] == {"uniform": [0.1, 0.8]}  # the preset's, untouched


def test_a_trial_checkpoints_every_new_best_epoch(ray_local, fake_root, tmp_path):
    """Besides every --checkpoint-every epochs and its last, a trial saves at each new best
    epoch, so the test split, reruns and a transfer all start from the best epoch itself."""
    (result,) = run_sweep(
        sweep_options(
            "lstm_spectrogram",
            "--smoke-test",
            "--samples",
            "1",
            "--max-epochs",
            "4",
            "--checkpoint-every",
            "10",
            "--patience",
            "0",
            "--scheduler",
            "fifo",
            "--set",
            "lr=0.02",
            "--data-dir",
            str(fake_root),
            "--storage",
            str(tmp_path),
            "--no-baseline-train",
        )  # fmt: skip
    )
    scores = result.metrics_dataframe["val_macro_f1"].tolist()
    improved = {i + 1 for i, v in enumerate(scores) if v > max(scores[:i], default=-1.0)}
    saved = {m["training_iteration"] for _, m in result.best_checkpoints}
    assert saved == improved | {4}  # epoch 1 always improves: the old rule saved only epoch 4
    best = result.get_best_checkpoint("val_macro_f1", "max")
    assert best.path == next(c.path for c, m in result.best_checkpoints if m["training_iteration"]
                             == scores.index(max(scores)) + 1)  # fmt: skip


def test_asha_stops_poor_trials_and_data_is_shared_once(ray_local, fake_root, tmp_path):
    results = run_sweep(
        sweep_options(
            "lstm_spectrogram_beat",
            "--data-dir",
            str(fake_root),
            "--samples",
            "6",
            "--max-epochs",
            "6",
            "--grace-period",
            "1",
            "--patience",
            "0",
            "--storage",
            str(tmp_path),
            "--name",
            "asha",
        )
    )
    epochs = [r.metrics["training_iteration"] for r in results]
    assert max(epochs) == 6 and min(epochs) < 6, epochs
    # Every trial got the driver's copy of the data through the object store.
    assert {r.metrics["data_pid"] for r in results} == {os.getpid()}
    best = results.get_best_result()
    scalars = event_scalars(Path(best.path))
    assert "ray/tune/val_macro_f1" in scalars
    assert len(scalars["ray/tune/val_macro_f1"]) == best.metrics["training_iteration"]


@pytest.mark.parametrize("factor, rungs", [(3, [27, 9, 3, 1]), (4, [16, 4, 1])])
def test_asha_rungs_follow_grace_period_and_reduction_factor(factor, rungs):
    options = sweep_options("lstm_spectrogram", "--reduction-factor", str(factor))
    scheduler = build_scheduler(options)
    assert [milestone for milestone, _ in scheduler._brackets[0]._rungs] == rungs


def test_optuna_search_runs(ray_local, fake_root, tmp_path):
    results = run_sweep(
        sweep_options(
            "cnn_spectrogram_beat",
            "--data-dir",
            str(fake_root),
            "--samples",
            "3",
            "--search",
            "optuna",
            "--scheduler",
            "fifo",
            "--max-epochs",
            "2",
            "--storage",
            str(tmp_path),
        )
    )
    assert len(results) == 3 and not results.errors
    lrs = {r.config["lr"] for r in results}
    assert len(lrs) == 3 and all(10**-4.4 <= lr <= 1e-2 for lr in lrs)
    # Optuna made these configs: its study, as Ray saved it beside the trials, holds exactly
    # them (random search saves no such state: restoring fails).
    from ray.tune.search.optuna import OptunaSearch

    (experiment,) = [p.parent for p in tmp_path.glob(f"*/{SWEEP_FILE}")]
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(experiment))
    asked = {(t.params["lr"], t.params["dropout"]) for t in searcher._ot_study.trials}
    assert asked == {(r.config["lr"], r.config["dropout"]) for r in results}


def test_trials_at_once_follow_the_cluster(ray_local):
    """Optuna's concurrency (and the help's promise): the CPUs and GPUs of the cluster, or
    --max-concurrent."""
    import ray

    from musictune.tuning.cluster import Resources

    cpus = int(ray.cluster_resources()["CPU"])
    assert Resources(cpus_per_trial=1).slots() == cpus
    assert Resources(cpus_per_trial=cpus).slots() == 1
    assert Resources(cpus_per_trial=0.5).slots() == 2 * cpus
    assert Resources(max_concurrent=7).slots() == 7
    assert Resources(gpus_per_trial=0.25).slots() == 1  # no GPU here: at least one slot


# --------------------------------------------------------------------------- ties

# Per trial of a sweep, by its index: (val_macro_f1, val_loss) of each epoch. Trials 0, 1, 2 and 4
# tie at the top (0.7). The rule ranks 2 (val_loss 0.5 at its best epoch, epoch 1), 4 (the same
# figures: its id is later; its equal second epoch does not move its best epoch), 1 (loss 0.5 but
# best at epoch 3), 0 (loss 0.9), then 3 (0.65, though it has the lowest loss of all).
TIED = [
    [(0.5, 1.0), (0.7, 0.9), (0.6, 0.8)],
    [(0.6, 0.9), (0.6, 0.7), (0.7, 0.5)],
    [(0.7, 0.5), (0.6, 0.4)],
    [(0.6, 0.2), (0.65, 0.1)],
    [(0.7, 0.5), (0.7, 0.3)],
]


def scripted(epochs: list):
    """A function trainable that builds the trial's real model and saves a real checkpoint every
    epoch, but reports the validation figures of `epochs[trial index]`."""

    def trial(config: dict, data, settings, source=None) -> None:
        import tempfile

        from ray import tune

        from musictune.training.checkpoints import CHECKPOINT_FILE, save_checkpoint
        from musictune.training.loop import TrainState
        from musictune.training.trial import trial_model

        index = int(tune.get_context().get_trial_id().rsplit("_", 1)[1])
        model, state = trial_model(config, data, settings), TrainState()
        for epoch, (f1, loss) in enumerate(epochs[index], 1):
            metrics = {"epoch": epoch, "val_macro_f1": f1, "val_accuracy": f1, "val_loss": loss}
            state.epoch, state.finished = epoch, epoch == len(epochs[index])
            if f1 > state.best_metric:  # as training keeps it: the first epoch of the best
                state.best_metric = state.best_score = f1
                state.best_epoch = epoch
            state.history.append(metrics)
            with tempfile.TemporaryDirectory() as folder:
                save_checkpoint(Path(folder) / CHECKPOINT_FILE, model, None, state, config)
                tune.report(
                    {**metrics, "train_loss": loss, "diverged": 0},
                    checkpoint=tune.Checkpoint.from_directory(folder),
                )

    return trial


def test_tied_trials_rank_by_one_rule_in_summary_report_and_transfer(
    ray_local, fake_root, tmp_path
):
    """The issue's three-way tie at the top: trials.csv's order, the tuned best the sweep tests,
    the trial a report reruns and a transfer's source are the same trial, chosen by one rule."""
    storage = str(tmp_path)
    argv = ["--samples", "5", "--scheduler", "fifo", "--max-epochs", "3", "--no-baseline-train"]
    common = ["--data-dir", str(fake_root), "--storage", storage, "--name", "tied"]
    run_sweep(sweep_options("cnn_spectrogram_beat", *argv, *common), trainable=scripted(TIED))
    table = pd.read_csv(tmp_path / "tied" / TRIALS_FILE, dtype={"trial_id": str})
    index = [int(t.rsplit("_", 1)[1]) for t in table["trial_id"]]
    assert index == [2, 4, 1, 0, 3]
    assert table["best_val_macro_f1"].tolist() == [0.7, 0.7, 0.7, 0.7, 0.65]
    assert table["val_loss_at_best"].tolist() == [0.5, 0.5, 0.5, 0.9, 0.1]
    assert table["best_epoch"].tolist() == [1, 1, 3, 2, 2]
    best = table.loc[0]
    meta = json.loads((tmp_path / "tied" / SWEEP_FILE).read_text())
    assert meta["test"]["tuned"]["trial"] == best["trial_id"]  # the tuned best it tested
    assert meta["test"]["tuned"]["checkpoint_epoch"] == 1
    (exp,), _ = find_experiments(storage, ["tied"])
    assert exp.best_trials(2)["trial_id"].tolist() == table["trial_id"][:2].tolist()
    source = find_source("transfer_energy", "tied", storage, GENRE_CNN_PRESETS)
    assert source.info["source_trial"] == Path(best["path"]).name
    assert source.info["checkpoint_epoch"] == 1
    # A trials.csv from before the rule's columns: the metric, then the trial id.
    old = table.drop(columns=["val_loss_at_best", "val_macro_f1_at_best", "best_epoch"])
    old.to_csv(tmp_path / "tied" / TRIALS_FILE, index=False)
    (exp,), _ = find_experiments(storage, ["tied"])
    assert exp.best_trials(1)["trial_id"].tolist() == [min(table["trial_id"][:4])]


def test_with_select_by_loss_the_lowest_loss_ranks_first_then_the_metric():
    rows = [
        {"trial_id": "a", "best_val_f1": 0.9, "val_loss_at_best": 0.3, "val_f1_at_best": 0.5},
        {"trial_id": "b", "best_val_f1": 0.6, "val_loss_at_best": 0.2, "val_f1_at_best": 0.5,
         "best_epoch": 4},
        {"trial_id": "c", "best_val_f1": 0.6, "val_loss_at_best": 0.2, "val_f1_at_best": 0.5,
         "best_epoch": 2},
        {"trial_id": "d", "best_val_f1": 0.7, "val_loss_at_best": 0.2, "val_f1_at_best": 0.6},
        {"trial_id": "e", "best_val_f1": float("nan"), "val_loss_at_best": float("nan")},
    ]  # fmt: skip
    assert rank_order(rows, "val_f1", "loss") == [3, 2, 1, 0, 4]
    assert rank_order(rows, "val_f1", "metric") == [0, 3, 2, 1, 4]


def test_a_sweep_checks_its_options_once_however_they_were_made(tmp_path, monkeypatch):
    """`make_plan` is the one check of a sweep's options: a command line parsed by the CLI and
    a lab step built in Python are each checked once (and a bad value built in Python is still
    refused there). Counts calls of the real `validate`, which still runs."""
    from dataclasses import replace

    from musictune.commands.lab import BUDGETS, LabOptions, lab_plan, step_options
    from musictune.errors import UserError
    from musictune.tuning.options import SweepOptions

    checked, validate = [], SweepOptions.validate
    monkeypatch.setattr(SweepOptions, "validate", lambda o: checked.append(o.name) or validate(o))
    make_plan(sweep_options("lstm_spectrogram", "--storage", str(tmp_path), "--name", "cli"))
    step = lab_plan()[0]
    lab = step_options(step, LabOptions(budget="smoke"), BUDGETS["smoke"], str(tmp_path), "d")
    make_plan(lab)
    assert checked == ["cli", step.name]
    with pytest.raises(UserError, match="--samples must be at least 1, got 0"):
        make_plan(replace(lab, samples=0))
    with pytest.raises(UserError, match="unknown preset 'nope': choose one of cnn_regression"):
        make_plan(replace(lab, preset="nope"))

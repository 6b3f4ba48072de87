"""Real Ray Tune sweeps on a local Ray: presets, ASHA, Optuna, shared data, TensorBoard, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from musictune import features
from musictune.tuning.plan import make_plan
from musictune.tuning.presets import PRESETS
from musictune.tuning.runner import build_scheduler, run_sweep
from musictune.tuning.storage import SWEEP_FILE, TRIALS_FILE

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

    from musictune.data import load_task
    from musictune.training import fit
    from musictune.trial import trial_model

    spec = PRESETS[preset]
    options = sweep_options(preset, "--smoke-test", "--max-epochs", "1", "--storage", str(tmp_path))
    plan = make_plan(options)
    config = {k: v.sample() if isinstance(v, Domain) else v for k, v in plan.space.items()}
    data = load_task(spec.task, demo_tiny, spec.features, spec.beat)
    view = features.VIEWS[spec.features]
    assert data.train.x.shape[2] == view.stop - view.start
    assert (data.train.x.shape[1] < 20) == spec.beat  # beat-synced tiny clips: a few beats
    model = trial_model(config, data, plan.settings)
    assert 0 <= fit(model, data, plan.settings.train_config(config)).best_metric <= 1


@pytest.mark.parametrize("preset", SWEPT_PRESETS)
def test_presets_run_their_smoke_test(preset, ray_local, demo_tiny, tmp_path):
    run_sweep(sweep_options(preset, "--smoke-test", "--samples", "1", "--storage", str(tmp_path)))
    (experiment,) = tmp_path.iterdir()
    table = pd.read_csv(experiment / TRIALS_FILE)
    assert len(table) == 1 and (table["status"] == "TERMINATED").all()
    assert table["best_val_macro_f1"].between(0, 1).all()
    meta = json.loads((experiment / SWEEP_FILE).read_text())
    assert meta["status"] == "finished" and meta["preset"] == preset
    trial_dirs = [p for p in experiment.iterdir() if p.is_dir()]
    assert all(list(d.glob("events.out.tfevents.*")) for d in trial_dirs)


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

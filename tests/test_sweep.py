"""Real Ray Tune sweeps on a local Ray: presets, ASHA, Optuna, shared data, TensorBoard, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from musictune.tuning.presets import PRESETS
from musictune.tuning.runner import SWEEP_FILE, TRIALS_FILE, run_sweep

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


@pytest.mark.parametrize("preset", GENRE_PRESETS)
def test_every_preset_runs_its_smoke_test(preset, ray_local, demo_tiny, tmp_path):
    run_sweep(sweep_options(preset, "--smoke-test", "--samples", "2", "--storage", str(tmp_path)))
    (experiment,) = tmp_path.iterdir()
    table = pd.read_csv(experiment / TRIALS_FILE)
    assert len(table) == 2 and (table["status"] == "TERMINATED").all()
    assert table["best_val_macro_f1"].between(0, 1).all()
    meta = json.loads((experiment / SWEEP_FILE).read_text())
    assert meta["status"] == "finished" and meta["preset"] == preset
    trial_dirs = [p for p in experiment.iterdir() if p.is_dir()]
    assert all(list(d.glob("events.out.tfevents.*")) for d in trial_dirs)


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


def _finished_trials(experiment: Path) -> set[str]:
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return set()
    try:
        state = json.loads(states[-1].read_text())
    except json.JSONDecodeError:
        return set()
    done = set()
    for raw, _ in state.get("trial_data", []):
        trial = json.loads(raw)
        if trial.get("status") == "TERMINATED":
            done.add(trial["trial_id"])
    return done


def test_resume_after_interrupted_run_reruns_no_finished_trial(ray_local, fake_root, tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "sweeps" / "lstm_spectrogram_beat.py"),
        "--data-dir",
        str(fake_root),
        "--samples",
        "6",
        "--max-epochs",
        "3",
        "--scheduler",
        "fifo",
        "--max-concurrent",
        "1",
        "--storage",
        str(tmp_path),
        "--name",
        "cut",
    ]
    driver = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    experiment = tmp_path / "cut"
    deadline = time.time() + 120
    while time.time() < deadline and len(_finished_trials(experiment)) < 2:
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    finished = _finished_trials(experiment)
    assert 2 <= len(finished) < 6, "the driver should be cut off mid-sweep"
    progress_before = {p.parent.name: p.read_text() for p in experiment.glob("*/progress.csv")}

    results = run_sweep(
        sweep_options(
            "lstm_spectrogram_beat",
            "--data-dir",
            str(fake_root),
            "--resume",
            "--storage",
            str(tmp_path),
            "--name",
            "cut",
        )
    )
    assert len(results) == 6 and not results.errors
    assert all(r.metrics["training_iteration"] == 3 for r in results)
    # Finished trials were not run again: their logs are exactly as before.
    for name, text in progress_before.items():
        if any(t in name for t in finished):
            assert (experiment / name / "progress.csv").read_text() == text
    assert len(pd.read_csv(experiment / TRIALS_FILE)) == 6

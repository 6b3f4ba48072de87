"""Small data done right: crops scored over windows, K-fold selection, no leakage across folds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from musictune import layout
from musictune.data.batches import iterate_batches, iterate_windows, windows
from musictune.data.dataset import Split, load_dataset, load_task
from musictune.training.folds import fit_folds
from musictune.training.loop import TrainConfig, build_model, fit
from musictune.training.scoring import predict

from .conftest import write_layout


def test_windows_cover_every_frame_once_plus_an_end_window():
    clips, offsets, lengths = windows(np.array([10, 4, 3, 8]), 4)
    assert clips.tolist() == [0, 0, 0, 1, 2, 3, 3]
    assert offsets.tolist() == [0, 4, 6, 0, 0, 0, 4]  # 10 = 0-3, 4-7, and 6-9 to reach the end
    assert lengths.tolist() == [4, 4, 4, 4, 3, 4, 4]  # a clip shorter than the crop: itself


@pytest.mark.parametrize("task", ["genre", "regression"])
def test_crop_evaluation_averages_windows_as_by_hand(task):
    """One 10-frame clip, crop 4: the prediction is the mean of its three windows' softmax
    (genre, returned as log-probabilities) or outputs (regression), computed here by hand."""
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(10 + 5, 6)).astype(np.float32)
    y = np.array([1, 0]) if task == "genre" else np.array([0.3, 0.6], np.float32)
    split = Split(frames, np.array([10, 5]), y, np.array(["a", "b"]))
    head = "classifier" if task == "genre" else "regressor"
    from musictune.models import create_model

    model = create_model("lstm", 6, head=head, n_outputs=3, hidden_size=8).eval()
    model.window = 4
    got = predict(model, split, batch_size=2)
    with torch.no_grad():
        first = [
            model(torch.from_numpy(frames[s : s + 4])[None], torch.tensor([4])) for s in (0, 4, 6)
        ]
        second = [
            model(torch.from_numpy(frames[10 + s : 14 + s])[None], torch.tensor([4]))
            for s in (0, 1)
        ]
    for row, outs in ((0, first), (1, second)):
        outs = torch.cat(outs)
        expected = outs.softmax(-1).mean(0).log() if task == "genre" else outs.mean(0)
        assert np.allclose(got[row], expected.numpy(), atol=1e-5)
    assert got.shape[0] == 2  # one row per clip, never per window


def test_training_crops_are_random_windows_inside_each_clip():
    frames = np.arange(30, dtype=np.float32)[:, None].repeat(2, 1)
    split = Split(frames, np.array([20, 10]), np.array([0, 1]), np.array(["a", "b"]))
    seen = set()
    for seed in range(20):
        ((x, lengths, _),) = iterate_batches(split, 2, crop=6, rng=np.random.default_rng(seed))
        assert lengths.tolist() == [6, 6]
        start = int(x[0, 0, 0])
        assert x[0, :, 0].tolist() == list(range(start, start + 6)) and start <= 14
        assert 20 <= x[1, 0, 0] <= 24  # clip b's frames only
        seen.add(start)
    assert len(seen) > 5  # drawn anew, not one fixed window


def _repeated_ids_layout(root):
    """The fake layout with every train track listed twice (one recording cut twice)."""
    write_layout(root)
    for beat in (False, True):
        labels = root / layout.dataset_dirname(layout.GENRE_TASK, beat) / "train_labels.txt"
        head, *rows = labels.read_text().splitlines()
        labels.write_text("\n".join([head, *rows, *rows]) + "\n")
    return root


def test_no_track_sits_on_both_sides_of_a_split_or_fold(tmp_path):
    """Repeated ids (fails with ids ignored: train_test_split puts copies on both sides)."""
    data = load_dataset(_repeated_ids_layout(tmp_path / "data"), folds=3)
    assert len(data.train) + len(data.val) == 90  # 45 kept tracks, each twice
    assert not set(data.train.ids) & set(data.val.ids)
    pool = data.pool()
    for k in range(3):
        inside, outside = set(pool.ids[data.folds == k]), set(pool.ids[data.folds != k])
        assert inside and not inside & outside
        held = np.flatnonzero(data.folds == k)
        batches, clips = iterate_windows(pool, 4, 7, held)
        assert set(clips) == set(range(len(held)))  # every window belongs to a held-out clip
    # Each fold holds every class at least once (stratified).
    assert all(len(set(pool.y[data.folds == k])) == len(data.classes) for k in range(3))


def test_k_fold_trial_is_the_mean_of_k_separate_fits(fake_root):
    """Lockstep K-fold == K plain fits on each fold's data with the same seed, crops included."""
    data = load_task("genre", fake_root, "mel", folds=3)
    config = TrainConfig(lr=3e-3, max_epochs=2, patience=0, batch_size=8, seed=3)
    models = [build_model(data, "lstm", seed=3, window=16, hidden_size=8) for _ in range(3)]
    together = fit_folds(models, data, config)
    pool = data.pool()
    separate = []
    for k in range(3):
        fold = replace(
            data,
            train=pool.subset(np.flatnonzero(data.folds != k)),
            val=pool.subset(np.flatnonzero(data.folds == k)),
            folds=None,
        )
        model = build_model(fold, "lstm", seed=3, window=16, hidden_size=8)
        separate.append(fit(model, fold, config).history)
    for epoch, report in enumerate(together.history):
        for key in ("val_macro_f1", "val_loss", "train_loss"):
            values = [h[epoch][key] for h in separate]
            assert report[key] == pytest.approx(np.mean(values), abs=1e-6)
            assert report[f"{key}_sd"] == pytest.approx(np.std(values, ddof=1), abs=1e-6)
    assert together.best_epoch >= 1 and len(together.best_weights) == 3


def test_k_fold_trial_resumes_from_its_checkpoint_as_if_never_stopped(fake_root, tmp_path):
    """A crashed K-fold trial restarts from save_folds' file: every fold's weights and
    optimiser come back, and the next epochs equal an uninterrupted run's."""
    from musictune.training.checkpoints import load_checkpoint, save_folds

    data = load_task("genre", fake_root, "mel", folds=2)
    config = TrainConfig(lr=3e-3, max_epochs=3, patience=0, batch_size=8, seed=1)

    def models():
        return [build_model(data, "lstm", seed=1, window=16, hidden_size=8) for _ in range(2)]

    whole = fit_folds(models(), data, config)
    path = tmp_path / "checkpoint.pt"

    def save_first(metrics, state, fold_models, optimizers):
        if state.epoch == 1:
            save_folds(path, fold_models, optimizers, state, {"lr": 3e-3})

    fit_folds(models(), data, replace(config, max_epochs=1), on_epoch=save_first)
    resumed = fit_folds(models(), data, config, resume=load_checkpoint(path))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for key in ("val_loss", "train_loss"):
        assert [h[key] for h in resumed.history] == pytest.approx(
            [h[key] for h in whole.history], abs=1e-6
        )


def test_report_says_how_a_k_fold_sweep_chose_and_tested_its_best():
    from musictune.reporting.noise import selection_text

    text = selection_text({"folds": 5, "space": {"crop": 3.0}}, rerun=True)
    assert "5-fold cross-validation" in text and "train/validation split" in text
    assert "random crops (3 s)" in text and "one score per clip" in text
    assert "a fold's model" in selection_text({"folds": 5}, rerun=False)
    assert selection_text({"folds": 0, "space": {"lr": 1e-3}}, rerun=True) == ""

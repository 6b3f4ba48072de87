"""The training core on real files: the loss falls, overfit mode, metrics, resume, divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import f1_score

from musictune.data.dataset import load_dataset, load_task
from musictune.training.checkpoints import load_checkpoint
from musictune.training.loop import TrainConfig, build_model, fit
from musictune.training.metrics import classification_metrics, multitask_metrics, spearman
from musictune.training.scoring import predict


@pytest.fixture
def data(fake_root):
    return load_dataset(fake_root, features="mel")


def test_loss_falls_when_training(data):
    model = build_model(data, "lstm", hidden_size=32)
    state = fit(model, data, TrainConfig(lr=5e-3, max_epochs=3, patience=0, batch_size=8))
    losses = [h["train_loss"] for h in state.history]
    assert losses[-1] < losses[0]
    assert all(
        "val_macro_f1" in h and "val_accuracy" in h and "val_loss" in h for h in state.history
    )


def test_overfit_mode_drives_loss_near_zero(data):
    model = build_model(data, "lstm", hidden_size=64)
    state = fit(
        model,
        data,
        TrainConfig(lr=1e-2, max_epochs=30, patience=0, batch_size=8, overfit_batches=2),
    )
    assert state.history[0]["train_loss"] > 1.0
    assert state.history[-1]["train_loss"] < 0.01


def test_metrics_against_known_values():
    logits = np.eye(3)[[0, 1, 2, 2]]
    y = np.array([0, 1, 1, 2])
    m = classification_metrics(y, logits)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx(f1_score(y, [0, 1, 2, 2], average="macro"))
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 40.0])) == pytest.approx(1)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1)
    mt = multitask_metrics(
        np.array([[0, 0], [1, 1], [2, 3.0]]), np.array([[0, 2], [1, 1], [2, 0.0]]), ("a", "b")
    )
    assert mt["spearman_a"] == pytest.approx(1) and mt["spearman_b"] == pytest.approx(-1)
    assert mt["spearman_mean"] == pytest.approx(0)


def test_resume_from_checkpoint_gives_the_same_state(data, tmp_path):
    config = TrainConfig(lr=3e-3, max_epochs=4, patience=0, batch_size=8, checkpoint_every=2)
    straight = build_model(data, "lstm", hidden_size=16, dropout=0.3)
    fit(straight, data, config)

    first = build_model(data, "lstm", hidden_size=16, dropout=0.3)
    fit(first, data, TrainConfig(**{**config.__dict__, "max_epochs": 2}), checkpoint_dir=tmp_path)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["state"]["epoch"] == 2 and ckpt["model_spec"]["name"] == "lstm"
    resumed = build_model(data, "lstm", hidden_size=16, dropout=0.3)
    state = fit(resumed, data, config, resume=ckpt)
    assert state.epoch == 4
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_fit_keeps_the_best_epochs_weights_in_memory(data, tmp_path):
    """The caller tests the best epoch without a checkpoint folder: `state.best_weights` is that
    epoch's weights (equal to best.pt), while the model ends with the last epoch's; checkpoints
    do not carry the in-memory copy."""
    model = build_model(data, "lstm", hidden_size=16)
    config = TrainConfig(lr=3e-2, max_epochs=12, patience=2, batch_size=16)
    state = fit(model, data, config, checkpoint_dir=tmp_path)
    assert state.best_epoch < state.epoch  # a run whose last epoch is not its best
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["state"]["epoch"] == state.best_epoch and "best_weights" not in best["state"]
    assert state.best_weights.keys() == best["model"].keys()
    assert all(torch.equal(v, best["model"][k]) for k, v in state.best_weights.items())
    last = model.state_dict()
    assert not all(torch.equal(v, last[k]) for k, v in state.best_weights.items())
    # Resumed from the best epoch itself, fit starts with that copy.
    resumed = fit(build_model(data, "lstm", hidden_size=16), data, config, resume=best)
    assert resumed.best_weights is not None


def test_early_stopping_and_best_checkpoint(data, tmp_path):
    model = build_model(data, "lstm", hidden_size=8)
    state = fit(
        model,
        data,
        TrainConfig(lr=1e-9, max_epochs=30, patience=2, batch_size=16),
        checkpoint_dir=tmp_path,
    )
    assert state.epoch < 30 and state.bad_epochs == 2
    assert load_checkpoint(tmp_path / "best.pt")["state"]["epoch"] == state.best_epoch


@pytest.mark.parametrize("select_by", ["metric", "loss"])
def test_select_by_picks_the_epoch_early_stopping_waits_on(data, select_by):
    """The course kept the epoch of lowest validation loss; the default keeps the best metric.
    A high learning rate makes the two disagree on this run (checked, so the test can fail)."""
    model = build_model(data, "lstm", hidden_size=8)
    config = TrainConfig(lr=0.05, max_epochs=12, patience=3, batch_size=16, select_by=select_by)
    state = fit(model, data, config)
    losses = [h["val_loss"] for h in state.history]
    f1s = [h["val_macro_f1"] for h in state.history]
    by_loss, by_metric = losses.index(min(losses)) + 1, f1s.index(max(f1s)) + 1
    assert by_loss != by_metric  # otherwise this run cannot tell the rules apart
    assert state.best_epoch == (by_loss if select_by == "loss" else by_metric)
    assert state.best_metric == f1s[state.best_epoch - 1]
    assert state.epoch - state.best_epoch == state.bad_epochs  # early stopping waits on it


def test_nan_loss_stops_at_once_with_worst_metric(data):
    model = build_model(data, "lstm", hidden_size=8)
    with torch.no_grad():
        model.head.net[1].weight.fill_(float("nan"))
    state = fit(model, data, TrainConfig(max_epochs=5, batch_size=16))
    assert state.epoch == 1
    assert state.history[-1]["diverged"] == 1 and state.history[-1]["val_macro_f1"] == 0.0


def test_regression_and_multitask_fit(fake_root):
    """The reported validation rho is scipy's on the model's own predictions (these targets are
    random draws, so whether it learns is left to test_learning.py on the demo data)."""
    energy = load_task("regression", fake_root, target="energy")
    model = build_model(energy, "cnn", conv_blocks=2)
    state = fit(model, energy, TrainConfig(max_epochs=1))
    predicted = predict(model, energy.val)
    assert predicted.shape == energy.val.y.shape and np.std(predicted) > 0
    expected = spearmanr(energy.val.y, predicted).statistic
    assert state.history[0]["val_spearman"] == pytest.approx(expected)
    multi = load_task("multitask", fake_root)
    model = build_model(multi, "lstm")
    state = fit(model, multi, TrainConfig(max_epochs=1))
    predicted = predict(model, multi.val)
    per = [spearmanr(multi.val.y[:, i], predicted[:, i]).statistic for i in range(3)]
    assert state.history[0]["val_spearman_valence"] == pytest.approx(per[0])
    assert state.history[0]["val_spearman_mean"] == pytest.approx(np.mean(per))

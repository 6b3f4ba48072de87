"""Affect regression, multitask and transfer: loss weights, freezing, and real sweeps on Ray."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from musictune.commands.cli import build_parser, main, sweep_options_from_args
from musictune.data.dataset import load_task
from musictune.errors import UserError
from musictune.layout import AFFECT_TARGETS
from musictune.models import create_model
from musictune.training.affect import (
    check_fits,
    load_backbone,
    loss_weights,
    set_loss_weights,
    transfer_model,
)
from musictune.training.checkpoints import load_checkpoint
from musictune.training.loop import TrainConfig, fit
from musictune.tuning.runner import run_sweep
from musictune.tuning.storage import SWEEP_FILE, TRIALS_FILE

from .conftest import write_layout

GENRE = "genre-cnn"
# With this seed the first two transfer trials draw freeze_backbone True and False.
TRANSFER_SEED = "2"
# Two trials, one after the other in one reused actor: starting actors is what costs here.
SMALL = ["--smoke-test", "--samples", "2", "--max-concurrent", "1"]


def affect_options(preset: str, *argv: str):
    """Parse a sweep command line as `musictune sweep` does, affect flags included."""
    return sweep_options_from_args(build_parser().parse_args(["sweep", preset, *argv]))


def backbone(state: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("backbone.")}


def last_checkpoint(result) -> dict:
    """A trial's latest checkpoint, through Ray's Result."""
    with result.checkpoint.as_directory() as folder:
        return load_checkpoint(folder)


def genre_checkpoint(conv_blocks: int = 2, n_features: int = 128, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = create_model(
        "cnn", n_features, head="classifier", n_outputs=10, conv_blocks=conv_blocks
    )
    return {"model": model.state_dict(), "model_spec": model.spec}


# --------------------------------------------------------------------------- no Ray


def test_multitask_loss_is_the_weighted_sum_of_per_target_mses():
    model = create_model("cnn", 16, head="multitask", n_outputs=3, conv_blocks=1)
    config = {"loss_weight_valence": 1.0, "loss_weight_energy": 2.0, "loss_weight_danceability": 1}
    set_loss_weights(model, config, AFFECT_TARGETS)
    weights = model.head.weights
    assert torch.allclose(weights, torch.tensor([0.75, 1.5, 0.75]))  # relative, mean 1
    out, y = torch.randn(32, 3), torch.rand(32, 3)
    expected = sum(weights[i] * F.mse_loss(out[:, i], y[:, i]) for i in range(3))
    assert torch.allclose(model.loss(out, y), expected)
    assert not torch.allclose(model.loss(out, y), F.mse_loss(out, y) * 3)  # weights matter
    # Default: equal weights, i.e. the plain sum of the three MSEs.
    assert torch.equal(loss_weights({}, AFFECT_TARGETS), torch.ones(3))
    with pytest.raises(UserError, match="positive"):
        loss_weights({"loss_weight_energy": 0.0}, AFFECT_TARGETS)


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_backbone_keeps_weights_and_batchnorm_stats_while_head_trains(fake_root, freeze):
    data = load_task("regression", fake_root, "mel", beat=True, target="energy")
    source = genre_checkpoint()
    model = transfer_model(source, data.n_features, dropout=0.1, freeze=freeze)
    # Transfer starts from the genre weights, BatchNorm statistics included.
    for key, value in backbone(model.state_dict()).items():
        assert torch.equal(value, source["model"][key]), key
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, data, TrainConfig(lr=1e-2, max_epochs=2, batch_size=16, patience=0))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert {"head.net.1.weight", "head.net.1.bias"} <= changed
    moved = {k for k in changed if k.startswith("backbone.")}
    if freeze:
        assert not moved
    else:  # the same check fails for a fine-tuned backbone: weights and running stats move
        assert "backbone.blocks.0.0.weight" in moved and "backbone.blocks.0.1.running_mean" in moved


def test_a_checkpoint_that_does_not_fit_is_refused():
    model = create_model("cnn", 128, head="regressor", n_outputs=1, conv_blocks=3)
    with pytest.raises(UserError, match=r"\(cnn, 2 conv blocks\) does not fit .*3 conv blocks"):
        load_backbone(model, genre_checkpoint(conv_blocks=2))
    with pytest.raises(UserError, match="trained on 128 features per frame.*has 140"):
        check_fits(genre_checkpoint(), 140)
    lstm = create_model("lstm", 128)
    with pytest.raises(UserError, match="'lstm' model, not a CNN"):
        check_fits({"model": lstm.state_dict(), "model_spec": lstm.spec}, 128)


# --------------------------------------------------------------------------- sweeps


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_layout(tmp_path_factory.mktemp("affect") / "data")


@pytest.fixture(scope="module")
def genre_sweep(ray_local, data_root, tmp_path_factory) -> Path:
    """A finished genre CNN smoke sweep: the source of every transfer test."""
    storage = tmp_path_factory.mktemp("results")
    argv = [*SMALL, "--max-epochs", "1", "--data-dir", str(data_root)]
    run_sweep(affect_options("cnn_spectrogram", *argv, "--storage", str(storage), "--name", GENRE))
    return storage


def test_transfer_sweep_starts_from_the_genre_checkpoint(genre_sweep, data_root):
    storage = str(genre_sweep)
    options = affect_options(
        "transfer_energy",
        "--from-sweep",
        GENRE,
        *SMALL,
        "--scheduler",
        "fifo",
        "--seed",
        TRANSFER_SEED,
        "--data-dir",
        str(data_root),
        "--storage",
        storage,
        "--name",
        "transfer",
    )
    results = run_sweep(options)
    meta = json.loads((genre_sweep / "transfer" / SWEEP_FILE).read_text())
    assert (meta["task"], meta["target"], meta["metric"]) == (
        "regression",
        "energy",
        "val_spearman",
    )
    assert meta["model"] == "cnn" and meta["features"] == "mel" and not meta["beat"]
    assert meta["transfer"]["source_sweep"] == GENRE
    # The source is a best trial of the genre sweep (Ray's result API breaks ties).
    genre = pd.read_csv(genre_sweep / GENRE / TRIALS_FILE)
    best = genre[genre["best_val_macro_f1"] == genre["best_val_macro_f1"].max()]
    assert meta["transfer"]["source_trial"] in {Path(p).name for p in best["path"]}
    assert meta["transfer"]["source_best"] == pytest.approx(best["best_val_macro_f1"].iloc[0])
    source = load_checkpoint(meta["transfer"]["source_checkpoint"])

    table = pd.read_csv(genre_sweep / "transfer" / TRIALS_FILE)
    assert len(table) == 2 and (table["status"] == "TERMINATED").all()
    assert set(table["freeze_backbone"]) == {True, False}
    assert table["best_val_spearman"].between(-1, 1).all()
    assert meta["transfer"]["conv_blocks"] == source["model_spec"]["conv_blocks"]
    # The trial config holds hyperparameters only: the view and the source live in sweep.json.
    assert not {"conv_blocks", "source_sweep", "features", "beat", "model"} & set(table)
    for result in results:
        trained = backbone(last_checkpoint(result)["model"])
        same = all(torch.equal(v, source["model"][k]) for k, v in trained.items())
        assert same == result.config["freeze_backbone"]  # frozen: the genre weights, untouched


def test_each_affect_preset_runs_its_smoke_test(ray_local, data_root, tmp_path):
    common = [*SMALL, "--data-dir", str(data_root)]
    runs = {
        "cnn_regression": [],
        "lstm_regression": ["--target", "valence", "--features", "fused"],
        "multitask": ["--loss-weights", "1", "2", "1", "--full"],
    }
    expected = {  # affect presets default to beat-synced mel, as the course trained them
        "cnn_regression": ("regression", "energy", "val_spearman", "mel", True),
        "lstm_regression": ("regression", "valence", "val_spearman", "fused", True),
        "multitask": ("multitask", None, "val_spearman_mean", "mel", False),
    }
    for preset, extra in runs.items():
        results = run_sweep(
            affect_options(preset, *common, *extra, "--storage", str(tmp_path), "--name", preset)
        )
        meta = json.loads((tmp_path / preset / SWEEP_FILE).read_text())
        got = (meta["task"], meta["target"], meta["metric"], meta["features"], meta["beat"])
        assert got == expected[preset] and meta["status"] == "finished"
        table = pd.read_csv(tmp_path / preset / TRIALS_FILE)
        assert len(table) == 2 and (table["status"] == "TERMINATED").all()
        assert table[f"best_{meta['metric']}"].between(-1, 1).all()
        if preset == "multitask":
            assert meta["targets"] == list(AFFECT_TARGETS)
            assert meta["loss_weights"] == {"valence": 1.0, "energy": 2.0, "danceability": 1.0}
            for t in AFFECT_TARGETS:
                assert table[f"best_val_spearman_{t}"].between(-1, 1).all()
            mean = table[[f"last_val_spearman_{t}" for t in AFFECT_TARGETS]].mean(axis=1)
            assert np.allclose(mean, table["last_val_spearman_mean"])
            # The trials trained with the requested weights (scaled to mean 1).
            saved = [r for r in results if r.checkpoint]  # ASHA may stop one before saving
            assert saved
            for result in saved:
                head = last_checkpoint(result)["model"]["head.weights"]
                assert torch.allclose(head, torch.tensor([0.75, 1.5, 0.75]))


# --------------------------------------------------------------------------- bad input


def one_error_line(capsys, argv: list[str]) -> str:
    code = main(["sweep", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_affect_input_is_one_line_and_exit_2(genre_sweep, data_root, capsys):
    storage = ["--storage", str(genre_sweep), "--data-dir", str(data_root), "--smoke-test"]
    # An unknown target: argparse's one-line usage error.
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "cnn_regression", "--target", "joy"])
    assert exc.value.code == 2
    assert "invalid choice: 'joy'" in capsys.readouterr().err
    assert "no sweep 'missing'" in one_error_line(
        capsys, ["transfer_energy", "--from-sweep", "missing", *storage]
    )
    assert "needs --from-sweep" in one_error_line(capsys, ["transfer_energy", *storage])
    assert "multitask trains valence" in one_error_line(
        capsys, ["multitask", "--target", "energy", *storage]
    )
    # A genre sweep of another model, and one whose checkpoint does not fit the energy data.
    for name, edit, message in [
        ("not-cnn", {"model": "lstm"}, "is a genre lstm sweep"),
        ("other-view", {"features": "fused"}, "trained on 128 features per frame"),
    ]:
        shutil.copytree(genre_sweep / GENRE, genre_sweep / name)
        meta_file = genre_sweep / name / SWEEP_FILE
        meta_file.write_text(json.dumps(json.loads(meta_file.read_text()) | edit))
        assert message in one_error_line(
            capsys, ["transfer_energy", "--from-sweep", name, *storage]
        )

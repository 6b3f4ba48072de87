"""Baselines beside the tuned best: chance rows by hand and against scikit-learn, the untuned
default, the sweep's end-of-run test table and sweep.json "test", and the report's table.

One module-scoped fixture makes two reports (2 seeds x 2 epochs, and --no-rerun) of the session's
small genre sweep (conftest's `genre_sweep`: 2 trials x 2 epochs on random data in the real
layout); the rest run without Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score

from musictune.data.dataset import Dataset, Split, load_task
from musictune.reporting.html import UNDEFINED, figures_cell
from musictune.training import baselines
from musictune.training.baselines import Figures
from musictune.training.checkpoints import load_checkpoint
from musictune.training.loop import TrainConfig, build_model, fit
from musictune.tuning.experiments import RERUN_DIR, SWEEP_FILE
from musictune.tuning.rerun import DONE_FILE
from musictune.tuning.summary import compare_on_test, text_table

from .conftest import new_report, sweep_options

ROWS = {
    "tuned": "tuned best",
    "default": "untuned default",
    "majority": "majority class",
    "stratified": "stratified random",
}


def split(y) -> Split:
    y = np.asarray(y)
    n = len(y)
    return Split(np.zeros((2 * n, 3), np.float32), np.full(n, 2), y, np.arange(n).astype(str))


def genre_data(train_y, test_y, classes=("a", "b", "c")) -> Dataset:
    return Dataset(
        "genre", "mel", False, split(train_y), split(train_y), split(test_y), tuple(classes)
    )


def affect_data(train_y, test_y, targets) -> Dataset:
    train = split(np.asarray(train_y, np.float32))
    task = "regression" if len(targets) == 1 else "multitask"
    test = split(np.asarray(test_y, np.float32))
    return Dataset(task, "mel", False, train, train, test, (), targets)


# --------------------------------------------------------------------------- chance, no Ray


def test_majority_class_against_a_hand_count():
    # Train: class 0 three times, 1 twice, 2 once -> always predict 0.
    data = genre_data([0, 0, 0, 1, 1, 2], [0, 1, 1, 2, 0])
    row = baselines.majority_class(data)
    assert row.note == "a" and len(row.runs) == 1
    # Test: 2 of 5 clips are class 0. Precision of "a" 2/5, recall 2/2; F1 of b and c is 0.
    precision, recall = 2 / 5, 1.0
    f1_a = 2 * precision * recall / (precision + recall)
    assert row.runs[0]["accuracy"] == pytest.approx(2 / 5)
    assert row.runs[0]["macro_f1"] == pytest.approx(f1_a / 3)
    assert figures_cell(row, "accuracy") == "0.400"


def test_stratified_guessing_matches_scikit_learn_seed_by_seed(fake_root):
    data = load_task("genre", fake_root, "mel", False)
    seeds = [3, 4, 5]
    row = baselines.stratified_random(data, seeds)
    expected = []
    for seed in seeds:
        dummy = DummyClassifier(strategy="stratified", random_state=seed)
        dummy.fit(np.zeros((len(data.train), 1)), data.train.y)
        guess = dummy.predict(np.zeros((len(data.test), 1)))
        expected.append(
            (
                accuracy_score(data.test.y, guess),
                f1_score(data.test.y, guess, average="macro", zero_division=0),
            )
        )
    assert row.seeds == seeds and row.note == "seeds 3-5"
    assert row.values("accuracy") == pytest.approx([a for a, _ in expected])
    assert row.values("macro_f1") == pytest.approx([f for _, f in expected])
    f1s = [f for _, f in expected]
    mean, sd = row.mean_sd("macro_f1")
    assert mean == pytest.approx(np.mean(f1s)) and sd == pytest.approx(np.std(f1s, ddof=1))
    assert figures_cell(row, "macro_f1") == f"{np.mean(f1s):.3f} ± {np.std(f1s, ddof=1):.3f}"


def test_training_mean_gives_its_mse_and_no_made_up_spearman():
    one = affect_data([0.1, 0.3, 0.5], [0.2, 0.6], ("energy",))  # one target: regression
    (row,) = baselines.chance_baselines(one, [0, 1, 2])
    assert row.key == "train_mean" and len(row.runs) == 1
    assert row.runs[0]["mse"] == pytest.approx(((0.2 - 0.3) ** 2 + (0.6 - 0.3) ** 2) / 2)
    assert row.runs[0]["spearman"] is None  # undefined for a constant prediction
    assert figures_cell(row, "spearman") == UNDEFINED
    assert row.as_json(["spearman", "mse"])["mean"]["spearman"] is None
    # Two targets: per-target and overall MSE from the per-target training means (0.2, 0.6).
    two = affect_data([[0.1, 0.5], [0.3, 0.7]], [[0.2, 0.6], [0.4, 0.4]], ("valence", "energy"))
    (row,) = baselines.chance_baselines(two, [0])
    assert row.runs[0]["mse_valence"] == pytest.approx((0.0**2 + 0.2**2) / 2)
    assert row.runs[0]["mse_energy"] == pytest.approx((0.0**2 + 0.2**2) / 2)
    assert row.runs[0]["mse"] == pytest.approx(0.02)
    assert row.runs[0]["spearman_mean"] is None and row.runs[0]["spearman_valence"] is None
    assert baselines.shown_metrics(two) == [
        "spearman_valence",
        "spearman_energy",
        "spearman_mean",
        "mse",
    ]


# --------------------------------------------------------------------------- the default, no Ray


def test_untuned_defaults_are_those_of_musictune_train(fake_root):
    from musictune.commands.cli import build_parser
    from musictune.commands.train import family_model, train_options
    from musictune.models import list_models

    data = load_task("genre", fake_root, "mel", True)
    for name in list_models():
        options = train_options(build_parser().parse_args(["train", "--model", name]))
        assert (options.lr, options.dropout) == (1e-3, 0.2)
        spec = family_model(options, data).spec
        values = baselines.default_hyperparameters(name)
        assert values == {"lr": 1e-3, "dropout": 0.2, **{k: spec[k] for k in values if k in spec}}
        assert spec["dropout"] == values["dropout"]


def test_default_config_replaces_tuned_values_only():
    trial = {"lr": 0.004, "dropout": 0.7, "num_layers": 2, "hidden_size": 32,
             "bidirectional": True, "model": "lstm", "seed": 7, "max_epochs": 9}  # fmt: skip
    config = baselines.default_config(trial, {"model": "lstm"})
    assert config == trial | {"lr": 1e-3, "dropout": 0.2, "num_layers": 1, "hidden_size": 64,
                              "bidirectional": False}  # fmt: skip
    transfer = {"lr": 0.004, "dropout": 0.7, "freeze_backbone": True, "conv_blocks": 2}
    config = baselines.default_config(transfer, {"model": "cnn", "transfer": {"x": 1}})
    assert config == {"lr": 1e-3, "dropout": 0.2, "freeze_backbone": False, "conv_blocks": 2}
    weights = {"lr": 0.01, "dropout": 0.5, "conv_blocks": 2, "loss_weight_energy": 3.0}
    assert baselines.default_config(weights, {"model": "cnn", "loss_weights": "tuned"}) == {
        "lr": 1e-3, "dropout": 0.2, "conv_blocks": 4, "loss_weight_energy": 1.0}  # fmt: skip
    fixed = baselines.default_config(weights, {"model": "cnn", "loss_weights": {"energy": 3.0}})
    assert fixed["loss_weight_energy"] == 3.0  # the user's weights were not tuned


def test_trained_default_is_tested_at_its_best_epoch(fake_root, tmp_path):
    """Same figures as `fit` with best.pt written and reloaded (how `musictune train` tests)."""
    import torch

    from musictune.models import model_kwargs
    from musictune.training.evaluation import evaluate_model

    data = load_task("regression", fake_root, "mel", True, target="energy")
    # A high learning rate, so that the best epoch is not the last one (epoch 2 of 6 here).
    from musictune.models import get_family
    from musictune.training.trial import TrialSettings

    config = {"lr": 0.05, "dropout": 0.2, "conv_blocks": 2, "seed": 3, "batch_size": 16}
    settings = TrialSettings(get_family("cnn"), max_epochs=6, patience=0)
    run = baselines.train_default(data, config, settings)
    assert run.epochs == 6 and run.best_epoch < 6
    assert run.figures.seeds == [3] and set(run.figures.runs[0]) >= {"spearman", "mse"}

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model(data, "cnn", seed=3, **model_kwargs("cnn", config))
        settings = TrainConfig(lr=0.05, max_epochs=6, patience=0, batch_size=16, seed=3)
        state = fit(model, data, settings, checkpoint_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert state.best_epoch == run.best_epoch
    model.load_state_dict(load_checkpoint(tmp_path / "best.pt")["model"])
    expected = evaluate_model(model, data, 3, "regression").metrics
    assert run.figures.runs[0] == pytest.approx(expected)


def test_text_table_is_aligned():
    rows = [
        Figures("tuned", "tuned best", [{"accuracy": 0.5, "macro_f1": 0.25}], [0], "trial x"),
        Figures("default", "untuned default", note="not trained: --no-baseline-train"),
        Figures("stratified", "stratified random", [{"accuracy": 0.1, "macro_f1": 0.05}] * 2),
    ]
    lines = text_table(rows, ["accuracy", "macro_f1"]).splitlines()
    assert lines[0].split() == ["accuracy", "macro", "F1"]
    assert lines[2].startswith("untuned default (not trained: --no-baseline-train)")
    assert lines[2].endswith(" -") and lines[3].endswith("0.050 ± 0.000")
    assert len({len(line) for line in lines}) == 1  # every column lines up


# --------------------------------------------------------------------------- one sweep, two reports


@pytest.fixture(scope="module")
def swept(genre_sweep):
    """The session's small genre sweep (conftest) and two reports of it."""
    storage = genre_sweep["storage"]
    args = ["--storage", str(storage), "--out", str(storage.parent / "reports")]
    rerun = new_report(*args, "--seeds", "2", "--rerun-max-epochs", "2")
    no_rerun = new_report(*args, "--no-rerun")
    return {**genre_sweep, "rerun": rerun, "no_rerun": no_rerun}


def summary_row(folder: Path) -> dict:
    (row,) = json.loads((folder / "summary.json").read_text())["experiments"]
    return row


def test_sweep_prints_the_test_table_and_stores_it_in_sweep_json(swept):
    meta = json.loads((swept["storage"] / "genre" / SWEEP_FILE).read_text())
    test = meta["test"]
    data = swept["data"]
    assert test["clips"] == len(data.test) and test["metrics"] == ["accuracy", "macro_f1"]
    # The tuned best: its recorded checkpoint, tested again by hand.
    checkpoint = load_checkpoint(test["tuned"]["checkpoint"])
    assert checkpoint["state"]["epoch"] == test["tuned"]["checkpoint_epoch"]
    from musictune.training.evaluation import evaluate_checkpoint

    again = evaluate_checkpoint(test["tuned"]["checkpoint"], data, 5, "genre").metrics
    assert test["tuned"]["values"]["macro_f1"] == pytest.approx([again["macro_f1"]])
    # The untuned default: trained with the sweep's seed and budget, the defaults in place.
    default = test["default"]
    assert default["seeds"] == [5] and default["config"]["seed"] == 5
    assert meta["max_epochs"] == 2 and default["epochs"] <= 2
    defaults = baselines.default_hyperparameters("lstm")
    assert {k: default["config"][k] for k in defaults} == defaults
    # Chance: the same numbers as the library functions on the same data, seeds 5-7.
    majority = baselines.majority_class(data)
    assert test["majority"]["values"] == {m: majority.values(m) for m in test["metrics"]}
    stratified = baselines.stratified_random(data, [5, 6, 7])
    assert test["stratified"]["seeds"] == [5, 6, 7]
    assert test["stratified"]["values"]["macro_f1"] == pytest.approx(stratified.values("macro_f1"))
    # The printed table shows those numbers, between the top 5 and the next steps.
    printed = swept["printed"]
    assert "training the untuned default for comparison" in printed
    table = printed.split("the tuned best beside baselines\n", 1)[1].split("\nexperiment:")[0]
    lines = table.strip().splitlines()
    assert lines[-4].startswith("tuned best (trial ")
    assert lines[-3].startswith("untuned default (seed 5, best epoch ")
    assert lines[-2].startswith(f"majority class ({majority.note})")
    assert lines[-1].startswith("stratified random (seeds 5-7)")
    assert lines[-5].split() == ["accuracy", "macro", "F1"]
    for line, key in zip(lines[-4:], ["tuned", "default", "majority", "stratified"]):
        mean, sd = test[key]["mean"]["macro_f1"], test[key]["sd"]["macro_f1"]
        assert line.endswith(f"{mean:.3f}" + ("" if sd is None else f" ± {sd:.3f}"))
    assert printed.index("top 5 of") < printed.index("beside baselines")
    # The report's command works from any folder and any install (not only a checkout).
    report = f"next:  tensorboard --logdir {swept['storage'] / 'genre'}\n" + (
        f"       musictune report --storage {swept['storage']} --sweep genre\n"
    )
    assert printed.index("beside baselines") < printed.index(report)


def test_sweep_comparison_without_training_the_default(swept, capsys, tmp_path):
    from musictune.tuning.plan import make_plan

    argv = ["--smoke-test", "--no-baseline-train", "--storage", str(tmp_path)]
    plan = make_plan(sweep_options("lstm_spectrogram", *argv))
    assert not plan.options.baseline_train
    test = compare_on_test(swept["results"], swept["data"], plan, {"model": "lstm"})
    out = capsys.readouterr().out
    assert "training the untuned default" not in out
    assert "untuned default (not trained: --no-baseline-train)" in out
    assert test["default"]["n"] == 0 and test["majority"]["n"] == 1


def test_report_table_agrees_with_per_seed_csvs_and_summary(swept):
    folder, data = swept["rerun"], swept["data"]
    row = summary_row(folder)
    assert row["default_retrained"] and row["baseline_seeds"] == [5, 6]
    tuned = pd.read_csv(folder / "genre" / f"{row['tested_trial']}-test.csv")
    default = pd.read_csv(folder / "genre" / "default-test.csv")
    per_seed = pd.read_csv(folder / "genre" / "baselines.csv")
    for metric in ("accuracy", "macro_f1"):
        assert row[f"tuned_test_{metric}_values"] == pytest.approx(tuned[metric].tolist())
        assert row[f"default_test_{metric}_values"] == pytest.approx(default[metric].tolist())
        assert row[f"default_test_{metric}"] == pytest.approx(default[metric].mean())
        assert row[f"default_test_{metric}_sd"] == pytest.approx(default[metric].std(ddof=1))
        for key in ("tuned", "default", "majority", "stratified"):
            values = per_seed.loc[per_seed["row"] == key, metric].tolist()
            assert row[f"{key}_test_{metric}_values"] == pytest.approx(values), key
    assert default["seed"].tolist() == tuned["seed"].tolist() == [5, 6]
    assert row["tuned_test_macro_f1_values"] == pytest.approx(row["test_values"])
    # Chance rows by the library, on the same seeds as the reruns.
    stratified = baselines.stratified_random(data, [5, 6])
    assert row["stratified_test_macro_f1_values"] == pytest.approx(stratified.values("macro_f1"))
    assert row["majority_class"] == baselines.majority_class(data).note
    # The rendered table shows the summary's numbers.
    markdown = (folder / "index.md").read_text()
    section = markdown.split("### Tuned best against baselines (test split)")[1]
    for key, label in ROWS.items():
        line = next(s for s in section.splitlines() if s.startswith(f"| {label}"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        for metric, cell in zip(("accuracy", "macro_f1"), cells[2:]):
            figures = Figures(key, label, [{metric: v} for v in row[f"{key}_test_{metric}_values"]])
            assert cell == figures_cell(figures, metric), (key, metric)
    assert "| untuned default" in (folder / "index.html").read_text().replace("<td >", "| ")
    # The cross-sweep table carries the default and chance beside the tuned best.
    assert f"{row['default_test_macro_f1']:.3f} ± " in markdown.split("## Course")[0]
    assert "majority " in markdown.split("## Course")[0]
    # The default rerun is one more cached rerun, of the default config.
    (done,) = (swept["storage"] / "genre" / RERUN_DIR).glob(f"default-*/{DONE_FILE}")
    recorded = json.loads(done.read_text())
    assert recorded["seeds"] == [5, 6] and recorded["config"]["lr"] == 1e-3
    csv = pd.read_csv(folder / "summary.csv")
    assert csv.loc[0, "default_test_macro_f1"] == pytest.approx(row["default_test_macro_f1"])


def test_no_rerun_report_has_chance_rows_and_says_the_default_was_not_retrained(swept):
    folder = swept["no_rerun"]
    row = summary_row(folder)
    assert not row["default_retrained"] and row["default_test_macro_f1_values"] == []
    assert row["baseline_seeds"] == [5, 6, 7]  # the seeds reruns would use (K = 3)
    assert row["majority_test_macro_f1"] == pytest.approx(
        baselines.majority_class(swept["data"]).runs[0]["macro_f1"]
    )
    markdown = (folder / "index.md").read_text()
    assert "untuned default (not retrained: --no-rerun)" in markdown
    assert "| not retrained |" in markdown  # the cross-sweep column
    assert not (folder / "genre" / "default-test.csv").exists()

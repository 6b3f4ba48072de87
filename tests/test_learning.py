"""Learning, not just running: on the tiny demo data, trained models beat chance on the test split,
and the very same checks fail when the training labels are shuffled.

Each check is parametrised by `shuffle`: with real labels the model must clear the stated margin
over chance; with the train split's labels permuted (validation and test keep theirs) it must
not. So the suite itself shows that the check can fail, and that it measures what was learnt from
the labels rather than something a model picks up from the features alone.

Chance is computed from the data: scikit-learn's DummyClassifier (majority class, and stratified
random guessing averaged over 100 draws) for genres, the training mean for affect. Models are
scored on their last epoch's weights (no early stopping): validation keeps its real labels, so
picking the best epoch there could lend a shuffled-label model a lucky epoch. Each score is the
mean over three training seeds, so that one initialisation neither makes nor breaks it.

The margins were set from measurements on two versions of the tiny demo set (generator v1 and
the current v2: 20 genre test clips, so one clip is 0.05 accuracy, and 12 affect test clips);
each test's docstring gives the figures. After the demo generator changes, rerun
`python -m pytest tests/test_learning.py -rP`: it prints the measured values beside the bars.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score

from musictune.data.dataset import Dataset, load_task
from musictune.models import MusicModel
from musictune.training.loop import TrainConfig, build_model, fit
from musictune.training.scoring import evaluate

SEEDS = (0, 1, 2)
SHUFFLE_SEED = 0

# Genre: a 2-block CNN on beat-synced mel + chroma, 8 epochs (about 0.8 s a seed on one thread).
GENRE_MODEL = {"conv_blocks": 2, "dropout": 0.3}
GENRE_TRAINING = TrainConfig(lr=3e-3, max_epochs=8, batch_size=16, patience=0)
ACCURACY_MARGIN = 0.025  # over the better dummy's test accuracy (majority class: 0.30 on v2)
MACRO_F1_MARGIN = 0.06  # over the better dummy's test macro F1 (stratified: 0.08 on v2)

# Affect: an LSTM on beat-synced mel + chroma predicting energy, 10 epochs (about 0.3 s a seed).
AFFECT_MODEL = {"hidden_size": 64, "dropout": 0.0}
AFFECT_TRAINING = TrainConfig(lr=3e-3, max_epochs=10, batch_size=16, patience=0)
SPEARMAN_MIN = 0.5  # a constant (the mean) has no rank order: its rho counts as 0
MSE_RATIO_MAX = 0.6  # test MSE at most this share of the mean predictor's


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Short, repeatable runs that leave the second core to the rest of the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shuffle_train_labels(data: Dataset, seed: int = SHUFFLE_SEED) -> Dataset:
    """The data set with the train split's labels permuted: same label counts, no signal."""
    y = np.random.default_rng(seed).permutation(data.train.y)
    return replace(data, train=replace(data.train, y=y))


def trained(
    data: Dataset,
    model_name: str,
    options: dict,
    config: TrainConfig,
    seed: int,
) -> MusicModel:
    """Regression heads start at the training mean (`build_model`): from a zero bias, LSTMs
    trained on shuffled energy labels reached test rho up to 0.9 on the demo data and would have
    passed the affect check below (24 runs per tiny-set version)."""
    model = build_model(data, model_name, seed=seed, **options)
    fit(model, data, replace(config, seed=seed))
    return model


def dummy_chance(data: Dataset) -> dict[str, float]:
    """Test accuracy and macro F1 of the better DummyClassifier for each: majority class, or
    stratified guessing (mean over 100 draws)."""
    x_train, x_test = np.zeros((len(data.train), 1)), np.zeros((len(data.test), 1))
    scores: dict[str, list[tuple[float, float]]] = {"most_frequent": [], "stratified": []}
    for strategy, draws in (("most_frequent", 1), ("stratified", 100)):
        for state in range(draws):
            dummy = DummyClassifier(strategy=strategy, random_state=state).fit(
                x_train, data.train.y
            )
            guess = dummy.predict(x_test)
            scores[strategy].append(
                (
                    accuracy_score(data.test.y, guess),
                    f1_score(data.test.y, guess, average="macro", zero_division=0),
                )
            )
    means = [np.mean(s, axis=0) for s in scores.values()]
    return {
        "accuracy": float(max(m[0] for m in means)),
        "macro_f1": float(max(m[1] for m in means)),
    }


@pytest.mark.parametrize("shuffle", [False, True], ids=["real-labels", "shuffled-labels"])
def test_genre_model_beats_chance_on_test(demo_tiny, shuffle: bool) -> None:
    """A genre CNN beats both dummies on the test split: accuracy by ACCURACY_MARGIN and macro F1
    by MACRO_F1_MARGIN (means over 3 seeds). With shuffled training labels the same check fails,
    as this test asserts for `shuffle=True`.

    Measured on 20 test clips, tiny set v2 (current) / v1. Chance: accuracy 0.300 / 0.211
    (majority class), macro F1 0.077 / 0.083 (stratified). Real labels, this test: accuracy
    0.367 / 0.298, macro F1 0.196 / 0.177; single seeds 0-5 (v2): accuracy 0.35-0.40, macro F1
    0.155-0.226. Shuffled labels, this test with permutations 0-5: accuracy <= 0.250 / 0.263,
    macro F1 <= 0.067 / 0.127; single runs (v2, 18): accuracy <= 0.25, macro F1 <= 0.071.
    Accuracy on 20 clips moves in steps of 0.05, so macro F1 is the sharper of the two checks.
    """
    data = load_task("genre", demo_tiny, "fused", beat=True)
    chance = dummy_chance(data)
    train_on = shuffle_train_labels(data) if shuffle else data
    runs = [
        evaluate(trained(train_on, "cnn", GENRE_MODEL, GENRE_TRAINING, seed), data.test)
        for seed in SEEDS
    ]
    accuracy = float(np.mean([r["accuracy"] for r in runs]))
    macro_f1 = float(np.mean([r["macro_f1"] for r in runs]))
    bars = {
        "accuracy": chance["accuracy"] + ACCURACY_MARGIN,
        "macro_f1": chance["macro_f1"] + MACRO_F1_MARGIN,
    }
    clears = accuracy >= bars["accuracy"] and macro_f1 >= bars["macro_f1"]
    report = (
        f"{'shuffled' if shuffle else 'real'} labels: test accuracy {accuracy:.3f} "
        f"(chance {chance['accuracy']:.3f}, bar {bars['accuracy']:.3f}), macro F1 "
        f"{macro_f1:.3f} (chance {chance['macro_f1']:.3f}, bar {bars['macro_f1']:.3f})"
    )
    print(report)
    assert clears != shuffle, report


@pytest.mark.parametrize("shuffle", [False, True], ids=["real-labels", "shuffled-labels"])
def test_energy_model_beats_the_mean_predictor_on_test(demo_tiny, shuffle: bool) -> None:
    """An energy LSTM beats the mean predictor on the test split: Spearman's rho >= SPEARMAN_MIN
    (the mean's rho is undefined, i.e. 0) and MSE <= MSE_RATIO_MAX x the mean's (means over 3
    seeds). With shuffled training labels the same check fails, as this test asserts for
    `shuffle=True`.

    Measured on 12 test clips, tiny set v2 (current) / v1. Real labels, this test: rho 0.925 /
    0.841, MSE 0.24 / 0.30 x the mean predictor's; single seeds 0-5: rho 0.83-0.95 / 0.73-0.88,
    MSE 0.20-0.42 / 0.23-0.47 x. Shuffled labels, this test with permutations 0-5: rho <= 0.14 /
    0.26, MSE >= 1.07 / 1.07 x; single runs (24): rho <= 0.47 / 0.50, MSE >= 0.76 / 0.85 x.
    """
    data = load_task("regression", demo_tiny, "fused", beat=True, target="energy")
    mean_mse = float(np.mean((np.mean(data.train.y) - data.test.y) ** 2))
    train_on = shuffle_train_labels(data) if shuffle else data
    runs = [
        evaluate(
            trained(train_on, "lstm", AFFECT_MODEL, AFFECT_TRAINING, seed),
            data.test,
        )
        for seed in SEEDS
    ]
    rho = float(np.mean([r["spearman"] for r in runs]))
    mse_ratio = float(np.mean([r["loss"] for r in runs])) / mean_mse  # the loss is the MSE
    clears = rho >= SPEARMAN_MIN and mse_ratio <= MSE_RATIO_MAX
    report = (
        f"{'shuffled' if shuffle else 'real'} labels: test rho {rho:.3f} (bar {SPEARMAN_MIN}), "
        f"MSE {mse_ratio:.3f} x the mean predictor's {mean_mse:.4f} (bar {MSE_RATIO_MAX})"
    )
    print(report)
    assert clears != shuffle, report


def test_regression_heads_start_at_the_training_mean(demo_tiny) -> None:
    """An untrained affect model predicts the training mean: the mean predictor is where every
    regression run starts, so a gain on it is learnt."""
    for task, target in (("regression", "energy"), ("multitask", None)):
        data = load_task(task, demo_tiny, "mel", True, target)
        model = build_model(data, "lstm", seed=0).eval()
        with torch.no_grad():
            out = model.head(torch.zeros(2, model.head.net[-1].in_features))
        expected = torch.as_tensor(np.mean(data.train.y, axis=0), dtype=torch.float32)
        torch.testing.assert_close(out, expected.expand_as(out))

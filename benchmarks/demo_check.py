"""Demo check: is the small demo data set one on which tuning pays?

    python benchmarks/demo_check.py            # 3 repeats of: generate, 20 configs x 10 epochs
    python benchmarks/demo_check.py --quick    # 10 configs x 5 epochs

Each repeat generates the small demo set afresh (demo seed = seed + repeat) into a temporary
folder, timing it, and then checks what the data are for:
- enough clips to score: at least 150 mapped genre clips in validation and in test, so a macro
  F1 over 10 imbalanced classes is not decided by a handful of clips;
- hyperparameters matter: random configurations of the main preset (`lstm_spectrogram`), each
  trained to the same epoch budget (FIFO, the preset's patience), differ; the figure is the best
  validation macro F1 minus the median one (ASHA's early-stopped trials would inflate it, so it
  is not used here);
- affect is learnable from the audio: an LSTM on beat-synced mel (the course's view for affect)
  beats predicting the training mean of energy on the test split, in MSE and with a positive
  Spearman's rho (a constant has none).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.data.dataset import load_task  # noqa: E402
from musictune.data.demo import generate_demo  # noqa: E402
from musictune.training.loop import TrainConfig, build_model, fit  # noqa: E402
from musictune.training.scoring import evaluate  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402

MIN_CLIPS = 150
MIN_SPREAD = 0.15
MAX_GENERATION_S = 180.0  # "at most about 3 minutes" on 2 cores
AFFECT_TARGET = "energy"
AFFECT_MODEL = {"num_layers": 1, "hidden_size": 64, "bidirectional": False, "dropout": 0.2}


def genre_counts(folder: Path) -> dict[str, int]:
    data = load_task("genre", folder, "mel", False, None)
    return {"train": len(data.train), "val": len(data.val), "test": len(data.test)}


def spread(folder: Path, preset: str, samples: int, epochs: int, seed: int) -> dict[str, float]:
    """Best and median best-validation macro F1 over `samples` configs trained alike."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as storage:
        options = common.sweep_options(
            preset=preset,
            samples=samples,
            max_epochs=epochs,
            scheduler="fifo",
            seed=seed,
            data_dir=str(folder),
            storage=storage,
            name="spread",
        )
        with common.quiet(Path(storage) / "sweep.log"):
            grid = run_sweep(options)
        best = [r.metrics_dataframe["val_macro_f1"].max() for r in grid if not r.error]
    return {"best": float(np.max(best)), "median": float(np.median(best)), "n": len(best)}


def affect(folder: Path, seed: int, epochs: int) -> dict[str, float]:
    """Test Spearman and MSE of a trained LSTM against the training-mean predictor's MSE."""
    data = load_task("regression", folder, "mel", True, AFFECT_TARGET)
    model = build_model(data, "lstm", seed=seed, **AFFECT_MODEL)
    fit(model, data, TrainConfig(max_epochs=epochs, seed=seed, device="cpu"))
    tested = evaluate(model, data.test, data.targets)
    mean_mse = float(np.mean((data.test.y - np.mean(data.train.y)) ** 2))
    return {"rho": tested["spearman"], "mse_ratio": tested["loss"] / mean_mse}


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    samples: int = 20,
    epochs: int = 10,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    """`data_dir` is not used: every repeat checks a set the generator makes now."""
    results = []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-demo-data-") as tmp:
            folder = Path(tmp) / "demo-small"
            started = time.perf_counter()
            generate_demo(folder, "small", seed=seed + repeat, progress=False)
            generation = time.perf_counter() - started
            counts = genre_counts(folder)
            found = spread(folder, preset, samples, epochs, seed + repeat)
            learnt = affect(folder, seed + repeat, 2 * epochs)
        results.append(
            {
                "generation": generation,
                **{f"clips_{k}": float(v) for k, v in counts.items()},
                "best": found["best"],
                "median": found["median"],
                "spread": found["best"] - found["median"],
                **learnt,
            }
        )

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    return [
        common.Row(
            "demo check",
            "generation of the small set, 2 processes (s)",
            values("generation"),
            f"<= {MAX_GENERATION_S:.0f}",
            common.at_most(MAX_GENERATION_S),
            "1040 clips of 3 s, rendered and extracted with librosa",
        ),
        common.Row("demo check", "mapped genre clips, train", values("clips_train")),
        common.Row(
            "demo check",
            "mapped genre clips, validation",
            values("clips_val"),
            f">= {MIN_CLIPS}",
            common.at_least(MIN_CLIPS),
        ),
        common.Row(
            "demo check",
            "mapped genre clips, test",
            values("clips_test"),
            f">= {MIN_CLIPS}",
            common.at_least(MIN_CLIPS),
        ),
        common.Row("demo check", f"best val macro F1 of {samples} random configs", values("best")),
        common.Row(
            "demo check", f"median val macro F1 of {samples} random configs", values("median")
        ),
        common.Row(
            "demo check",
            "spread: best - median val macro F1",
            values("spread"),
            f">= {MIN_SPREAD}",
            common.at_least(MIN_SPREAD),
            f"{preset}, FIFO: every config up to {epochs} epochs (patience 10)",
        ),
        common.Row(
            "demo check",
            f"{AFFECT_TARGET}: test Spearman of an LSTM (beat-synced mel)",
            values("rho"),
            "> 0",
            lambda v: v > 0,
            f"{2 * epochs} epochs, lr 1e-3; the mean predictor has no rank order",
        ),
        common.Row(
            "demo check",
            f"{AFFECT_TARGET}: test MSE, LSTM / training-mean predictor",
            values("mse_ratio"),
            "< 1",
            common.below(1.0),
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"samples": 10, "epochs": 5} if quick else {"samples": 20, "epochs": 10}


def describe(cpus: int, samples: int, epochs: int) -> str:
    return (
        f"demo check: each repeat generates the small set and trains {samples} random configs "
        f"x {epochs} epochs (FIFO, 1 CPU each, {cpus} at once) and an energy LSTM"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"demo check: demo and search seed {seed} + repeat (0..{repeats - 1})"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Demo check", argv)


if __name__ == "__main__":
    sys.exit(main())

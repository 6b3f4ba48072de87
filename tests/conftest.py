"""Shared fixtures: small data sets written to real files in the real layout."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from musictune import layout
from musictune.genres import FMA_GENRES

ROOT = Path(__file__).resolve().parents[1]
# The slowest files first: pytest-xdist hands whole files to its two workers in collection order,
# so starting with the longest ones lets both workers finish together.
SLOWEST_FIRST = (
    "test_lab.py", "test_report.py", "test_reliability.py", "test_benchmarks.py",
    "test_affect.py", "test_baselines.py", "test_sweep.py", "test_cluster.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never touch the user's cache; the tiny demo data is made once per session."""
    cache = os.environ.get("MUSICTUNE_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ["MUSICTUNE_CACHE"] = cache
    os.environ.pop("MUSICTUNE_DATA", None)
    yield


def write_layout(
    root: Path,
    n_train: int = 60,
    n_test: int = 20,
    frames: int = 40,
    seed: int = 0,
    beat_frames: int = 8,
    genres: tuple[str, ...] = FMA_GENRES,
) -> Path:
    """Random (140, T) arrays with a genre-dependent offset, so a model can learn something.

    Every dataset folder of the real layout is written, quirky label ids included.
    """
    rng = np.random.default_rng(seed)
    for task in (layout.GENRE_TASK, layout.MULTITASK_TASK):
        for beat in (False, True):
            directory = root / layout.dataset_dirname(task, beat)
            for split, n in (("train", n_train), ("test", n_test)):
                rows = []
                for i in range(n):
                    track = str(1000 + (0 if split == "train" else n_train) + i)
                    g = i % len(genres)
                    t = int(rng.integers(beat_frames // 2, beat_frames + 1)) if beat else frames
                    a = rng.normal(size=(140, t)).astype(np.float32)
                    a[(g * 7) % 140] += 3.0
                    layout.save_array_atomic(directory / split / layout.array_filename(track), a)
                    rows.append((track, genres[g]))
                if task == layout.GENRE_TASK:
                    layout.write_genre_labels(directory, split, beat, rows)
                else:
                    values = [
                        None if split == "test" else tuple(rng.uniform(0, 1, 3)) for _ in rows
                    ]
                    layout.write_multitask_labels(
                        directory, split, beat, [(t, v) for (t, _), v in zip(rows, values)]
                    )
    return root


@pytest.fixture
def fake_root(tmp_path) -> Path:
    return write_layout(tmp_path / "data")


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray instance for the in-process sweep tests (ray.init costs seconds)."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():  # an in-process CLI test started one of its own: ours replaces it
        ray.shutdown()
    # address="local": always a fresh cluster of our own, even if a `ray start` one is up.
    # Workers log at WARNING as in `musictune sweep`: their INFO lines (a checkpoint saved) reach
    # the driver late and would land in the next test's captured stderr.
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        logging_config=ray.LoggingConfig(log_level="WARNING"),
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_tiny() -> Path:
    """The tiny demo data set, generated once per session into the test cache."""
    from musictune.data.demo import ensure_demo

    return ensure_demo("tiny", progress=False)


@pytest.fixture(scope="session")
def genre_sweep(ray_local, tmp_path_factory) -> dict:
    """One small genre sweep, shared: 2 trials x 2 epochs (ASHA, seed 5) on random data in the
    real layout, logged to MLflow's default store under its storage folder (--mlflow), with what
    it printed. test_baselines reports on it; test_mlflow reads its MLflow runs back."""
    import contextlib
    import io

    from musictune.data.dataset import load_task
    from musictune.tuning.runner import run_sweep

    tmp = tmp_path_factory.mktemp("baselines")
    data_dir = write_layout(tmp / "data")
    storage = tmp / "results"
    argv = ["--smoke-test", "--samples", "2", "--data-dir", str(data_dir), "--storage",
            str(storage), "--name", "genre", "--seed", "5", "--mlflow"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = run_sweep(sweep_options("lstm_spectrogram", *argv))
    return {
        "data": load_task("genre", data_dir, "mel", False),
        "storage": storage,
        "results": results,
        "printed": printed.getvalue(),
    }


def sweep_options(preset: str, *argv: str):
    """Parse a sweep command line exactly as `musictune sweep` does."""
    from musictune.commands.cli import build_parser, sweep_options_from_args

    return sweep_options_from_args(build_parser().parse_args(["sweep", preset, *argv]))


def load_script(path: Path):
    """A script (analysis/*.py) imported as a module, so tests call its main() in-process."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def report_cli():
    """analysis/report.py as a module, imported once."""
    return load_script(ROOT / "analysis" / "report.py")


def new_report(*argv: str) -> Path:
    """Run the report CLI in-process and return the one report folder it made under --out."""
    out = Path(argv[argv.index("--out") + 1])
    before = set(out.iterdir()) if out.exists() else set()
    assert report_cli().main(list(argv)) == 0
    (new,) = set(out.iterdir()) - before
    return new

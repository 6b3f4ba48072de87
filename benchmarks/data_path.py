"""Data path: the data set shared in memory through Ray's object store, against reading one
`.npy` file per item per epoch as the course's PyTorch Dataset did.

Both sides run as Ray trials built by the sweep's own `bind_trainable` (with_parameters +
with_resources), one trial at a time, each given every CPU Ray has (torch threads = CPUs), the
same on both sides. A trial's start is stamped before Ray fetches its parameters, so "trial
start" covers fetching the data (or the file list) and assembling the first batch. Each epoch is
timed twice: the data side alone (every batch assembled, no model) and a full training pass of
the same seeded model. A repeat is one trial on each side (the shared side's trials run first);
its figures are the medians over its epochs, and every repeat uses the same seed.
"""

from __future__ import annotations

import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ray import tune
from torch.nn.utils.rnn import pad_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune import layout  # noqa: E402
from musictune.audio.features import VIEWS  # noqa: E402
from musictune.data.batches import iterate_batches  # noqa: E402
from musictune.data.dataset import Dataset, load_task  # noqa: E402
from musictune.models import create_model, get_family, model_kwargs  # noqa: E402
from musictune.training.loop import build_model  # noqa: E402
from musictune.training.trial import TrialSettings  # noqa: E402
from musictune.tuning.cluster import Resources  # noqa: E402
from musictune.tuning.presets import get_preset  # noqa: E402
from musictune.tuning.tuner import bind_trainable  # noqa: E402

BATCH_SIZE = 32
START_TARGET_S = 0.1
SPEEDUP_TARGET = 10.0


# --------------------------------------------------------------------------- the course's way


class NpyFiles(torch.utils.data.Dataset):
    """The course's Dataset: each item is read from its own `.npy` file whenever it is used."""

    def __init__(self, files: list[str], labels: np.ndarray, view: slice, mean, std):
        self.files, self.labels, self.view = files, labels, view
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        frames = np.load(self.files[i], allow_pickle=False)[self.view].T
        x = ((frames - self.mean) / self.std).astype(np.float32)
        return torch.from_numpy(x), self.labels[i]


def pad_collate(items):
    xs, ys = zip(*items)
    lengths = torch.tensor([len(x) for x in xs], dtype=torch.int64)
    return pad_sequence(list(xs), batch_first=True), lengths, torch.as_tensor(np.stack(ys))


def file_index(data_dir: Path, data: Dataset) -> dict:
    """What the course's Dataset kept in memory: file names, labels, normalisation."""
    folder = Path(data_dir) / layout.dataset_dirname(data.task, data.beat) / "train"
    return {
        "files": [str(folder / layout.array_filename(i)) for i in data.train.ids],
        "labels": data.train.y,
        "view": VIEWS[data.features],
        "mean": data.mean,
        "std": data.std,
    }


def course_loader(index: dict, seed: int) -> torch.utils.data.DataLoader:
    dataset = NpyFiles(index["files"], index["labels"], index["view"], index["mean"], index["std"])
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        collate_fn=pad_collate,
        generator=torch.Generator().manual_seed(seed),
    )


# --------------------------------------------------------------------------- probe trials


def stamped(trainable):
    """Record when Ray enters the trial, before with_parameters fetches the data."""

    @functools.wraps(trainable)
    def trial(config):
        return trainable({**config, "entered": time.perf_counter()})

    return trial


def train_pass(model, optimizer, batches) -> None:
    """One training pass over the given batches: the same loop for both data paths."""
    model.train()
    for x, lengths, y in batches:
        loss = model.loss(model(x, lengths), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def _model(config: dict):
    torch.manual_seed(config["seed"])
    model = create_model(**config["spec"])
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def timed_epochs(config: dict, start_s: float, batches) -> None:
    """Per epoch, report the time of batch assembly alone and of a full training pass."""
    model, optimizer = _model(config)
    for epoch in range(config["epochs"]):
        t = time.perf_counter()
        for _ in batches():
            pass
        data_s = time.perf_counter() - t
        t = time.perf_counter()
        train_pass(model, optimizer, batches())
        epoch_s = time.perf_counter() - t
        tune.report(
            {
                "start_s": start_s,
                "data_s": data_s,
                "epoch_s": epoch_s,
                "epoch": epoch,
                "repeat": config["repeat"],
            }
        )


def shared_probe(config: dict, data: Dataset, settings: TrialSettings) -> None:
    """The project's path: arrays from the object store, batches by `iterate_batches`."""
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(config["seed"])

    def batches():
        return iterate_batches(data.train, BATCH_SIZE, rng.permutation(len(data.train)))

    next(iter(batches()))
    start_s = time.perf_counter() - config["entered"]
    timed_epochs(config, start_s, batches)


def files_probe(config: dict, data: dict, settings: TrialSettings) -> None:
    """The course's path: a DataLoader reading one `.npy` file per item, every epoch."""
    torch.set_num_threads(settings.threads)
    loader = course_loader(data, config["seed"])
    next(iter(loader))
    start_s = time.perf_counter() - config["entered"]
    timed_epochs(config, start_s, lambda: loader)


if __name__ != "__main__":  # Ray workers cannot import benchmarks/: ship these by value
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def run_probe(trainable, config: dict, repeats: int, storage: str, name: str) -> list[dict]:
    """`repeats` trials of one probe, one at a time; one dict per epoch result."""
    tuner = tune.Tuner(
        trainable,
        param_space={**config, "repeat": tune.grid_search(list(range(repeats)))},
        tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0),
    )
    grid = tuner.fit()
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"{name} probe failed: {errors[0]}")
    return [row for r in grid for row in r.metrics_dataframe.to_dict("records")]


# --------------------------------------------------------------------------- benchmark


def per_repeat_medians(rows: list[dict], repeats: int) -> list[dict[str, float]]:
    """Each repeat's (trial's) figures: its start, and the medians over its epochs."""
    out = []
    for r in range(repeats):
        mine = [row for row in rows if row["repeat"] == r]
        out.append(
            {
                key: statistics.median(row[key] for row in mine)
                for key in ("start_s", "data_s", "epoch_s")
            }
        )
    return out


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    epochs: int = 3,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    """Trial start and epoch times of both paths per repeat; needs a running Ray."""
    cpus = common.ray_cpus()
    spec = get_preset(preset)
    data = load_task(spec.task, data_dir, spec.features, spec.beat)
    settings = common.MID_MODEL.get(spec.model, {})
    model = build_model(data, spec.model, seed, **model_kwargs(spec.model, settings))
    config = {"spec": model.spec, "seed": seed, "epochs": epochs}
    # Both sides bound as the sweep binds its trainable: data through the object store.
    resources = Resources(cpus_per_trial=float(cpus))
    family = get_family(spec.model)
    trial = TrialSettings(family=family, max_epochs=epochs, threads=resources.threads)
    with tempfile.TemporaryDirectory(prefix="bench-data-path-") as storage:
        shared_bound = bind_trainable(data, trial, resources, trainable=shared_probe)
        shared = run_probe(stamped(shared_bound), config, repeats, storage, "shared")
        index = file_index(data_dir, data)
        files_trial = stamped(bind_trainable(index, trial, resources, trainable=files_probe))
        files = run_probe(files_trial, config, repeats, storage, "files")
    shared_r, files_r = per_repeat_medians(shared, repeats), per_repeat_medians(files, repeats)

    def values(side: list[dict], key: str) -> list[float]:
        return common.per_repeat(side, key)

    start_shared = values(shared_r, "start_s")
    data_speedup = [common.ratio(f["data_s"], s["data_s"]) for f, s in zip(files_r, shared_r)]
    epoch_speedup = [common.ratio(f["epoch_s"], s["epoch_s"]) for f, s in zip(files_r, shared_r)]
    n = (
        f"{len(data.train)} clips, batch {BATCH_SIZE}, {repeats} trial(s) x {epochs} epochs per "
        f"side, {cpus} torch threads each"
    )
    start_note = "fetch from the object store + first batch"
    if not common.below(START_TARGET_S)(common.median(start_shared)):
        start_note += f"; {common.median(start_shared) / START_TARGET_S:.1f}x over the target"
    speed_note = (
        f"batch assembly only: {common.median_range(values(files_r, 'data_s'))} s vs "
        f"{common.median_range(values(shared_r, 'data_s'))} s per epoch ({n}; files warm in the "
        "page cache)"
    )
    if not common.at_least(SPEEDUP_TARGET)(common.median(data_speedup)):
        speed_note += f"; {SPEEDUP_TARGET / common.median(data_speedup):.1f}x short of the target"
    return [
        common.Row(
            "data path",
            "trial start, shared in memory (s)",
            start_shared,
            f"< {START_TARGET_S:g}",
            common.below(START_TARGET_S),
            start_note,
        ),
        common.Row(
            "data path",
            "trial start, one .npy per item (s)",
            values(files_r, "start_s"),
            note="file list + first batch read from 32 files",
        ),
        common.Row(
            "data path",
            "data-side epoch speed-up (files / shared)",
            data_speedup,
            f">= {SPEEDUP_TARGET:g}",
            common.at_least(SPEEDUP_TARGET),
            speed_note,
        ),
        common.Row(
            "data path",
            "full epoch speed-up (files / shared)",
            epoch_speedup,
            note=(
                f"training pass {common.median_range(values(files_r, 'epoch_s'))} s vs "
                f"{common.median_range(values(shared_r, 'epoch_s'))} s per epoch, model "
                f"{spec.model} {', '.join(f'{k}={v}' for k, v in settings.items())}"
            ),
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"epochs": 2} if quick else {"epochs": 4}


def describe(cpus: int, epochs: int) -> str:
    return (
        f"data_path: per repeat one trial of {epochs} epochs on each side, one at a time with "
        f"{cpus} CPUs ({cpus} torch threads) each, mid-sized model; shared side first"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"data_path seed {seed} every repeat (the same model and batch order)"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Data path", argv)


if __name__ == "__main__":
    sys.exit(main())

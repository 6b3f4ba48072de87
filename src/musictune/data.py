"""The in-memory data set of a trial: train/val/test splits of one task and feature view.

`data_files` reads a split's arrays from the layout (padded, cached); here they are labelled,
split into train and validation, and standardised on the train split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from musictune import layout
from musictune.data_files import class_mapping, dataset_dir, read_split, resolve_data_dir
from musictune.errors import UserError
from musictune.features import VIEWS
from musictune.tasks import TASKS

VAL_FRACTION = 0.2
SPLIT_SEED = 42
# The multitask test split has no labels: this share of train stands in as the test set.
MULTITASK_TEST_FRACTION = 0.15


@dataclass
class Split:
    """One split's clips, zero-padded to its longest: batches are then slices, not reads."""

    x: np.ndarray  # (N, T, F) float32, zero-padded after each clip's true length
    lengths: np.ndarray  # (N,) int64 true lengths
    y: np.ndarray | None  # (N,) int64 class index, or (N, n_targets) float32, or None
    ids: np.ndarray  # (N,) track ids as str

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, index: np.ndarray) -> Split:
        lengths = self.lengths[index]
        t = int(lengths.max()) if len(lengths) else 0
        y = None if self.y is None else self.y[index]
        return Split(self.x[index, :t], lengths, y, self.ids[index])


@dataclass
class Dataset:
    """Everything a trial needs, in memory: put once into Ray's object store by a sweep."""

    task: str  # genre | regression | multitask (musictune.tasks)
    features: str  # "mel", "chroma" or "fused"
    beat: bool
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...] = ()  # genre task: index -> class name
    targets: tuple[str, ...] = ()  # multitask: column -> target name
    test_note: str = "held-out test split"
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))
    # The process that read the files: trials report it to show they got the driver's copy.
    loaded_by_pid: int = field(default_factory=os.getpid)

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[-1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def y_dim(self) -> int:
        y = self.train.y
        return 1 if y is None or y.ndim == 1 else int(y.shape[1])

    def select_target(self, target: str) -> Dataset:
        """The multitask data narrowed to one affect target (single-target regression)."""
        if target not in self.targets:
            raise UserError(f"unknown target {target!r}: choose one of {', '.join(self.targets)}")
        col = self.targets.index(target)

        def narrow(s: Split) -> Split:
            return Split(s.x, s.lengths, np.ascontiguousarray(s.y[:, col]), s.ids)

        return replace(
            self,
            task="regression",
            train=narrow(self.train),
            val=narrow(self.val),
            test=narrow(self.test),
            targets=(target,),
        )


def _map_genres(genres: np.ndarray, mapping: dict | None, labels: Path) -> np.ndarray:
    if mapping is None:
        return genres.astype(object)
    mapped = np.empty(len(genres), dtype=object)
    for i, g in enumerate(genres):
        if g not in mapping:
            known = ", ".join(sorted(mapping))
            raise UserError(
                f"{labels} line {i + 2}: genre {str(g)!r} is not in the class mapping ({known}); "
                "fix the label or add the genre to the data set's mapping"
            )
        mapped[i] = mapping[g]
    return mapped


def _split_index(y: np.ndarray | None, n: int, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    stratify = None
    if y is not None and y.ndim == 1:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and round(n * fraction) >= len(counts):
            stratify = y
    return train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)


def _standardise(splits: list[Split], fit_on: Split) -> tuple[np.ndarray, np.ndarray]:
    mask = np.arange(fit_on.x.shape[1])[None, :] < fit_on.lengths[:, None]
    frames = fit_on.x[mask]
    mean = frames.mean(axis=0)
    std = frames.std(axis=0) + 1e-6
    for s in splits:
        valid = np.arange(s.x.shape[1])[None, :] < s.lengths[:, None]
        s.x = np.where(valid[..., None], (s.x - mean) / std, 0.0).astype(np.float32)
    return mean.astype(np.float32), std.astype(np.float32)


def _check_options(task: str, features: str, val_fraction: float) -> None:
    if features not in VIEWS:
        raise UserError(f"unknown features {features!r}: choose one of {', '.join(VIEWS)}")
    if task not in (layout.GENRE_TASK, layout.MULTITASK_TASK):
        raise UserError(f"unknown task {task!r}: choose genre or multitask")
    if not 0 < val_fraction < 1:
        raise UserError(f"validation fraction {val_fraction} must lie strictly between 0 and 1")


def _to_split(raw: dict, view, y: np.ndarray | None, keep: np.ndarray | None = None) -> Split:
    """The kept clips of a raw split in one feature view, trimmed to their longest clip."""
    keep = np.arange(len(raw["lengths"])) if keep is None else keep
    lengths = raw["lengths"][keep]
    x = raw["x"][keep, : int(lengths.max()), view]
    return Split(np.ascontiguousarray(x), lengths, None if y is None else y[keep], raw["ids"][keep])


def _genre_splits(
    root: Path, directory: Path, raw_train: dict, raw_test: dict, view
) -> tuple[Split, Split, tuple[str, ...]]:
    """(train, test, classes): genres folded to classes; clips of dropped genres left out."""
    mapping = class_mapping(root)
    train_labels = _map_genres(raw_train["genres"], mapping, directory / "train_labels.txt")
    test_labels = _map_genres(raw_test["genres"], mapping, directory / "test_labels.txt")
    classes = tuple(sorted({c for c in train_labels if c is not None}))
    if len(classes) < 2:
        raise UserError(f"{directory}: the train split has fewer than 2 classes; add clips")
    index = {c: i for i, c in enumerate(classes)}
    y_train = np.array([index.get(c, -1) if c else -1 for c in train_labels], dtype=np.int64)
    y_test = np.array([index.get(c, -1) if c else -1 for c in test_labels], dtype=np.int64)
    train = _to_split(raw_train, view, y_train, np.flatnonzero(y_train >= 0))
    if not (y_test >= 0).any():
        raise UserError(
            f"{directory}/test_labels.txt has no clip of a class the train split knows "
            f"({', '.join(classes)}): every test genre is dropped or unknown; fix the labels"
        )
    return train, _to_split(raw_test, view, y_test, np.flatnonzero(y_test >= 0)), classes


def _multitask_splits(
    directory: Path, raw_train: dict, raw_test: dict, view, seed: int
) -> tuple[Split, Split, str]:
    """(train, test, test note): an unlabelled test split is replaced by a share of train."""
    if "targets" not in raw_train:
        raise UserError(f"{directory}/train_labels.txt has no target columns; it needs them")
    train = _to_split(raw_train, view, raw_train["targets"])
    if "targets" in raw_test:
        return train, _to_split(raw_test, view, raw_test["targets"]), "held-out test split"
    rest, held = _split_index(None, len(train), MULTITASK_TEST_FRACTION, seed + 1)
    note = (
        f"the multitask test split has no labels: {MULTITASK_TEST_FRACTION:.0%} of train "
        "held out as test"
    )
    return train.subset(np.sort(rest)), train.subset(np.sort(held)), note


def load_dataset(
    data_dir: str | os.PathLike | None = None,
    task: str = layout.GENRE_TASK,
    features: str = "mel",
    beat: bool = False,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> Dataset:
    """Load train/val/test of one task and feature view, standardised on the train split."""
    _check_options(task, features, val_fraction)
    root = resolve_data_dir(data_dir)
    directory = dataset_dir(root, task, beat)
    view = VIEWS[features]
    raw_train = read_split(directory, task, "train")
    raw_test = read_split(directory, task, "test")
    classes: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    test_note = "held-out test split"
    if task == layout.GENRE_TASK:
        full_train, test, classes = _genre_splits(root, directory, raw_train, raw_test, view)
    else:
        targets = layout.AFFECT_TARGETS
        full_train, test, test_note = _multitask_splits(directory, raw_train, raw_test, view, seed)
    fit_idx, val_idx = _split_index(full_train.y, len(full_train), val_fraction, seed)
    train, val = full_train.subset(np.sort(fit_idx)), full_train.subset(np.sort(val_idx))
    mean, std = _standardise([train, val, test], fit_on=train)
    return Dataset(
        task=task,
        features=features,
        beat=beat,
        train=train,
        val=val,
        test=test,
        classes=classes,
        targets=targets,
        test_note=test_note,
        mean=mean,
        std=std,
    )


def load_task(
    task: str,
    data_dir: str | os.PathLike | None = None,
    features: str = "mel",
    beat: bool = False,
    target: str | None = None,
    **kwargs,
) -> Dataset:
    """Data for a training task: genre classes, one affect target, or all three."""
    if task == "genre":
        return load_dataset(data_dir, layout.GENRE_TASK, features, beat, **kwargs)
    if task == "regression":
        if target not in layout.AFFECT_TARGETS:
            raise UserError(
                f"unknown target {target!r}: choose one of {', '.join(layout.AFFECT_TARGETS)}"
            )
        data = load_dataset(data_dir, layout.MULTITASK_TASK, features, beat, **kwargs)
        return data.select_target(target)
    if task == "multitask":
        return load_dataset(data_dir, layout.MULTITASK_TASK, features, beat, **kwargs)
    raise UserError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")

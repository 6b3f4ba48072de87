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
from musictune.audio.features import HOP_LENGTH, SAMPLE_RATE, VIEWS
from musictune.data.files import class_mapping, dataset_dir, read_split, resolve_data_dir
from musictune.errors import UserError
from musictune.tasks import TASKS

VAL_FRACTION = 0.2
SPLIT_SEED = 42
# The multitask test split has no labels: this share of train stands in as the test set.
MULTITASK_TEST_FRACTION = 0.15
FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH  # full-length views
BEATS_PER_SECOND = 2.0  # beat-synced views crop in beats: 120 BPM


@dataclass
class Split:
    """One split's clips stored end to end, never padded: a whole track costs its own frames,
    not the longest clip's. Batches pad only the clips they hold (`musictune.data.batches`)."""

    frames: np.ndarray  # (sum of lengths, F) float32: clip i is frames[starts[i]:][:lengths[i]]
    lengths: np.ndarray  # (N,) int64 true lengths
    y: np.ndarray | None  # (N,) int64 class index, or (N, n_targets) float32, or None
    ids: np.ndarray  # (N,) track ids as str

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    @property
    def n_features(self) -> int:
        return int(self.frames.shape[-1])

    @classmethod
    def from_padded(cls, x: np.ndarray, lengths, y, ids) -> Split:
        """From (N, T, F) clips zero-padded after each one's length."""
        lengths = np.asarray(lengths, dtype=np.int64)
        valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
        return cls(np.ascontiguousarray(x[valid]), lengths, y, np.asarray(ids))

    def clip(self, i: int) -> np.ndarray:
        """Clip i's (T, F) frames, a view."""
        start = int(self.starts[i])
        return self.frames[start : start + int(self.lengths[i])]

    def padded(self, index: np.ndarray | None = None) -> np.ndarray:
        """(len(index), longest, F) zero-padded copies of the indexed clips (all by default)."""
        index = np.arange(len(self)) if index is None else np.asarray(index)
        return pad_frames(self.frames, self.starts[index], self.lengths[index])

    def subset(self, index: np.ndarray) -> Split:
        index = np.asarray(index)
        starts, lengths = self.starts[index], self.lengths[index]
        rows = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)] or [[]])
        y = None if self.y is None else self.y[index]
        frames = self.frames[rows.astype(np.int64)]
        return Split(np.ascontiguousarray(frames), lengths, y, self.ids[index])


def concat_splits(a: Split, b: Split) -> Split:
    y = None if a.y is None else np.concatenate([a.y, b.y])
    return Split(
        np.concatenate([a.frames, b.frames]),
        np.concatenate([a.lengths, b.lengths]),
        y,
        np.concatenate([a.ids, b.ids]),
    )


def pad_frames(frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Clips (start, length) of `frames` gathered into a (B, longest, F) zero-padded array."""
    t = int(lengths.max()) if len(lengths) else 0
    steps = np.arange(t)
    valid = steps[None, :] < lengths[:, None]
    rows = np.where(valid, starts[:, None] + steps[None, :], 0)
    return np.where(valid[..., None], frames[rows], 0.0).astype(np.float32, copy=False)


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
    # K-fold selection (`--folds K`): the fold (0..K-1) of each clip of `pool()`, train then
    # val; a track id's clips share one fold. None: the one train/validation split.
    folds: np.ndarray | None = None
    # The process that read the files: trials report it to show they got the driver's copy.
    loaded_by_pid: int = field(default_factory=os.getpid)

    @property
    def n_features(self) -> int:
        return self.train.n_features

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def y_dim(self) -> int:
        y = self.train.y
        return 1 if y is None or y.ndim == 1 else int(y.shape[1])

    @property
    def n_folds(self) -> int:
        return 0 if self.folds is None else int(self.folds.max()) + 1

    def pool(self) -> Split:
        """Train and validation end to end: what K-fold selection splits into its folds."""
        return concat_splits(self.train, self.val)

    def crop_frames(self, seconds: float) -> int:
        """A crop in frames of this view: full-length clips have SAMPLE_RATE / HOP_LENGTH
        (about 43.1) frames a second; beat-synced clips crop in beats, BEATS_PER_SECOND a
        second (120 BPM; the course's 30-s clips hold about 62 beats). 0: no crop."""
        if not seconds:
            return 0
        return max(1, round(seconds * (BEATS_PER_SECOND if self.beat else FRAMES_PER_SECOND)))

    def check_crop(self, seconds: float, flag: str = "--crop") -> int:
        """The crop in frames, refused in one line when no training clip is that long."""
        frames = self.crop_frames(seconds)
        longest = int(self.train.lengths.max())
        if frames > longest:
            unit = "beats" if self.beat else "frames"
            rate = BEATS_PER_SECOND if self.beat else FRAMES_PER_SECOND
            raise UserError(
                f"{flag} {seconds:g} s ({frames} {unit}) is longer than every training clip "
                f"(longest {longest} {unit}, {longest / rate:.1f} s): choose at most "
                f"{int(longest / rate * 10) / 10:g}, or 0 for whole clips"
            )
        return frames

    def select_target(self, target: str) -> Dataset:
        """The multitask data narrowed to one affect target (single-target regression)."""
        if target not in self.targets:
            raise UserError(f"unknown target {target!r}: choose one of {', '.join(self.targets)}")
        col = self.targets.index(target)

        def narrow(s: Split) -> Split:
            return Split(s.frames, s.lengths, np.ascontiguousarray(s.y[:, col]), s.ids)

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


def _split_index(
    y: np.ndarray | None, n: int, fraction: float, seed: int, ids: np.ndarray | None = None
):
    """(kept, held out) indices, stratified by class where every class can be. Clips that share
    a track id (one recording cut several ways) are held out together, never split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    stratify = None
    if y is not None and y.ndim == 1:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and round(n * fraction) >= len(counts):
            stratify = y
    if ids is None or len(np.unique(ids)) == n:
        return train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    return _group_split(y, ids, fraction, seed, stratify is not None)


def _group_split(y, ids: np.ndarray, fraction: float, seed: int, stratified: bool):
    """`_split_index` for repeated ids: one fold of (stratified) group K-fold, K = 1/fraction."""
    splitter = _group_folds(max(2, round(1 / fraction)), stratified, seed)
    kept, held = next(splitter.split(np.zeros(len(ids)), y if stratified else None, groups=ids))
    return kept, held


def _group_folds(k: int, stratified: bool, seed: int):
    """scikit-learn's shuffled group K-fold: no track id on both sides, by class if asked."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if stratified:
        return StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    return GroupKFold(k, shuffle=True, random_state=seed)


def fold_ids(y: np.ndarray | None, ids: np.ndarray, k: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """The fold (0..k-1) of each clip: stratified by class for genre, and grouped by track id,
    so no recording has clips (or windows) on both sides of a fold."""
    classify = y is not None and y.ndim == 1
    splitter = _group_folds(k, classify, seed)
    folds = np.full(len(ids), -1, dtype=np.int64)
    parts = splitter.split(np.zeros(len(ids)), y if classify else None, groups=ids)
    for fold, (_, held) in enumerate(parts):
        folds[held] = fold
    return folds


def check_folds(k: int, y: np.ndarray | None, ids: np.ndarray, task: str) -> None:
    """K-fold needs K >= 2, labels on every clip, and K clips of the rarest class."""
    if k < 2:
        raise UserError(f"--folds {k}: K-fold needs at least 2 folds (0 keeps one split)")
    if y is None:
        raise UserError(f"--folds: the {task} train split has no labels to fold; drop --folds")
    groups = len(np.unique(ids))
    if k > groups:
        raise UserError(f"--folds {k}: train+validation hold only {groups} tracks; lower --folds")
    if y.ndim == 1:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < k:
            raise UserError(
                f"--folds {k}: the rarest class has only {counts.min()} clips in train+validation "
                f"(a fold would miss it); use --folds {max(2, counts.min())} or fewer"
            )


def _standardise(splits: list[Split], fit_on: Split) -> tuple[np.ndarray, np.ndarray]:
    mean = fit_on.frames.mean(axis=0)
    std = fit_on.frames.std(axis=0) + 1e-6
    for s in splits:
        s.frames = ((s.frames - mean) / std).astype(np.float32)
    return mean.astype(np.float32), std.astype(np.float32)


def _check_options(task: str, features: str, val_fraction: float) -> None:
    if features not in VIEWS:
        raise UserError(f"unknown features {features!r}: choose one of {', '.join(VIEWS)}")
    if task not in (layout.GENRE_TASK, layout.MULTITASK_TASK):
        raise UserError(f"unknown task {task!r}: choose genre or multitask")
    if not 0 < val_fraction < 1:
        raise UserError(f"validation fraction {val_fraction} must lie strictly between 0 and 1")


def _to_split(raw: dict, view, y: np.ndarray | None, keep: np.ndarray | None = None) -> Split:
    """The kept clips of a raw split in one feature view."""
    split = Split(np.ascontiguousarray(raw["frames"][:, view]), raw["lengths"], y, raw["ids"])
    return split if keep is None else split.subset(keep)


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
    directory: Path, raw_train: dict, raw_test: dict, view, seed: int, test_fraction: float
) -> tuple[Split, Split, str]:
    """(train, test, test note): an unlabelled test split is replaced by a share of train."""
    if "targets" not in raw_train:
        raise UserError(f"{directory}/train_labels.txt has no target columns; it needs them")
    train = _to_split(raw_train, view, raw_train["targets"])
    if "targets" in raw_test:
        return train, _to_split(raw_test, view, raw_test["targets"]), "held-out test split"
    rest, held = _split_index(None, len(train), test_fraction, seed + 1, train.ids)
    note = f"the multitask test split has no labels: {test_fraction:.0%} of train held out as test"
    return train.subset(np.sort(rest)), train.subset(np.sort(held)), note


def load_dataset(
    data_dir: str | os.PathLike | None = None,
    task: str = layout.GENRE_TASK,
    features: str = "mel",
    beat: bool = False,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
    folds: int = 0,
    test_fraction: float = MULTITASK_TEST_FRACTION,
) -> Dataset:
    """Load train/val/test of one task and feature view, standardised on the train split.

    `folds` = K > 0 also assigns train+val to K folds for K-fold selection; the test split stays
    held out, and the features keep the train split's standardisation (label-free statistics).
    `test_fraction`: the share of train held out as test when the multitask test split has no
    labels (the course's affect lab: 0.2).
    """
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
        full_train, test, test_note = _multitask_splits(
            directory, raw_train, raw_test, view, seed, test_fraction
        )
    ids = full_train.ids
    fit_idx, val_idx = _split_index(full_train.y, len(full_train), val_fraction, seed, ids)
    train, val = full_train.subset(np.sort(fit_idx)), full_train.subset(np.sort(val_idx))
    mean, std = _standardise([train, val, test], fit_on=train)
    fold_of = None
    if folds:
        pool = concat_splits(train, val)
        check_folds(folds, pool.y, pool.ids, task)
        fold_of = fold_ids(pool.y, pool.ids, folds, seed)
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
        folds=fold_of,
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

"""Read the course data layout (or the demo / extracted copies of it) into padded memory arrays.

A split is read from its `.npy` files once and cached as one `.npz` per split under the user
cache directory, so a second load takes a fraction of a second. The cache is keyed by the
data directory and the label file's size and mtime, written atomically, and read without
pickle.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from musictune import layout, paths
from musictune.atomic import atomic_path
from musictune.errors import UserError
from musictune.features import N_FUSED, VIEWS
from musictune.genres import FMA_CLASS_MAPPING

CACHE_VERSION = 1
VAL_FRACTION = 0.2
SPLIT_SEED = 42
# The multitask test split has no labels: this share of train stands in as the test set.
MULTITASK_TEST_FRACTION = 0.15


@dataclass
class Split:
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

    task: str  # "genre" or "multitask"
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
            train=narrow(self.train),
            val=narrow(self.val),
            test=narrow(self.test),
            targets=(target,),
        )


# --------------------------------------------------------------------------- locating data


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """--data-dir, else $MUSICTUNE_DATA, else the demo data set (generated on first use)."""
    chosen = data_dir or os.environ.get(paths.DATA_ENV)
    if not chosen:
        from musictune.demo import ensure_demo

        return ensure_demo()
    root = Path(chosen).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(
            f"data directory {root} is a file, not a folder: pass --data-dir (or set "
            f"{paths.DATA_ENV}) to the folder in the patreco3 layout"
        )
    if not root.is_dir():
        raise UserError(
            f"data directory {root} does not exist: pass --data-dir (or set {paths.DATA_ENV}) "
            "to a folder in the patreco3 layout, or leave both unset to use the demo data"
        )
    if not any(root.iterdir()):
        raise UserError(
            f"data directory {root} is empty: it should hold fma_genre_spectrograms/ and/or "
            "multitask_dataset/ (run `musictune demo-data --out DIR` or `musictune extract`)"
        )
    return root


def dataset_dir(root: Path, task: str, beat: bool) -> Path:
    directory = root / layout.dataset_dirname(task, beat)
    if not directory.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise UserError(
            f"{directory} not found (the data directory holds {present or 'no folders'}): "
            f"point --data-dir at the folder that contains {directory.name}/"
        )
    return directory


# --------------------------------------------------------------------------- label files


def _read_label_rows(path: Path, task: str) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise UserError(f"label file {path} not found: every split needs its labels file")
    delimiter = "\t" if task == layout.GENRE_TASK else ","
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [
                r for r in csv.reader(f, delimiter=delimiter) if r and any(c.strip() for c in r)
            ]
    except UnicodeDecodeError as exc:
        raise UserError(
            f"label file {path} is not a text file (byte {exc.start} is not UTF-8): "
            "replace it with the tab- or comma-separated labels"
        ) from None
    if not rows:
        raise UserError(f"label file {path} is empty: it needs a header and one row per clip")
    header = [c.strip() for c in rows[0]]
    if task == layout.GENRE_TASK:
        expected = [["Id", "Genre"]]
    else:
        expected = [["Id", *layout.AFFECT_TARGETS], ["Id"]]
    if header not in expected:
        want = " or ".join(repr(delimiter.join(e)) for e in expected)
        raise UserError(f"label file {path}: header {rows[0]!r} is not {want}; fix the header")
    body = rows[1:]
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UserError(
                f"label file {path} line {i}: expected {len(header)} "
                f"{'tab' if delimiter == chr(9) else 'comma'}-separated fields, got {len(row)}; "
                "fix or remove that line"
            )
    return header, body


# --------------------------------------------------------------------------- arrays


def _load_array(path: Path, labels: Path, line: int) -> np.ndarray:
    if not path.is_file():
        raise UserError(
            f"{labels} line {line}: its file {path.name} is missing from {path.parent}; "
            "restore the file or remove the row"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for damaged files
        raise UserError(
            f"{path}: not a readable .npy array ({type(exc).__name__}); "
            "re-extract it or remove its row from the labels file"
        ) from None
    if array.ndim != 2 or array.shape[0] != N_FUSED or array.shape[1] < 1:
        raise UserError(
            f"{path}: array shape {array.shape} is not ({N_FUSED}, T) "
            "(128 mel + 12 chroma rows); re-extract it or remove its row"
        )
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise UserError(f"{path}: array holds non-float or non-finite values; re-extract it")
    return array.astype(np.float32, copy=False)


def _cache_path(directory: Path, split: str) -> Path:
    """Keyed by the labels file and every array's size and mtime: an edit invalidates it."""
    labels = (directory / f"{split}_labels.txt").stat()
    key = [CACHE_VERSION, str(directory.resolve()), split, labels.st_size, labels.st_mtime_ns]
    folder = directory / split
    if folder.is_dir():
        with os.scandir(folder) as entries:
            stats = [e.stat() for e in entries if e.name.endswith(".npy")]
        key += [
            len(stats),
            sum(s.st_size for s in stats),
            max((s.st_mtime_ns for s in stats), default=0),
        ]
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
    return paths.cache_dir() / "splits" / f"{directory.name}-{split}-{digest}.npz"


def read_split(directory: Path, task: str, split: str) -> dict[str, np.ndarray]:
    """Raw fused arrays of one split: x (N, T, 140) padded, lengths, ids, and labels."""
    labels_path = directory / f"{split}_labels.txt"
    header, rows = _read_label_rows(labels_path, task)
    cache = _cache_path(directory, split)
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:
            cache.unlink(missing_ok=True)  # damaged cache: rebuild it below

    arrays, ids = [], []
    for line, row in enumerate(rows, start=2):
        track = layout.track_id_of(row[0])
        ids.append(track)
        arrays.append(
            _load_array(directory / split / layout.array_filename(track), labels_path, line)
        )
    if not arrays:
        raise UserError(f"label file {labels_path} lists no clips: it needs one row per clip")
    lengths = np.array([a.shape[1] for a in arrays], dtype=np.int64)
    x = np.zeros((len(arrays), int(lengths.max()), N_FUSED), dtype=np.float32)
    for i, a in enumerate(arrays):
        x[i, : a.shape[1]] = a.T
    out = {"x": x, "lengths": lengths, "ids": np.array(ids, dtype=str)}
    if task == layout.GENRE_TASK:
        out["genres"] = np.array([r[1].strip() for r in rows], dtype=str)
    elif len(header) > 1:
        try:
            targets = np.array([[float(c) for c in r[1:]] for r in rows], dtype=np.float32)
        except ValueError:
            raise UserError(
                f"{labels_path}: a target value is not a number; fix that row"
            ) from None
        if not np.isfinite(targets).all() or targets.min() < 0 or targets.max() > 1:
            raise UserError(f"{labels_path}: targets must lie in [0, 1]; fix the rows outside")
        out["targets"] = targets
    _save_npz_atomic(cache, out)
    return out


def _save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


# --------------------------------------------------------------------------- datasets


def class_mapping(root: Path) -> dict[str, str | None] | None:
    """FMA's 20->10 folding for the course data; an extracted set's own mapping (None: keep)."""
    where = root / layout.MANIFEST
    try:
        manifest = layout.read_manifest(root)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{where} is not valid JSON ({exc}): fix it, or extract the data again"
        ) from None
    if not isinstance(manifest, dict) or "class_mapping" not in manifest:
        return FMA_CLASS_MAPPING
    mapping = manifest["class_mapping"]
    if mapping is not None and not (
        isinstance(mapping, dict) and all(isinstance(v, str) or v is None for v in mapping.values())
    ):
        raise UserError(
            f"{where}: class_mapping must be an object {{genre: class or null}} (or null); "
            "fix it, or extract the data again"
        )
    return mapping


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


def load_dataset(
    data_dir: str | os.PathLike | None = None,
    task: str = layout.GENRE_TASK,
    features: str = "mel",
    beat: bool = False,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> Dataset:
    """Load train/val/test of one task and feature view, standardised on the train split."""
    if features not in VIEWS:
        raise UserError(f"unknown features {features!r}: choose one of {', '.join(VIEWS)}")
    if task not in (layout.GENRE_TASK, layout.MULTITASK_TASK):
        raise UserError(f"unknown task {task!r}: choose genre or multitask")
    if not 0 < val_fraction < 1:
        raise UserError(f"validation fraction {val_fraction} must lie strictly between 0 and 1")
    root = resolve_data_dir(data_dir)
    directory = dataset_dir(root, task, beat)
    view = VIEWS[features]

    def to_split(raw: dict, y: np.ndarray | None, keep: np.ndarray | None = None) -> Split:
        keep = np.arange(len(raw["lengths"])) if keep is None else keep
        lengths = raw["lengths"][keep]
        x = raw["x"][keep, : int(lengths.max()), view]
        return Split(
            np.ascontiguousarray(x), lengths, None if y is None else y[keep], raw["ids"][keep]
        )

    classes: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    test_note = "held-out test split"
    raw_train = read_split(directory, task, "train")
    raw_test = read_split(directory, task, "test")
    if task == layout.GENRE_TASK:
        mapping = class_mapping(root)
        train_labels = _map_genres(raw_train["genres"], mapping, directory / "train_labels.txt")
        test_labels = _map_genres(raw_test["genres"], mapping, directory / "test_labels.txt")
        classes = tuple(sorted({c for c in train_labels if c is not None}))
        if len(classes) < 2:
            raise UserError(f"{directory}: the train split has fewer than 2 classes; add clips")
        index = {c: i for i, c in enumerate(classes)}
        y_train = np.array([index.get(c, -1) if c else -1 for c in train_labels], dtype=np.int64)
        y_test = np.array([index.get(c, -1) if c else -1 for c in test_labels], dtype=np.int64)
        full_train = to_split(raw_train, y_train, np.flatnonzero(y_train >= 0))
        if not (y_test >= 0).any():
            raise UserError(
                f"{directory}/test_labels.txt has no clip of a class the train split knows "
                f"({', '.join(classes)}): every test genre is dropped or unknown; fix the labels"
            )
        test = to_split(raw_test, y_test, np.flatnonzero(y_test >= 0))
    else:
        targets = layout.AFFECT_TARGETS
        if "targets" not in raw_train:
            raise UserError(f"{directory}/train_labels.txt has no target columns; it needs them")
        full_train = to_split(raw_train, raw_train["targets"])
        if "targets" in raw_test:
            test = to_split(raw_test, raw_test["targets"])
        else:
            rest, held = _split_index(None, len(full_train), MULTITASK_TEST_FRACTION, seed + 1)
            test, full_train = full_train.subset(np.sort(held)), full_train.subset(np.sort(rest))
            test_note = (
                f"the multitask test split has no labels: {MULTITASK_TEST_FRACTION:.0%} of train "
                "held out as test"
            )
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


TASKS = ("genre", "regression", "multitask")


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

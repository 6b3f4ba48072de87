"""Read the course data layout (or the demo / extracted copies of it) into padded arrays.

A split is read from its `.npy` files once and cached as one `.npz` per split under the user
cache directory, so a second load takes a fraction of a second. The cache is keyed by the
data directory and the label file's size and mtime, written atomically, and read without
pickle.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np

from musictune import layout, paths
from musictune.atomic import atomic_path
from musictune.audio.features import N_FUSED
from musictune.errors import UserError
from musictune.genres import FMA_CLASS_MAPPING

CACHE_VERSION = 2  # 2: clips stored end to end (frames), not padded


# --------------------------------------------------------------------------- locating data


def resolve_data_dir(data_dir: str | os.PathLike | None, demo_size: str = "small") -> Path:
    """--data-dir, else $MUSICTUNE_DATA, else the demo data set of `demo_size` (generated on
    first use)."""
    chosen = data_dir or os.environ.get(paths.DATA_ENV)
    if not chosen:
        from musictune.data.demo import ensure_demo

        return ensure_demo(demo_size)
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
        shown = ", ".join(present[:6]) + (f" and {len(present) - 6} more" if present[6:] else "")
        raise UserError(
            f"{directory} not found (the data directory holds {shown or 'no folders'}): "
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
    """Raw fused arrays of one split: frames (sum of lengths, 140) with every clip end to end
    (no padding: whole tracks cost only their own frames), lengths, ids, and labels."""
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
    frames = np.concatenate([a.T for a in arrays]).astype(np.float32, copy=False)
    out = {"frames": frames, "lengths": lengths, "ids": np.array(ids, dtype=str)}
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


# --------------------------------------------------------------------------- class mapping


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

"""The on-disk layout of the course's Kaggle data set ("patreco3"), for readers and writers.

    ROOT/fma_genre_spectrograms/{train,test}/<id>.fused.full.npy   + {train,test}_labels.txt
    ROOT/fma_genre_spectrograms_beat/...                           (beat-synced arrays)
    ROOT/multitask_dataset/...  ROOT/multitask_dataset_beat/...    (valence, energy, danceability)

Genre label files are tab-separated `Id<TAB>Genre`; multitask ones comma-separated
`Id,valence,energy,danceability` (the multitask test split carries ids only). Ids name a file
that is not on disk as written (`1042.fused.full.npy.gz`, or `1042.beatsync.fused.npy.gz`,
`1042.full.fused.npy.gz`): every row resolves to `<track id>.fused.full.npy`. The writers here
reproduce those quirks so the demo data and extracted data exercise the reader exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musictune.atomic import atomic_path, write_text_atomic

GENRE_TASK = "genre"
MULTITASK_TASK = "multitask"
AFFECT_TARGETS: tuple[str, ...] = ("valence", "energy", "danceability")
SPLITS: tuple[str, ...] = ("train", "test")
MANIFEST = "musictune.json"


def dataset_dirname(task: str, beat: bool) -> str:
    base = {GENRE_TASK: "fma_genre_spectrograms", MULTITASK_TASK: "multitask_dataset"}[task]
    return base + ("_beat" if beat else "")


def array_filename(track_id: str) -> str:
    return f"{track_id}.fused.full.npy"


def label_id(track_id: str, beat: bool, split: str) -> str:
    """The id string as the real label files write it, quirks included."""
    if beat and split == "train":
        return f"{track_id}.beatsync.fused.npy.gz"
    if split == "test":
        return f"{track_id}.full.fused.npy.gz"
    return f"{track_id}.fused.full.npy.gz"


def track_id_of(label: str) -> str:
    """`1042.beatsync.fused.npy.gz` -> `1042`: every id variant resolves by its track id."""
    return label.strip().split(".", 1)[0]


def save_array_atomic(path: Path, array: np.ndarray) -> None:
    """np.save, atomically: a reader never sees half an array."""
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def write_genre_labels(
    dataset_dir: Path, split: str, beat: bool, rows: list[tuple[str, str]]
) -> None:
    """rows: (track_id, genre name)."""
    lines = ["Id\tGenre"] + [f"{label_id(t, beat, split)}\t{g}" for t, g in rows]
    write_text_atomic(dataset_dir / f"{split}_labels.txt", "\n".join(lines) + "\n")


def write_multitask_labels(
    dataset_dir: Path, split: str, beat: bool, rows: list[tuple[str, tuple[float, ...] | None]]
) -> None:
    """rows: (track_id, (valence, energy, danceability)) or (track_id, None) for unlabelled."""
    labelled = all(values is not None for _, values in rows)
    header = "Id," + ",".join(AFFECT_TARGETS) if labelled else "Id"
    lines = [header]
    for t, values in rows:
        ident = label_id(t, beat, split)
        lines.append(ident + ("," + ",".join(f"{v:.4f}" for v in values) if labelled else ""))
    write_text_atomic(dataset_dir / f"{split}_labels.txt", "\n".join(lines) + "\n")


class LabelledClip(NamedTuple):
    track_id: str
    split: str
    genre: str
    targets: tuple[float, ...] | None  # valence, energy, danceability (None: none known)


def write_labels(root: Path, clips: list[LabelledClip], multitask: bool) -> list[str]:
    """Every label file of the layout under `root`, full and beat-synced; the multitask test
    split lists ids only, as in the real set. Returns the data set folders written."""
    written = []
    for task in [GENRE_TASK] + ([MULTITASK_TASK] if multitask else []):
        for beat in (False, True):
            directory = root / dataset_dirname(task, beat)
            for split in SPLITS:
                mine = [c for c in clips if c.split == split]
                if task == GENRE_TASK:
                    genres = [(c.track_id, c.genre) for c in mine]
                    write_genre_labels(directory, split, beat, genres)
                else:
                    rows = [(c.track_id, c.targets if split == "train" else None) for c in mine]
                    write_multitask_labels(directory, split, beat, rows)
            written.append(directory.name)
    return written


def read_manifest(root: Path) -> dict:
    """Extracted data sets carry a manifest (class mapping); the real and demo sets do not."""
    path = root / MANIFEST
    if not path.exists():
        return {}
    return json.loads(path.read_text())

"""`musictune extract`'s state in OUT_DIR: the index of track ids and splits, and placing files.

The index (`extract_index.json`) fixes a file's track id the first time it is seen and its split
once it has decoded, so a rerun never renumbers or reshuffles. Arrays wait in the pending area
until their split is known, then move into the layouts of that split.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from musictune import layout
from musictune.atomic import write_text_atomic
from musictune.audio import features
from musictune.errors import UserError

INDEX = "extract_index.json"
PENDING = ".extract-pending"
INDEX_VERSION = 1


def assign_splits(genres: list[str], fraction: float, seed: int, need_test: bool) -> list[str]:
    """Stratified train/test assignment that also works for genres with one or two files.

    Each genre gets its share of the test clips (largest remainder, ties broken by the seed)
    but always keeps one file in train; sklearn's stratified split refuses such small genres.
    """
    n = len(genres)
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for i, g in enumerate(genres):
        members.setdefault(g, []).append(i)
    names = sorted(members)
    capacity = {g: len(members[g]) - 1 for g in names}
    n_test = int(n * fraction + 0.5)
    if need_test and n >= 2:
        n_test = max(n_test, 1)
    n_test = min(n_test, sum(capacity.values()))
    exact = {g: len(members[g]) * n_test / n for g in names} if n else {}
    quota = {g: min(int(exact[g]), capacity[g]) for g in names}
    tiebreak = {g: rng.random() for g in names}
    order = sorted(names, key=lambda g: (-(exact[g] - quota[g]), tiebreak[g]))
    left = n_test - sum(quota.values())
    while left > 0:
        for g in order:
            if left and quota[g] < capacity[g]:
                quota[g] += 1
                left -= 1
    split = ["train"] * n
    for g in names:
        for i in rng.permutation(members[g])[: quota[g]]:
            split[int(i)] = "test"
    return split


def settings_for(duration: float) -> dict:
    """What the arrays depend on: a rerun into the same OUT_DIR must use the same."""
    return {
        "sample_rate": features.SAMPLE_RATE,
        "n_fft": features.N_FFT,
        "hop_length": features.HOP_LENGTH,
        "duration": duration,
        "clip": "middle",
    }


def prepare_out_dir(out: Path) -> dict:
    """Create or reopen OUT_DIR; return its index (empty for a new one)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a folder: choose a folder for OUT_DIR")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write to {out} ({exc.strerror or exc}): choose an OUT_DIR you can write to"
        ) from None
    index_path = out / INDEX
    if not index_path.exists():
        if any(p for p in out.iterdir() if not p.name.startswith((".tmp-", PENDING))):
            raise UserError(
                f"{out} already holds files not written by `musictune extract` (no {INDEX}): "
                "choose an empty or new OUT_DIR"
            )
        return {}
    try:
        index = json.loads(index_path.read_text())
        index["tracks"] = {k: (int(v[0]), v[1]) for k, v in index["tracks"].items()}
        if not all(split in (None, *layout.SPLITS) for _, split in index["tracks"].values()):
            raise ValueError("unknown split")
        index["settings"] = dict(index["settings"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise UserError(
            f"{index_path} is damaged: delete {out} and extract again (or restore the file)"
        ) from None
    return index


def write_index(out: Path, settings: dict, tracks: dict[str, tuple[int, str | None]]) -> None:
    """tracks: file key -> (track id, split or None while the file awaits its split)."""
    body = {
        "version": INDEX_VERSION,
        "settings": settings,
        "tracks": {k: list(v) for k, v in sorted(tracks.items(), key=lambda kv: kv[1][0])},
    }
    write_text_atomic(out / INDEX, json.dumps(body, indent=1) + "\n")


def array_paths(out: Path, track: int, split: str, multitask: bool) -> tuple[tuple[str, bool], ...]:
    """(array path, beat-synced?) of a track in every layout of its split."""
    tasks = [layout.GENRE_TASK] + ([layout.MULTITASK_TASK] if multitask else [])
    name = layout.array_filename(str(track))
    return tuple(
        (str(out / layout.dataset_dirname(task, beat) / split / name), beat)
        for task in tasks
        for beat in (False, True)
    )


def pending_paths(out: Path, track: int) -> tuple[str, str]:
    """(full, beat) arrays of a track that has no split yet."""
    return str(out / PENDING / f"{track}.full.npy"), str(out / PENDING / f"{track}.beat.npy")


def place(out: Path, track: int, split: str, multitask: bool) -> None:
    """Move a pending file's arrays into the layouts of its split (a rename keeps the file)."""
    pending = pending_paths(out, track)
    for (path, beat), source in zip(array_paths(out, track, split, False), pending):
        if multitask:
            multi = out / layout.dataset_dirname(layout.MULTITASK_TASK, beat) / split
            layout.save_array_atomic(multi / Path(path).name, np.load(source, allow_pickle=False))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, path)

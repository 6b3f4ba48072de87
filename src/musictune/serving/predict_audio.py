"""`musictune predict`'s workers: one audio file -> the features of its windows.

A file is decoded once (`features.load_audio`, the decoder `musictune extract` uses) and cut into
windows of the model's clip length (`spans`); each window goes through the one feature code
(`features.extract_features`) on its own, as a clip of the data set did.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musictune.audio import features
from musictune.audio.extract_sources import AUDIO_EXTENSIONS
from musictune.errors import UserError

CLIP_SLACK = 0.05  # a file at most this much longer than a clip is scored as one window
SILENCE = 1e-4  # peak amplitude (-80 dBFS) below which a window counts as silent


class Window(NamedTuple):
    start: float  # seconds into the file
    end: float
    frames: np.ndarray  # (T, F) features of the model's view, not yet standardised


class Job(NamedTuple):
    """A worker's unit of work: one file -> its windows' features."""

    index: int
    path: str
    clip: int  # samples per window (0: the whole file)
    beat: bool
    rows: tuple[int, int]  # the view's rows of the (140, T) feature array


def audio_files(paths) -> list[Path]:
    """Files as given, and the audio files (by extension) anywhere below the folders given."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for given in map(Path, paths):
        given = given.expanduser()
        if given.is_dir():
            files += sorted(
                p
                for p in given.rglob("*")
                if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(given).parts)
            )
        elif given.is_file():
            files.append(given)
        else:
            raise UserError(f"audio {given} not found: pass audio files or folders that hold them")
    if not files:
        raise UserError(
            f"no audio files in {', '.join(map(str, paths)) or 'the arguments'}: pass files, or "
            f"folders holding {', '.join(sorted(AUDIO_EXTENSIONS))} files"
        )
    return list(dict.fromkeys(files))


def spans(n: int, clip: int) -> list[tuple[int, int]]:
    """(start, length) in samples of a file's windows: the whole file when clip is 0 or the file
    is at most CLIP_SLACK longer than a clip; else consecutive clips from its start plus one
    ending at its end (`batches.windows`, the rule a model trained on crops is scored by)."""
    from musictune.data.batches import windows

    if not clip or n <= clip * (1 + CLIP_SLACK):
        return [(0, n)]
    _, offsets, lengths = windows(np.array([n]), clip)
    return list(zip(offsets.tolist(), lengths.tolist()))


def file_windows(job: Job) -> tuple[int, list[Window] | str, float]:
    """(job index, the file's windows or why it cannot be used, its seconds): a worker's part."""
    from musictune.audio.extract_audio import _quiet_fd2  # decoders' own chatter on stderr

    if not os.path.isfile(job.path):
        return job.index, "file not found", 0.0
    try:
        with warnings.catch_warnings(), _quiet_fd2():
            warnings.simplefilter("ignore")
            y = features.load_audio(job.path)
            seconds = len(y) / features.SAMPLE_RATE
            found = _windows(y, job)
    except Exception as exc:  # decoders raise many types (soundfile, audioread, EOFError...)
        text = str(exc).strip().splitlines()
        return (
            job.index,
            f"cannot decode ({type(exc).__name__}{': ' + text[0] if text else ''})",
            0.0,
        )
    return job.index, found, seconds


def _windows(y: np.ndarray, job: Job) -> list[Window] | str:
    """The features of each window of a decoded file (silent and beatless ones left out), or
    why there are none: the checks `musictune extract` makes of a clip."""
    rate = features.SAMPLE_RATE
    if len(y) < features.N_FFT:
        return "too short (under 0.1 s of audio)"
    found, beatless = [], 0
    for start, length in spans(len(y), job.clip):
        part = y[start : start + length]
        if not np.abs(part).max() >= SILENCE:
            continue
        full, beat = features.extract_features(part, rate)
        array = beat if job.beat else full
        if array.shape[1] == 0:
            beatless += 1
            continue
        if not np.isfinite(array).all():
            return "features hold non-finite values (corrupt audio?)"
        frames = np.ascontiguousarray(array[slice(*job.rows)].T)
        found.append(Window(start / rate, (start + length) / rate, frames))
    if not found:
        return "no beats detected (silent?)" if beatless else "silent (no sample above -80 dBFS)"
    return found


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

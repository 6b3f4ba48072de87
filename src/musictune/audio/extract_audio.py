"""`musictune extract`'s workers: one audio file -> its feature arrays, run in a process pool.

Audio is read with the one feature code (`features.load_middle`, `features.extract_features`),
so an extracted clip holds exactly what the course data set would.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musictune import layout
from musictune.audio import features
from musictune.audio.pool import run_pool
from musictune.errors import UserError


class Job(NamedTuple):
    """A worker's unit of work: one file -> the arrays of every layout it belongs to."""

    index: int
    path: str
    arrays: tuple[tuple[str, bool], ...]  # (output path, beat-synced?)
    duration: float
    pending: tuple[str, str]  # (full, beat) in the pending area: reused when present


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Decoders (libmpg123 inside libsndfile) print to the C stderr on garbage input; the
    failure is reported with its reason instead."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _compute(path: str, duration: float) -> tuple[np.ndarray, np.ndarray] | str:
    """(full, beat) arrays, or the reason the file cannot be used."""
    if not os.path.isfile(path):
        return "file not found"
    try:
        with warnings.catch_warnings(), _quiet_fd2():
            warnings.simplefilter("ignore")
            y = features.load_middle(path, duration)
            if len(y) < features.N_FFT:
                return "too short (under 0.1 s of audio)"
            full, beat = features.extract_features(y, features.SAMPLE_RATE)
    except Exception as exc:  # decoders raise many types (soundfile, audioread, EOFError...)
        text = str(exc).strip().splitlines()
        return f"cannot decode ({type(exc).__name__}{': ' + text[0] if text else ''})"
    if beat.shape[1] == 0:
        return "no beats detected (silent?): the beat-synced view would be empty"
    if not (np.isfinite(full).all() and np.isfinite(beat).all()):
        return "features hold non-finite values (corrupt audio?)"
    return full, beat


def extract_job(job: Job) -> tuple[int, str | None, bool]:
    """Write every missing array of one file: (job index, failure reason or None, decoded?).

    A file whose arrays exist elsewhere (pending area, genre layout) is copied, not decoded.
    """
    missing = [(p, beat) for p, beat in job.arrays if not os.path.exists(p)]
    if not missing:
        return job.index, None, False
    known = [*job.arrays, *zip(job.pending, (False, True))]
    have = {beat: p for p, beat in reversed(known) if os.path.exists(p)}
    decoded = False
    if False in have and True in have:
        full, beat = (
            np.load(have[False], allow_pickle=False),
            np.load(have[True], allow_pickle=False),
        )
    else:
        result = _compute(job.path, job.duration)
        if isinstance(result, str):
            return job.index, result, True
        full, beat = result
        decoded = True
    for path, is_beat in missing:
        try:
            layout.save_array_atomic(Path(path), beat if is_beat else full)
        except OSError as exc:
            raise UserError(
                f"cannot write {path} ({exc.strerror or exc}): free disk space or fix permissions"
            ) from None
    return job.index, None, decoded


def run_jobs(todo: list[Job], jobs: int, progress: bool | None) -> dict[int, tuple]:
    """Job index -> extract_job's result, for the jobs that finished."""
    return {
        result[0]: result
        for result in run_pool(extract_job, todo, jobs, "extract", "file", progress)
    }

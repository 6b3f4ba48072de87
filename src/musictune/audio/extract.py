"""`musictune extract`: turn a folder of the user's own music into the data layout.

    musictune extract ~/music/gtzan data/gtzan --duration 30 --jobs 4
    musictune extract ~/music data/mine --csv ~/music/labels.csv   # path,genre[,valence,...]

Input is either one subfolder per genre (the folder name is the genre, files anywhere below
it) or a CSV with columns `path,genre` and optionally `valence,energy,danceability` (paths
relative to the CSV's folder, or absolute). Every clip goes through the one feature code
(`features.extract_features`) and is written into the full and beat-synced genre layouts, and
into the multitask layouts when the CSV gives the three targets (whose test split, as in the
real set, lists ids only). Each file gives its middle `--duration` seconds, all of it when
shorter: by default whole songs, and the middle 10 minutes of a longer file (0: no cap).

Resumable: `extract_index.json` in OUT_DIR fixes each file's track id the first time the file
is seen (written before any audio is read). New files are extracted into `.extract-pending/`
(each array written atomically; files already there are skipped), so a rerun of an interrupted
command finishes the rest. Only then are the new files that decoded given their train/test
split (recorded in the index, so it never changes) and moved into the layouts, and the label
files and the manifest (`musictune.json`: the class mapping the reader follows) are written.
An interrupted run resumed thus ends exactly like an uninterrupted one.

The inputs are read in `extract_sources`, files are decoded by `extract_audio`'s workers, and
the index, pending area and placement live in `extract_index`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musictune import layout
from musictune.atomic import write_text_atomic
from musictune.audio.extract_audio import Job, run_jobs
from musictune.audio.extract_index import (
    PENDING,
    array_paths,
    assign_splits,
    pending_paths,
    place,
    prepare_out_dir,
    settings_for,
    write_index,
)
from musictune.audio.extract_sources import Source, list_sources, read_mapping
from musictune.errors import UserError

# Seconds kept from the middle of each file: whole songs (training crops windows of them), but
# a worker's time and memory per file stay bounded (chroma_cqt's grow with the signal) and one
# long mix cannot outweigh the rest. 30 gives clips like the course's FMA ones; 0 no cap.
DEFAULT_DURATION = 600.0
DEFAULT_TEST_FRACTION = 0.15

Tracks = dict[str, tuple[int, str | None]]  # file key -> (track id, split or None)


@dataclass
class Summary:
    """What one run did, for the command's report."""

    out_dir: Path
    tracks: int = 0  # files in the data set after this run
    extracted: int = 0  # files decoded by this run
    skipped: int = 0  # files whose arrays were already there
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    splits: dict[str, int] = field(default_factory=dict)
    genres: dict[str, int] = field(default_factory=dict)
    layouts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_options(test_fraction: float, duration: float, jobs: int | None) -> None:
    if not 0 < test_fraction < 1:
        raise UserError(f"--test-fraction must lie strictly between 0 and 1, not {test_fraction}")
    if not (duration >= 0 and np.isfinite(duration)):
        raise UserError(f"--duration must be 0 (whole files) or more seconds, not {duration}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be 1 or more, not {jobs}")


def _check_audio_root(root: Path) -> None:
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UserError(
            f"audio folder {root} {what}: pass a folder with one subfolder per genre "
            "(or with the files a --csv lists)"
        )


def _assign_ids(out: Path, settings: dict, sources: list[Source]) -> Tracks:
    """Ids first, written before any audio is read: a rerun gives every file the same id."""
    index = prepare_out_dir(out)
    if index and index["settings"] != settings:
        old = index["settings"]
        raise UserError(
            f"{out} was extracted with --duration {old.get('duration')} (clip "
            f"{old.get('clip')}); rerun with the same settings or choose a new OUT_DIR"
        )
    tracks: Tracks = dict(index.get("tracks", {}))
    new = sorted(s.key for s in sources if s.key not in tracks)
    next_id = max((t for t, _ in tracks.values()), default=0) + 1
    tracks.update({key: (next_id + i, None) for i, key in enumerate(new)})
    if new or not index:
        write_index(out, settings, tracks)
    return tracks


def _plan(
    out: Path, sources: list[Source], tracks: Tracks, duration: float, multitask: bool
) -> list[Job]:
    """A job per file: files with a split write straight into its layouts, new ones wait in
    the pending area until the split is drawn among the files that decoded."""
    plan = []
    for i, s in enumerate(sources):
        track, split = tracks[s.key]
        pending = pending_paths(out, track)
        if split:
            arrays = array_paths(out, track, split, multitask)
        else:
            arrays = tuple(zip(pending, (False, True)))
        plan.append(Job(i, str(s.path), arrays, duration, pending))
    return plan


def _run(todo: list[Job], jobs: int | None, progress: bool | None, out: Path) -> dict[int, tuple]:
    """Run the jobs on up to `jobs` processes (default: the usable cores); on Ctrl-C say how to
    resume."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(jobs or cores or 1, max(len(todo), 1))
    try:
        return run_jobs(todo, workers, progress)
    except KeyboardInterrupt:
        print(
            f"extract: interrupted; rerun the same command to finish the remaining files "
            f"(finished ones are kept in {out})",
            file=sys.stderr,
        )
        raise


def _tally(
    summary: Summary,
    plan: list[Job],
    sources: list[Source],
    todo: list[Job],
    results: dict[int, tuple],
) -> list[Source]:
    """Count the outcomes into `summary`; return the files that are usable."""
    pending_jobs = {job.index for job in todo}
    ok: list[Source] = []
    for job, source in zip(plan, sources):
        _, reason, decoded = results.get(job.index, (job.index, None, False))
        if reason:
            summary.failed.append((source.key, reason))
            continue
        summary.extracted += decoded
        summary.skipped += job.index not in pending_jobs or not decoded
        ok.append(source)
    if not ok:
        first = summary.failed[0]
        raise UserError(
            f"none of the {len(sources)} audio file(s) could be used (e.g. {first[0]}: "
            f"{first[1]}); check they are audio files librosa reads (wav, ogg, flac, mp3)"
        )
    return ok


def _split_new_files(
    out: Path,
    settings: dict,
    tracks: Tracks,
    ok: list[Source],
    test_fraction: float,
    seed: int,
    multitask: bool,
) -> None:
    """Splits only now, among the new files that decoded: a broken file takes no test slot.

    Records the splits in `tracks` and the index, then moves the new files into their layouts.
    """
    fresh = sorted((s for s in ok if tracks[s.key][1] is None), key=lambda s: s.key)
    if not fresh:
        return
    has_test = any(tracks[s.key][1] == "test" for s in ok)
    splits = assign_splits([s.genre for s in fresh], test_fraction, seed, not has_test)
    tracks.update({s.key: (tracks[s.key][0], sp) for s, sp in zip(fresh, splits)})
    write_index(out, settings, tracks)
    for s in fresh:
        place(out, *tracks[s.key], multitask)


def _clear_pending(out: Path, tracks: Tracks, ok: list[Source]) -> None:
    for s in ok:  # copies left by a run stopped while placing its files
        for path in pending_paths(out, tracks[s.key][0]):
            Path(path).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (out / PENDING).rmdir()  # kept while a file that failed has pending arrays


def _write_labels(out: Path, done: list[tuple[Source, int, str]], multitask: bool) -> list[str]:
    clips = [layout.LabelledClip(str(t), sp, s.genre, s.targets) for s, t, sp in done]
    return layout.write_labels(out, clips, multitask)


def _write_manifest(out: Path, settings: dict, ok: list[Source], folding: dict | None) -> None:
    """The class mapping the reader follows: the user's folding over the genres present."""
    present = sorted({s.genre for s in ok})
    class_mapping = {**{g: g for g in present}, **folding} if folding else None
    manifest = {"class_mapping": class_mapping, "made_by": "musictune extract", **settings}
    write_text_atomic(out / layout.MANIFEST, json.dumps(manifest, indent=1) + "\n")


def _describe(
    summary: Summary, ok: list[Source], done: list[tuple[Source, int, str]], folding: dict | None
) -> None:
    """The data set's counts, and notes on what would stop training on it."""
    summary.tracks = len(done)
    summary.splits = dict(Counter(split for _, _, split in done))
    summary.genres = dict(sorted(Counter(s.genre for s in ok).items()))
    classes = {(folding or {}).get(s.genre, s.genre) for s, _, sp in done if sp == "train"}
    if len(classes) < 2:
        summary.notes.append("the train split has fewer than 2 classes: genre training needs 2+")
    if not summary.splits.get("test"):
        summary.notes.append("the test split is empty: add files (2+ per genre) and rerun")


def extract(
    audio_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    jobs: int | None = None,
    duration: float = DEFAULT_DURATION,
    mapping: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> Summary:
    """Extract AUDIO_ROOT into OUT_DIR (see the module docstring); rerunnable to resume.

    progress: None shows the bar only on a terminal, False hides it.
    """
    _check_options(test_fraction, duration, jobs)
    root, out = Path(audio_root).expanduser(), Path(out_dir).expanduser()
    _check_audio_root(root)
    folding = read_mapping(Path(mapping).expanduser()) if mapping else None
    sources, notes = list_sources(root, out, csv, folding, mapping)
    multitask = all(s.targets is not None for s in sources)
    settings = settings_for(duration)
    tracks = _assign_ids(out, settings, sources)

    plan = _plan(out, sources, tracks, duration, multitask)
    todo = [job for job in plan if not all(os.path.exists(p) for p, _ in job.arrays)]
    results = _run(todo, jobs, progress, out)
    summary = Summary(out_dir=out, notes=notes)
    ok = _tally(summary, plan, sources, todo, results)

    _split_new_files(out, settings, tracks, ok, test_fraction, seed, multitask)
    _clear_pending(out, tracks, ok)
    done = [(s, *tracks[s.key]) for s in ok]
    summary.layouts = _write_labels(out, done, multitask)
    _write_manifest(out, settings, ok, folding)
    _describe(summary, ok, done, folding)
    return summary

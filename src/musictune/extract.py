"""`musictune extract`: turn a folder of the user's own music into the data layout.

    musictune extract ~/music/gtzan data/gtzan --duration 30 --jobs 4
    musictune extract ~/music data/mine --csv ~/music/labels.csv   # path,genre[,valence,...]

Input is either one subfolder per genre (the folder name is the genre, files anywhere below
it) or a CSV with columns `path,genre` and optionally `valence,energy,danceability` (paths
relative to the CSV's folder, or absolute). Every clip goes through the one feature code
(`features.extract_features`) and is written into the full and beat-synced genre layouts, and
into the multitask layouts when the CSV gives the three targets (whose test split, as in the
real set, lists ids only). Clips are the middle `--duration` seconds of each file.

Resumable: `extract_index.json` in OUT_DIR fixes each file's track id the first time the file
is seen (written before any audio is read). New files are extracted into `.extract-pending/`
(each array written atomically; files already there are skipped), so a rerun of an interrupted
command finishes the rest. Only then are the new files that decoded given their train/test
split (recorded in the index, so it never changes) and moved into the layouts, and the label
files and the manifest (`musictune.json`: the class mapping the reader follows) are written.
An interrupted run resumed thus ends exactly like an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musictune import features, layout
from musictune.atomic import write_text_atomic
from musictune.errors import UserError
from musictune.pool import run_pool

INDEX = "extract_index.json"
PENDING = ".extract-pending"
INDEX_VERSION = 1
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".ogg", ".oga", ".opus", ".flac", ".mp3", ".au", ".aif", ".aiff", ".m4a", ".aac"}
)
CSV_COLUMNS = ("path", "genre")
DEFAULT_DURATION = 30.0  # seconds, the length of the FMA clips of the course data set
DEFAULT_TEST_FRACTION = 0.15


class Source(NamedTuple):
    """One audio file to extract: where it is, its key in the index, its labels."""

    path: Path
    key: str  # path relative to AUDIO_ROOT (posix), or absolute when outside it
    genre: str
    targets: tuple[float, float, float] | None


class Job(NamedTuple):
    """A worker's unit of work: one file -> the arrays of every layout it belongs to."""

    index: int
    path: str
    arrays: tuple[tuple[str, bool], ...]  # (output path, beat-synced?)
    duration: float
    pending: tuple[str, str]  # (full, beat) in the pending area: reused when present


@dataclass
class Summary:
    out_dir: Path
    tracks: int = 0  # files in the data set after this run
    extracted: int = 0  # files decoded by this run
    skipped: int = 0  # files whose arrays were already there
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    splits: dict[str, int] = field(default_factory=dict)
    genres: dict[str, int] = field(default_factory=dict)
    layouts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- inputs


def _check_genre(genre: str, where: str) -> str:
    genre = genre.strip()
    if not genre or any(c in genre for c in "\t\r\n"):
        raise UserError(f"{where}: genre {genre!r} is empty or holds a tab or newline; rename it")
    return genre


def _key(path: Path, root: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return absolute.as_posix()


def scan_folders(root: Path, exclude: Path | None = None) -> tuple[list[Source], list[str]]:
    """Genre subfolders -> sources, plus notes on what was ignored (loose or non-audio files)."""
    sources, notes = [], []
    loose = [p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    ignored = 0
    skip = Path(os.path.abspath(exclude)) if exclude else None
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if skip and Path(os.path.abspath(folder)) == skip:
            continue
        genre = _check_genre(folder.name, str(folder))
        for path in sorted(folder.rglob("*")):
            if any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue
            if not path.is_file():
                continue
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                sources.append(Source(path, _key(path, root), genre, None))
            else:
                ignored += 1
    if not sources:
        raise UserError(
            f"{root} holds no audio files in genre subfolders: put them in {root}/<genre>/ "
            f"({', '.join(sorted(AUDIO_EXTENSIONS))}) or pass --csv FILE with columns path,genre"
        )
    if loose:
        notes.append(f"ignored {len(loose)} file(s) directly in {root} (not in a genre folder)")
    if ignored:
        notes.append(f"ignored {ignored} file(s) without an audio extension")
    return sources, notes


def read_csv(csv_path: Path, root: Path) -> list[Source]:
    """`path,genre[,valence,energy,danceability]`; relative paths start at the CSV's folder."""
    import pandas as pd

    if not csv_path.is_file():
        raise UserError(f"CSV file {csv_path} not found: pass --csv an existing file")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{csv_path}: not a readable CSV ({reason}); fix the file") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    want = "path,genre (and optionally " + ",".join(layout.AFFECT_TARGETS) + ")"
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(
            f"{csv_path}: missing column {', '.join(missing)} (header: "
            f"{','.join(table.columns)}); the header must name {want}"
        )
    given = [t for t in layout.AFFECT_TARGETS if t in table.columns]
    if given and len(given) != len(layout.AFFECT_TARGETS):
        absent = [t for t in layout.AFFECT_TARGETS if t not in given]
        raise UserError(
            f"{csv_path}: has {', '.join(given)} but not {', '.join(absent)}; "
            "give all three targets or none"
        )
    if table.empty:
        raise UserError(f"{csv_path} lists no files: add one row per audio file")
    sources, seen = [], {}
    for line, row in enumerate(table.itertuples(index=False), start=2):
        values = row._asdict()
        text = values["path"].strip()
        if not text:
            raise UserError(f"{csv_path} line {line}: the path is empty; fill it in")
        path = Path(text).expanduser()
        path = path if path.is_absolute() else csv_path.parent / path
        key = _key(path, root)
        if key in seen:
            raise UserError(
                f"{csv_path} line {line}: {text} is listed again (first on line {seen[key]}); "
                "keep one row per file"
            )
        seen[key] = line
        genre = _check_genre(values["genre"], f"{csv_path} line {line}")
        targets = None
        if given:
            try:
                targets = tuple(float(values[t]) for t in layout.AFFECT_TARGETS)
            except ValueError:
                raise UserError(
                    f"{csv_path} line {line}: a target value is not a number; fix that row"
                ) from None
            if not all(0.0 <= v <= 1.0 for v in targets):
                raise UserError(
                    f"{csv_path} line {line}: targets must lie in [0, 1], got {targets}; fix it"
                )
        sources.append(Source(path, key, genre, targets))
    return sources


def read_mapping(path: Path) -> dict[str, str | None]:
    """A JSON object genre -> class name, or null to leave the genre out."""
    try:
        mapping = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"mapping file {path} not found: pass --mapping an existing file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"mapping file {path} is not valid JSON ({exc}); fix it") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, str) and v.strip()))
        for k, v in mapping.items()
    ):
        raise UserError(
            f'mapping file {path} must be one JSON object of "genre": "class" or null '
            '(e.g. {"hiphop": "Hip-Hop", "country": null}); fix it'
        )
    return {k.strip(): (v.strip() if v else None) for k, v in mapping.items()}


# --------------------------------------------------------------------------- index and splits


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


def _settings(duration: float) -> dict:
    return {
        "sample_rate": features.SAMPLE_RATE,
        "n_fft": features.N_FFT,
        "hop_length": features.HOP_LENGTH,
        "duration": duration,
        "clip": "middle",
    }


def _prepare_out_dir(out: Path) -> dict:
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


def _write_index(out: Path, settings: dict, tracks: dict[str, tuple[int, str | None]]) -> None:
    body = {
        "version": INDEX_VERSION,
        "settings": settings,
        "tracks": {k: list(v) for k, v in sorted(tracks.items(), key=lambda kv: kv[1][0])},
    }
    write_text_atomic(out / INDEX, json.dumps(body, indent=1) + "\n")


# --------------------------------------------------------------------------- workers


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


def middle(y: np.ndarray, duration: float) -> np.ndarray:
    """The middle `duration` seconds (all of it when shorter, or when duration is 0)."""
    n = int(round(duration * features.SAMPLE_RATE))
    if n <= 0 or len(y) <= n:
        return y
    start = (len(y) - n) // 2
    return y[start : start + n]


def _compute(path: str, duration: float) -> tuple[np.ndarray, np.ndarray] | str:
    """(full, beat) arrays, or the reason the file cannot be used."""
    if not os.path.isfile(path):
        return "file not found"
    try:
        with warnings.catch_warnings(), _quiet_fd2():
            warnings.simplefilter("ignore")
            y = middle(features.load_audio(path), duration)
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


def _run_jobs(todo: list[Job], jobs: int, progress: bool | None) -> dict[int, tuple]:
    return {
        result[0]: result
        for result in run_pool(extract_job, todo, jobs, "extract", "file", progress)
    }


# --------------------------------------------------------------------------- the command


def _array_paths(out: Path, track: int, split: str, multitask: bool) -> tuple[tuple[str, bool]]:
    tasks = [layout.GENRE_TASK] + ([layout.MULTITASK_TASK] if multitask else [])
    name = layout.array_filename(str(track))
    return tuple(
        (str(out / layout.dataset_dirname(task, beat) / split / name), beat)
        for task in tasks
        for beat in (False, True)
    )


def _pending_paths(out: Path, track: int) -> tuple[str, str]:
    return str(out / PENDING / f"{track}.full.npy"), str(out / PENDING / f"{track}.beat.npy")


def _place(out: Path, track: int, split: str, multitask: bool) -> None:
    """Move a pending file's arrays into the layouts of its split (a rename keeps the file)."""
    pending = _pending_paths(out, track)
    for (path, beat), source in zip(_array_paths(out, track, split, False), pending):
        if multitask:
            multi = out / layout.dataset_dirname(layout.MULTITASK_TASK, beat) / split
            layout.save_array_atomic(multi / Path(path).name, np.load(source, allow_pickle=False))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, path)


def _write_labels(out: Path, done: list[tuple[Source, int, str]], multitask: bool) -> list[str]:
    clips = [layout.LabelledClip(str(t), sp, s.genre, s.targets) for s, t, sp in done]
    return layout.write_labels(out, clips, multitask)


def _sources(
    root: Path, out: Path, csv: str | os.PathLike | None, folding: dict | None, mapping_name
) -> tuple[list[Source], list[str]]:
    if csv:
        sources, notes = read_csv(Path(csv).expanduser(), root), []
    else:
        sources, notes = scan_folders(root, exclude=out)
    if folding:
        dropped = Counter(s.genre for s in sources if s.genre in folding and not folding[s.genre])
        sources = [s for s in sources if s.genre not in dropped]
        if dropped:
            notes.append(
                f"left out {sum(dropped.values())} file(s) of genres mapped to null: "
                + ", ".join(sorted(dropped))
            )
        if not sources:
            raise UserError(
                f"the mapping {mapping_name} drops every genre: map at least one to a class"
            )
    return sources, notes


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
    if not 0 < test_fraction < 1:
        raise UserError(f"--test-fraction must lie strictly between 0 and 1, not {test_fraction}")
    if not (duration >= 0 and np.isfinite(duration)):
        raise UserError(f"--duration must be 0 (whole files) or more seconds, not {duration}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be 1 or more, not {jobs}")
    root, out = Path(audio_root).expanduser(), Path(out_dir).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UserError(
            f"audio folder {root} {what}: pass a folder with one subfolder per genre "
            "(or with the files a --csv lists)"
        )
    folding = read_mapping(Path(mapping).expanduser()) if mapping else None
    sources, notes = _sources(root, out, csv, folding, mapping)
    multitask = all(s.targets is not None for s in sources)

    # Ids first, written before any audio is read: a rerun gives every file the same id.
    index = _prepare_out_dir(out)
    settings = _settings(duration)
    if index and index["settings"] != settings:
        old = index["settings"]
        raise UserError(
            f"{out} was extracted with --duration {old.get('duration')} (clip "
            f"{old.get('clip')}); rerun with the same settings or choose a new OUT_DIR"
        )
    tracks: dict[str, tuple[int, str | None]] = dict(index.get("tracks", {}))
    new = sorted(s.key for s in sources if s.key not in tracks)
    next_id = max((t for t, _ in tracks.values()), default=0) + 1
    tracks.update({key: (next_id + i, None) for i, key in enumerate(new)})
    if new or not index:
        _write_index(out, settings, tracks)

    plan = []
    for i, s in enumerate(sources):
        track, split = tracks[s.key]
        pending = _pending_paths(out, track)
        if split:
            arrays = _array_paths(out, track, split, multitask)
        else:
            arrays = tuple(zip(pending, (False, True)))
        plan.append(Job(i, str(s.path), arrays, duration, pending))
    todo = [job for job in plan if not all(os.path.exists(p) for p, _ in job.arrays)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(jobs or cores or 1, max(len(todo), 1))
    try:
        results = _run_jobs(todo, workers, progress)
    except KeyboardInterrupt:
        print(
            f"extract: interrupted; rerun the same command to finish the remaining files "
            f"(finished ones are kept in {out})",
            file=sys.stderr,
        )
        raise

    summary = Summary(out_dir=out, notes=notes)
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

    # Splits only now, among the new files that decoded: a broken file takes no test slot.
    fresh = sorted((s for s in ok if tracks[s.key][1] is None), key=lambda s: s.key)
    if fresh:
        has_test = any(tracks[s.key][1] == "test" for s in ok)
        splits = assign_splits([s.genre for s in fresh], test_fraction, seed, not has_test)
        tracks.update({s.key: (tracks[s.key][0], sp) for s, sp in zip(fresh, splits)})
        _write_index(out, settings, tracks)
        for s in fresh:
            _place(out, *tracks[s.key], multitask)
    for s in ok:  # copies left by a run stopped while placing its files
        for path in _pending_paths(out, tracks[s.key][0]):
            Path(path).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (out / PENDING).rmdir()  # kept while a file that failed has pending arrays

    done = [(s, *tracks[s.key]) for s in ok]
    summary.layouts = _write_labels(out, done, multitask)
    present = sorted({s.genre for s in ok})
    class_mapping = {**{g: g for g in present}, **folding} if folding else None
    manifest = {"class_mapping": class_mapping, "made_by": "musictune extract", **settings}
    write_text_atomic(out / layout.MANIFEST, json.dumps(manifest, indent=1) + "\n")

    summary.tracks = len(done)
    summary.splits = dict(Counter(split for _, _, split in done))
    summary.genres = dict(sorted(Counter(s.genre for s in ok).items()))
    classes = {(folding or {}).get(s.genre, s.genre) for s, _, sp in done if sp == "train"}
    if len(classes) < 2:
        summary.notes.append("the train split has fewer than 2 classes: genre training needs 2+")
    if not summary.splits.get("test"):
        summary.notes.append("the test split is empty: add files (2+ per genre) and rerun")
    return summary

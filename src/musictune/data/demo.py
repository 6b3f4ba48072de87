"""The synthetic demo data set: `synth`'s music per FMA genre, written in the real layout.

Nothing is downloaded. Each clip is synthesized (`musictune.audio.synth`), passed through the one
feature extraction (`features.extract_features`) and saved into the four data sets with its
genre and affect targets. The result is deterministic for a seed, whatever the number of
worker processes.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musictune import layout, paths
from musictune.audio import features
from musictune.audio.pool import run_pool
from musictune.audio.synth import RECIPES, affect_targets, draw_clip, render
from musictune.errors import UserError
from musictune.genres import FMA_CLASS_MAPPING, FMA_GENRES

# Demo sizes: (train clips, test clips, seconds per clip). Clips are far shorter than the real
# 30 s so that generating the data and training on it stay quick on a laptop CPU.
SIZES: dict[str, tuple[int, int, float]] = {
    "tiny": (80, 20, 3.0),  # for tests
    # The default: >= 150 mapped genre clips in both validation (20 % of train) and test, so
    # macro F1 over 10 imbalanced classes is not decided by a handful of clips.
    "small": (860, 180, 3.0),
}


class Job(NamedTuple):
    """A worker's unit of work: one clip, fixed by (seed, index) whatever the worker."""

    root: str
    seed: int
    index: int
    track_id: str
    split: str
    genre: str
    seconds: float


def _plan(size: str, seed: int, root: Path) -> list[Job]:
    """Track ids and genres: imbalanced like FMA, yet every genre twice in train and every
    mapped class in test, so the stratified split and the test report always work."""
    n_train, n_test, seconds = SIZES[size]
    rng = np.random.default_rng(seed)
    weights = np.array([RECIPES[g].weight for g in FMA_GENRES])
    weights /= weights.sum()

    def draw(k: int) -> list[str]:
        return [FMA_GENRES[i] for i in rng.choice(len(FMA_GENRES), k, p=weights)]

    train = [g for g in FMA_GENRES for _ in range(2)]
    train += draw(n_train - len(train))
    test = []
    for cls in sorted({c for c in FMA_CLASS_MAPPING.values() if c}):
        members = [g for g in FMA_GENRES if FMA_CLASS_MAPPING[g] == cls]
        p = np.array([RECIPES[g].weight for g in members])
        test.append(members[rng.choice(len(members), p=p / p.sum())])
    test += draw(n_test - len(test))
    genres = list(rng.permutation(train)) + list(rng.permutation(test))
    ids = rng.choice(np.arange(1, 100_000), n_train + n_test, replace=False)
    return [
        Job(str(root), seed, i, str(ids[i]), "train" if i < n_train else "test", str(g), seconds)
        for i, g in enumerate(genres)
    ]


def render_job(job: Job) -> tuple[int, tuple[float, float, float]]:
    """Render, extract and save one clip into all four data sets (a worker's unit of work).

    Each clip has its own generator seeded by (seed, index): the order of work is irrelevant.
    """
    rng = np.random.default_rng([job.seed, job.index + 1])
    clip = draw_clip(job.genre, rng)
    targets = affect_targets(clip, rng)
    full, beat = features.extract_features(render(clip, job.seconds, rng), features.SAMPLE_RATE)
    name = layout.array_filename(job.track_id)
    for array, is_beat in ((full, False), (beat, True)):
        genre = Path(job.root) / layout.dataset_dirname(layout.GENRE_TASK, is_beat) / job.split
        multi = Path(job.root) / layout.dataset_dirname(layout.MULTITASK_TASK, is_beat) / job.split
        layout.save_array_atomic(genre / name, array)
        multi.mkdir(parents=True, exist_ok=True)
        try:
            os.link(genre / name, multi / name)  # same clip in both tasks: half the disk
        except OSError:
            layout.save_array_atomic(multi / name, array)
    return job.index, targets


def _render_all(plan: list[Job], jobs: int, progress: bool) -> dict[int, tuple]:
    done = run_pool(render_job, plan, jobs, "demo data", "clip", progress, warm_first=True)
    return dict(done)


def _write_labels(root: Path, plan: list[Job], targets: dict[int, tuple]) -> None:
    clips = [layout.LabelledClip(j.track_id, j.split, j.genre, targets[j.index]) for j in plan]
    layout.write_labels(root, clips, multitask=True)


def _is_filled(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def _exists_error(out: Path) -> UserError:
    return UserError(f"{out} already exists: remove it or pass another --out")


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise UserError(f"unknown demo size {size!r}: choose one of {', '.join(SIZES)}")


def _tmp_prefix(out: Path) -> str:
    # The host is in the name: on a shared file system only this host's pids can be checked.
    return f".tmp-{out.name}-{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _remove_stale_tmp(out: Path) -> None:
    """Delete half-written sets that killed generations (SIGKILL, power loss) left beside `out`.

    Ctrl-C and errors clean up after themselves; a killed process cannot, and its clips would
    otherwise fill the disk unseen. Only directories of dead processes on this host go.
    """
    prefix = _tmp_prefix(out)
    for tmp in out.parent.glob(prefix + "*"):
        pid = tmp.name[len(prefix) :]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            shutil.rmtree(tmp, ignore_errors=True)


def generate_demo(
    out: Path, size: str = "small", seed: int = 0, jobs: int | None = None, progress: bool = True
) -> Path:
    """Write the demo data set to `out` and return it.

    Clips are rendered in parallel into a temporary sibling directory that becomes `out` by one
    rename when complete, so `out` is either absent or whole, even after Ctrl-C or a crash.
    """
    _check_size(size)
    if seed < 0:
        raise UserError(f"the demo seed must be 0 or more, not {seed}")
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise UserError(f"jobs must be 1 or more, not {jobs}")
    out = Path(out)
    if _is_filled(out):
        raise _exists_error(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(out)
    tmp = out.parent / f"{_tmp_prefix(out)}{os.getpid()}"
    try:
        plan = _plan(size, seed, tmp)
        _write_labels(tmp, plan, _render_all(plan, min(jobs, len(plan)), progress))
        if out.is_dir():
            out.rmdir()  # empty (checked above); fails if another process filled it meanwhile
        tmp.rename(out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and _is_filled(out):
            raise _exists_error(out) from err  # another process finished first
        raise
    return out


def ensure_demo(size: str = "small", seed: int = 0, progress: bool = True) -> Path:
    """The cached demo data set (`paths.demo_data_dir`), generated on first use.

    Processes racing to generate it each render their own copy; the first rename wins and
    the others use it.
    """
    _check_size(size)
    out = paths.demo_data_dir(size)
    if _is_filled(out):
        return out
    print(f"musictune: generating the {size} demo data once, into {out}", file=sys.stderr)
    try:
        return generate_demo(out, size, seed, progress=progress)
    except UserError:
        if _is_filled(out):
            return out
        raise

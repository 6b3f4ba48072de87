"""Whole tracks: what `musictune train` costs on whole songs before and after splits were stored
end to end (a12697e), with `--crop`, against today's 30-s clips; and K-fold against one fit.

    python benchmarks/whole_tracks.py                                 # 80 tracks, 3 repeats
    python benchmarks/whole_tracks.py --quick --repeats 1 --no-save   # tiny: a smoke test

Before a12697e every split was zero-padded to its longest clip, so training on whole tracks held
every track padded to the longest one; since then clips are stored end to end and a batch pads
only the clips it holds, and `--crop SECONDS` trains on one random window per clip (evaluation
averages each clip's consecutive windows). Each repeat times five real `musictune train`
processes (`python -m musictune train`, CPU, patience 0), each with a fresh split cache
($MUSICTUNE_CACHE), in this order (the claim's side first):

    this checkout, the whole tracks, --crop 30
    this checkout, the 30-s clips (what the crop run costs with this code alone)
    this checkout, whole tracks, no crop
    commit BEFORE (a12697e's parent, exported with `git archive`), whole tracks
    commit BEFORE, the 30-s clips: today's reference epoch

and reads, for each, the seconds per epoch (between its epoch lines, stamped as they arrive,
over the epochs after the first, which also pays torch's warm-up), the wall time and the peak
resident memory (the kernel's high-water mark for that process, from wait4). The issue's
target: a crop epoch on whole tracks costs about what a 30-s clip epoch costs today. Then, in
this process, one `fit_folds` with K folds against one `fit` of the same model, data (the 30-s
clips) and epochs, after an untimed 1-epoch fit: the issue's bound is K.

The data is written here, outside every timed figure, in the real layout: random (140, T)
arrays with a class-dependent offset (training cost does not depend on content), track lengths
spread like songs (2-8 min at 43.07 frames a second, one 11-min outlier), and every track's
middle 30 s. The two no-crop runs train on the first 40 of the 80 tracks (the outlier
included): on the full set they took 100-150 s each on 2 busy cores, as long as the rest of a
repeat. The model is the CNN family on the chroma view with one conv block: the default CNN (4
blocks on mel) trains about 740 frames a second on 2 busy cores, so one no-crop epoch would take
half an hour. `--features mel --conv-blocks 4` measures that model on a bigger machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import main_job  # noqa: E402

from musictune import layout, paths  # noqa: E402
from musictune.audio.features import VIEWS  # noqa: E402
from musictune.errors import UserError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "994799e"  # a12697e^: the last commit with splits padded to their longest clip
FRAMES_PER_SECOND = 22050 / 512  # full-length views (musictune.data.dataset.FRAMES_PER_SECOND)
GENRES = ("Rock", "Electronic", "Hip-Hop", "Classical")  # FMA names that are their own class
ABOUT = 1.25  # "about what a 30-s clip epoch costs": read as at most 25 % more
EPOCH_LINE = re.compile(r"^epoch\s+(\d+)\s.*\(\d+(?:\.\d+)?s\)\s*$")
WINDOWS_LINE = re.compile(r"on its windows \((\d+) for (\d+) clips\)")
# key: (checkout, data set, crop?), in the order each repeat runs them (the claim's side first)
RUNS = {
    "crop": ("new", "whole", True),
    "clips_now": ("new", "clips", False),
    "whole": ("new", "part", False),
    "before": ("old", "part", False),
    "clips": ("old", "clips", False),
}
LABELS = {
    "crop": "this commit, {tracks} whole tracks, --crop {crop} s",
    "clips_now": "this commit, {crop}-s clips",
    "whole": "this commit, {part} whole tracks, no crop",
    "before": f"commit {BEFORE}, {{part}} whole tracks",
    "clips": f"commit {BEFORE}, {{crop}}-s clips",
}


# --------------------------------------------------------------------------- data


def track_lengths(count: int, seconds: tuple[float, float, float, float], seed: int):
    """Frames per track: log-normal around the median, clipped to [low, high], and the first
    track the long outlier. seconds = (low, median, high, outlier)."""
    low, middle, high, outlier = seconds
    rng = np.random.default_rng(seed)
    spread = np.clip(rng.lognormal(np.log(middle), 0.35, count), low, high)
    spread[0] = outlier
    return np.round(spread * FRAMES_PER_SECOND).astype(np.int64)


def part_of(tracks: int, test_tracks: int, part: int) -> tuple[int, int]:
    """(train, test) tracks of the first `part` tracks' set, in the full set's proportions."""
    train = round(part * (tracks - test_tracks) / tracks)
    return train, part - train


def write_sets(
    root: Path, lengths: np.ndarray, n_test: int, clip_frames: int, part: int, seed: int
) -> dict[str, Path]:
    """Three sets in the genre layout (full length), the last `n_test` tracks the test split:
    whole tracks (root/whole), the first `part` of them, train and test alike (root/part, the
    outlier included), and every track's middle `clip_frames` (root/clips)."""
    rng = np.random.default_rng(seed + 1)
    directory = layout.dataset_dirname(layout.GENRE_TASK, beat=False)
    sets = {name: root / name for name in ("whole", "part", "clips")}
    n_train = len(lengths) - n_test
    part_train, part_test = part_of(len(lengths), n_test, part)
    for split, first in (("train", 0), ("test", n_train)):
        rows = {name: [] for name in sets}
        for i in range(first, n_train if split == "train" else len(lengths)):
            track, g = str(1000 + i), i % len(GENRES)
            array = rng.standard_normal((140, int(lengths[i])), dtype=np.float32)
            array[(g * 7) % 128] += 1.0  # a class-dependent offset in mel and chroma
            array[128 + g % 12] += 1.0
            middle = max(0, (array.shape[1] - clip_frames) // 2)
            arrays = {"whole": array, "clips": array[:, middle : middle + clip_frames]}
            if i - first < (part_train if split == "train" else part_test):
                arrays["part"] = array
            for name, a in arrays.items():
                path = sets[name] / directory / split / layout.array_filename(track)
                layout.save_array_atomic(path, np.ascontiguousarray(a))
                rows[name].append((track, GENRES[g]))
        for name, folder in sets.items():
            layout.write_genre_labels(folder / directory, split, False, rows[name])
    return sets


def data_note(lengths: np.ndarray, test_tracks: int, part: int) -> str:
    """What the whole-track sets hold, in frames."""
    part_train, part_test = part_of(len(lengths), test_tracks, part)
    n_train = len(lengths) - test_tracks
    in_part = np.r_[lengths[:part_train], lengths[n_train : n_train + part_test]]
    return (
        f"{len(lengths)} tracks ({n_train} train, {test_tracks} test): {lengths[1:].min()}-"
        f"{lengths[1:].max()} frames (median {np.median(lengths):.0f}) and a "
        f"{lengths[0]}-frame outlier, {lengths.sum() / 1e6:.2f} M frames; the no-crop runs: "
        f"the first {part} ({part_train} train, {part_test} test, the outlier included), "
        f"{in_part.sum() / 1e6:.2f} M frames"
    )


# --------------------------------------------------------------------------- runs


def ray_running() -> bool:
    """Whether this process has started Ray (run_all does), without importing it otherwise."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def export_before(into: Path) -> Path:
    return main_job.export(BEFORE, into, "BEFORE in benchmarks/whole_tracks.py")


def train_process(checkout: Path, cache: Path, argv: list[str], log: Path, cpus: int) -> dict:
    """One `python -m musictune train` from `checkout`, with its own fresh split cache and
    `cpus` torch threads: wall time, seconds per epoch, peak RSS (GiB) and the crop windows.

    Each line of its output is stamped as it arrives (the epoch lines are flushed), so an
    epoch's time is the span between two epoch lines, finer than the 0.1 s they print.
    """
    env = {**main_job.side_env(checkout, cache), "OMP_NUM_THREADS": str(cpus)}
    new = (checkout / "src/musictune/__main__.py").exists()  # older checkouts: musictune.cli
    command = [sys.executable, "-m", "musictune" if new else "musictune.cli", "train", *argv]
    stamped = []
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=log.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    with process.stdout:
        for line in process.stdout:
            stamped.append((time.perf_counter(), line.rstrip("\n")))
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage: its peak RSS
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = "\n".join(line for _, line in stamped)
    log.write_text(text + "\n")
    shutil.rmtree(cache, ignore_errors=True)
    if process.returncode:
        raise RuntimeError(f"`musictune train` from {checkout} failed:\n{text[-2000:]}")
    epochs = [(t, int(m[1])) for t, m in ((t, EPOCH_LINE.match(x)) for t, x in stamped) if m]
    if len(epochs) < 2:
        raise RuntimeError(f"fewer than 2 epoch lines from {checkout}:\n{text[-2000:]}")
    # Epochs after the first: the first also pays torch's one-off warm-up.
    (first_t, first), (last_t, last) = epochs[0], epochs[-1]
    kib = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS
    windows = WINDOWS_LINE.search(text)
    return {
        "wall": wall,
        "epoch": (last_t - first_t) / (last - first),
        "peak_gib": kib / 2**20,
        "windows": tuple(map(int, windows.groups())) if windows else None,
    }


def train_all(jobs: dict[str, tuple]) -> dict[str, dict]:
    """`train_process(*job)` for each run, one after the other in the order given, so that no
    run shares the cores with another (the tests run them two at a time: they time nothing)."""
    return {key: train_process(*job) for key, job in jobs.items()}


@contextlib.contextmanager
def cache_in(folder: Path) -> Iterator[None]:
    """$MUSICTUNE_CACHE set to `folder` for this process, then put back."""
    saved = os.environ.get(paths.CACHE_ENV)
    os.environ[paths.CACHE_ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(paths.CACHE_ENV, None)
        else:
            os.environ[paths.CACHE_ENV] = saved


def kfold_pair(
    data_dir: Path, features: str, conv_blocks: int, epochs: int, folds: int, seed: int, cpus: int
) -> dict:
    """Seconds of one `fit_folds` with `folds` models, then one plain `fit`: same model,
    data, epochs and threads (the data loaded once, untimed)."""
    import torch

    from musictune.data.dataset import load_dataset
    from musictune.training.folds import fit_folds
    from musictune.training.loop import TrainConfig, build_model, fit

    data = load_dataset(data_dir, features=features, folds=folds)
    config = TrainConfig(max_epochs=epochs, patience=0, seed=seed, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(cpus)
    try:
        warm_up = replace(config, max_epochs=1)  # untimed: torch's one-off start-up costs
        fit(build_model(data, "cnn", seed, conv_blocks=conv_blocks), data, warm_up)
        models = [build_model(data, "cnn", seed, conv_blocks=conv_blocks) for _ in range(folds)]
        started = time.perf_counter()
        fit_folds(models, data, config)
        folded = time.perf_counter() - started
        model = build_model(data, "cnn", seed, conv_blocks=conv_blocks)
        started = time.perf_counter()
        fit(model, data, config)
        plain = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    return {"folds_s": folded, "fit_s": plain}


def run(
    data_dir: Path | None = None,
    preset: str = common.DEFAULT_PRESET,
    tracks: int = 80,
    test_tracks: int = 16,
    no_crop_tracks: int = 40,
    track_s: tuple[float, float, float, float] = (120, 240, 480, 660),
    clip_frames: int = 1293,
    crop_s: float = 30,
    epochs: int = 2,
    folds: int = 5,
    features: str = "chroma",
    conv_blocks: int = 1,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
    cpus: int | None = None,
) -> list[common.Row]:
    """The rows of the table. `data_dir` and `preset` are not used (this benchmark writes its
    own data and trains the CNN family); they are taken so run_all calls it like the others.
    `cpus`: torch threads of every run (default: the running Ray's CPUs, else every core)."""
    cpus = cpus or (common.ray_cpus() if ray_running() else os.cpu_count() or 1)
    if features not in VIEWS:
        raise UserError(f"--features {features!r}: choose one of {', '.join(VIEWS)}")
    if epochs < 2:
        raise UserError(
            f"epochs {epochs}: at least 2 (the first, with torch's warm-up, is not timed)"
        )
    results, windows = [], None
    lengths = track_lengths(tracks, track_s, seed)
    with tempfile.TemporaryDirectory(prefix="bench-whole-tracks-") as tmp:
        tmp = Path(tmp)
        sets = write_sets(tmp / "data", lengths, test_tracks, clip_frames, no_crop_tracks, seed)
        checkouts = {"new": ROOT, "old": export_before(tmp / "old")}
        shared = [
            "--model", "cnn", "--features", features, "--conv-blocks", str(conv_blocks),
            "--epochs", str(epochs), "--patience", "0", "--device", "cpu", "--seed", str(seed),
        ]  # fmt: skip
        logs = tmp / "logs"
        logs.mkdir()
        for r in range(repeats):
            figures, jobs = {}, {}
            for key, (side, data, crop) in RUNS.items():
                argv = [*shared, "--data-dir", str(sets[data])]
                argv += ["--crop", f"{crop_s:g}"] if crop else []
                cache, log = tmp / f"cache-{key}-{r}", logs / f"{key}-{r}.txt"
                jobs[key] = (checkouts[side], cache, argv, log, cpus)
            for key, done in train_all(jobs).items():
                windows = done.pop("windows") or windows
                figures.update({f"{key}_{k}": v for k, v in done.items()})
            with cache_in(tmp / f"cache-kfold-{r}"):
                figures.update(
                    kfold_pair(sets["clips"], features, conv_blocks, epochs, folds, seed, cpus)
                )
            results.append(figures)

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    def ratios(top: str, bottom: str) -> list[float]:
        return [r[top] / r[bottom] for r in results]

    rows = []
    names = {"tracks": tracks, "part": no_crop_tracks, "crop": f"{crop_s:g}"}
    for key, label in LABELS.items():
        label = label.format(**names)
        note = data_note(lengths, test_tracks, no_crop_tracks) if key == "crop" else ""
        rows += [
            common.Row("whole tracks", f"{label}: s per epoch", values(f"{key}_epoch"), note=note),
            common.Row("whole tracks", f"{label}: wall time (s)", values(f"{key}_wall")),
            common.Row("whole tracks", f"{label}: peak RSS (GiB)", values(f"{key}_peak_gib")),
        ]
    crop_frames = max(1, round(crop_s * FRAMES_PER_SECOND))
    seen = f"{windows[0]} windows for {windows[1]} validation tracks" if windows else "windows"
    rows += [
        common.Row(
            "whole tracks",
            f"crop epoch on whole tracks / {crop_s:g}-s clip epoch at {BEFORE}",
            ratios("crop_epoch", "clips_epoch"),
            f"about 1 (<= {ABOUT:g})",
            common.at_most(ABOUT),
            f"the issue's target. The crop epoch trains on one {crop_frames}-frame crop per "
            f"clip, as the clip epoch trains on one clip, then scores the whole validation "
            f"tracks on their {seen}, where the clip epoch scores one clip each",
        ),
        common.Row(
            "whole tracks",
            f"crop epoch on whole tracks / {crop_s:g}-s clip epoch, both this commit",
            ratios("crop_epoch", "clips_now_epoch"),
            note="the same code on both sides: what the crops and validation windows cost",
        ),
        common.Row(
            "whole tracks",
            f"{crop_s:g}-s clip epoch, this commit / {BEFORE}",
            ratios("clips_now_epoch", "clips_epoch"),
            note="the same clips: what the new batching costs on clips",
        ),
        common.Row(
            "whole tracks",
            f"whole tracks, no crop: peak RSS {BEFORE} / this commit",
            ratios("before_peak_gib", "whole_peak_gib"),
            note="the split's padding to the longest track is gone; each batch still pads to "
            "its longest track",
        ),
        common.Row(
            "whole tracks",
            f"whole tracks, no crop: s per epoch {BEFORE} / this commit",
            ratios("before_epoch", "whole_epoch"),
            note=f"batches were trimmed to their longest clip already at {BEFORE}",
        ),
        common.Row("K-fold", f"fit_folds, K = {folds} (s)", values("folds_s")),
        common.Row("K-fold", "one fit (s)", values("fit_s")),
        common.Row(
            "K-fold",
            f"fit_folds K = {folds} / one fit",
            ratios("folds_s", "fit_s"),
            f"<= {folds}",
            common.at_most(folds),
            f"in this process, the {crop_s:g}-s clips, {epochs} epochs after an untimed "
            "1-epoch fit, fit_folds first",
        ),
    ]
    return rows


def sizes(quick: bool) -> dict:
    if quick:
        return {
            "tracks": 16,
            "test_tracks": 4,
            "no_crop_tracks": 16,
            "track_s": (4.0, 8.0, 16.0, 22.0),
            "clip_frames": 90,
            "crop_s": 2.0,
            "epochs": 2,
            "folds": 3,
        }
    return {
        "tracks": 80,
        "test_tracks": 16,
        "no_crop_tracks": 40,
        "track_s": (120.0, 240.0, 480.0, 660.0),
        "clip_frames": 1293,
        "crop_s": 30.0,
        "epochs": 2,
        "folds": 5,
    }


def describe(
    cpus: int,
    tracks: int,
    test_tracks: int,
    no_crop_tracks: int,
    track_s: tuple,
    clip_frames: int,
    crop_s: float,
    epochs: int,
    folds: int,
    features: str = "chroma",
    conv_blocks: int = 1,
) -> str:
    low, middle, high, outlier = track_s
    return (
        f"whole tracks: {tracks} tracks ({tracks - test_tracks} train, {test_tracks} test; "
        f"{low:g}-{high:g} s, median about {middle:g} s, one {outlier:g}-s outlier; "
        f"{FRAMES_PER_SECOND:.2f} frames a second), the first {no_crop_tracks} of them for the "
        f"no-crop runs, and every track's middle {clip_frames} frames; each run `python -m "
        f"musictune train --model cnn --features {features} --conv-blocks {conv_blocks} "
        f"--epochs {epochs} --patience 0 --device cpu` (--crop {crop_s:g} for the crop run) in "
        f"a fresh process with a fresh split cache and {cpus} torch threads, in the order crop, "
        f"clips, no crop, {BEFORE} no crop, {BEFORE} clips; s per epoch over the epochs after "
        f"the first; K-fold: fit_folds K = {folds}, then one fit, in this process, {cpus} threads"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"whole tracks seed {seed} every repeat (data, weights, shuffling, crops)"


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--features", default="chroma", choices=list(VIEWS), help="(chroma)")
    p.add_argument("--conv-blocks", type=int, default=1, choices=range(1, 5), help="(1)")
    args = p.parse_args(argv)
    model = {"features": args.features, "conv_blocks": args.conv_blocks}

    def build(args) -> common.Outcome:
        size = sizes(args.quick)
        rows = run(**size, **model, repeats=args.repeats, seed=args.seed, cpus=args.cpus)
        settings = describe(args.cpus, **size, **model)
        return common.Outcome(rows, settings, seeds(args.seed, args.repeats))

    return common.run_main(build, args, "Whole tracks")


if __name__ == "__main__":
    sys.exit(main())

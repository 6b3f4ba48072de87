"""Extraction, old against new: a file's features, whole and as a 30-s clip, by the code of the
commit before the "Real recordings, few of them" issue's extraction changes and by this one.

    python benchmarks/extraction.py                                  # 4-min tracks, 3 repeats
    python benchmarks/extraction.py --quick --repeats 1 --no-save    # 1-min tracks, smoke test
    python benchmarks/extraction.py --audio ~/music/genres           # your own files

BEFORE (below) is exported with `git archive`, as main_job.py does. Each side runs in fresh
processes with its own `src` first on PYTHONPATH, one per (side, --duration): it imports that
side's `musictune.audio.extract_audio`, extracts one 5-s file untimed (imports, librosa's numba code
and CQT filters: the floor every worker stands on), then runs the worker's own step,
`_compute(path, duration)` (decode, take the middle, `features.extract_features`), on every
file, timing each, and reads its resident memory before the files and its peak while they
ran (the kernel's high-water mark, reset after the 5-s file where Linux allows): what a worker
of `musictune extract` holds at most. Each repeat runs whole
files (duration 0) on this checkout, then on BEFORE, then 30-s clips (here only the middle is
decoded, at BEFORE the whole file, then cut) in the same order, and last, in this process,
times decoding the files' middle 30 s both ways. One untimed run first fills the caches.

The files, by default: two tracks written once, untimed, from the real recordings kept in
tests/data/audio (the five excerpts end to end, repeated to the length asked), one 44.1 kHz
stereo Ogg Vorbis and one 48 kHz stereo Opus: a user's own music is decoded, mixed down and
resampled. The arrays both sides computed are compared: max |this commit - BEFORE|.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import main_job  # noqa: E402

from musictune.audio.extract_sources import AUDIO_EXTENSIONS  # noqa: E402
from musictune.errors import UserError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "f669c98"  # the last commit before the extraction changes (2f4bc7e)
EXCERPTS = ROOT / "tests" / "data" / "audio"
FORMATS = (("vorbis", 44100, "VORBIS", "ogg"), ("opus", 48000, "OPUS", "opus"))
CLIP_S = 30.0
MIB = 2**20


def write_tracks(folder: Path, minutes: float) -> Path:
    """One track per format in FORMATS, `minutes` long, in genre folders (`vorbis/`, `opus/`)."""
    import librosa
    import soundfile

    excerpts = sorted(EXCERPTS.glob("*.ogg"))
    music = np.concatenate([librosa.load(p, sr=22050)[0] for p in excerpts])
    n = int(minutes * 60 * 22050)
    y = np.tile(music, -(-n // len(music)))[:n]
    for genre, rate, subtype, ext in FORMATS:
        z = librosa.resample(y, orig_sr=22050, target_sr=rate)
        stereo = np.stack([z, 0.8 * np.roll(z, 5)], axis=1)
        path = folder / genre / f"track.{ext}"
        path.parent.mkdir(parents=True)
        with soundfile.SoundFile(path, "w", rate, 2, format="OGG", subtype=subtype) as f:
            for i in range(0, len(stereo), 8192):  # libsndfile's Vorbis crashes on one big write
                f.write(stereo[i : i + 8192])
    return folder


def export_before(into: Path) -> Path:
    return main_job.export(BEFORE, into, "BEFORE in benchmarks/extraction.py")


# Run in each side's process: only its own musictune (extract_audio, features) is imported.
DRIVER = """
import json, resource, sys, time, warnings
import numpy as np
from musictune.audio import extract_audio

def rss_kib(field):  # the kernel's own count, from /proc/self/status (Linux)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak so far (macOS: bytes)

paths, duration, warm, out = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
warnings.simplefilter("ignore")
extract_audio._compute(warm, 0.0)
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # the peak (VmHWM) starts again from what is held now
except OSError:
    pass
floor = rss_kib("VmRSS")
seconds = []
for i, path in enumerate(paths):
    started = time.perf_counter()
    result = extract_audio._compute(path, duration)
    seconds.append(time.perf_counter() - started)
    if isinstance(result, str):
        sys.exit(f"{path}: {result}")
    np.save(f"{out}/{i}.full.npy", result[0])
    np.save(f"{out}/{i}.beat.npy", result[1])
print(json.dumps({"seconds": sum(seconds), "floor_kib": floor, "peak_kib": rss_kib("VmHWM")}))
"""


def side_process(checkout: Path, paths: list[Path], duration: float, warm: Path, out: Path):
    """One side's worker step on every file, in a fresh process: (seconds for the files, RSS
    before them and its peak while they ran, in MiB); arrays saved in `out`."""
    out.mkdir(parents=True)
    env = main_job.side_env(checkout, out.parent / "cache")  # one cache for both sides
    files = json.dumps([str(p) for p in paths])
    command = [sys.executable, "-c", DRIVER, files, f"{duration:g}", str(warm), str(out)]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"extraction from {checkout} failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # macOS's ru_maxrss is in bytes
    return (
        figures["seconds"],
        figures["floor_kib"] * kib * 1024 / MIB,
        figures["peak_kib"] * kib * 1024 / MIB,
    )


def max_difference(new: Path, old: Path, kind: str) -> float:
    """max |new - old| over the `kind` ("full" or "beat") arrays both saved (inf: shapes differ)."""
    worst = 0.0
    for path in sorted(new.glob(f"*.{kind}.npy")):
        a, b = np.load(path), np.load(old / path.name)
        if a.shape != b.shape:
            return math.inf
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def decode_times(paths: list[Path]) -> tuple[float, float]:
    """Seconds to decode every file's middle CLIP_S, in this process: the whole file then the
    cut (BEFORE's way: librosa.load), and the middle alone (`features.load_middle`)."""
    import librosa

    from musictune.audio import features

    features.load_middle(str(paths[0]), 1.0), librosa.load(paths[0], duration=1.0)  # imports
    started = time.perf_counter()
    for path in paths:
        features.load_middle(str(path), CLIP_S)
    alone = time.perf_counter() - started
    started = time.perf_counter()
    for path in paths:
        features.middle(librosa.load(path, sr=features.SAMPLE_RATE)[0], CLIP_S)
    return time.perf_counter() - started, alone


def audio_files(folder: Path) -> list[Path]:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not found:
        raise UserError(f"no audio files in {folder}")
    return found


def one_repeat(sides: dict[str, Path], paths: list[Path], warm: Path, tmp: Path, r: int) -> dict:
    """Every run of one repeat, this checkout first each time."""
    figures: dict[str, float] = {}
    for mode, duration in (("whole", 0.0), ("clip", CLIP_S)):
        outs = {side: tmp / f"{side}-{mode}-{r}" for side in sides}
        for side, checkout in sides.items():
            seconds, floor, peak = side_process(checkout, paths, duration, warm, outs[side])
            figures[f"{side}_{mode}"], figures[f"{side}_{mode}_floor"] = seconds, floor
            figures[f"{side}_{mode}_mib"], figures[f"{side}_{mode}_above"] = peak, peak - floor
        for what in ("", "_mib", "_above"):
            figures[f"{mode}_ratio{what}"] = common.ratio(
                figures[f"old_{mode}{what}"], figures[f"new_{mode}{what}"]
            )
        for kind in ("full", "beat"):
            figures[f"{mode}_diff_{kind}"] = max_difference(outs["new"], outs["old"], kind)
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
    figures["decode_whole"], figures["decode_middle"] = decode_times(paths)
    figures["decode_ratio"] = figures["decode_whole"] / figures["decode_middle"]
    return figures


def run(
    data_dir: Path | None = None,
    preset: str = common.DEFAULT_PRESET,
    minutes: float = 4.0,
    audio: str | None = None,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    """data_dir and preset are run_all's shared arguments: extraction needs neither."""
    with tempfile.TemporaryDirectory(prefix="bench-extraction-") as tmp:
        tmp = Path(tmp)
        folder = Path(audio).expanduser() if audio else write_tracks(tmp / "audio", minutes)
        paths = audio_files(folder)
        sides = {"new": ROOT, "old": export_before(tmp / "old")}
        warm = EXCERPTS / "sorohanro_-_solo-trumpet-06.ogg"
        side_process(ROOT, [warm], 0.0, warm, tmp / "warm")  # fills the caches, untimed
        results = [one_repeat(sides, paths, warm, tmp, r) for r in range(repeats)]
    return rows(results)


def above_one(value: float) -> bool:
    return math.isfinite(value) and value > 1


def rows(results: list[dict]) -> list[common.Row]:
    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    def mib(key: str) -> str:
        return common.fmt(common.median(values(key)))

    out = []
    for mode, what in (("whole", "whole files"), ("clip", f"{CLIP_S:g}-s clips")):
        name, whole = f"extract, {what}", mode == "whole"
        check = (">1", above_one) if whole else ("", None)
        out += [
            common.Row(name, f"commit {BEFORE}: seconds for the files", values(f"old_{mode}")),
            common.Row(name, "this commit: seconds for the files", values(f"new_{mode}")),
            common.Row(name, f"speed-up, {BEFORE} / this", values(f"{mode}_ratio"), *check),
            common.Row(
                name,
                f"commit {BEFORE}: peak RSS (MiB)",
                values(f"old_{mode}_mib"),
                note=f"{mib(f'old_{mode}_above')} MiB above the RSS before the files "
                f"({mib(f'old_{mode}_floor')} MiB, after a 5-s file)",
            ),
            common.Row(
                name,
                "this commit: peak RSS (MiB)",
                values(f"new_{mode}_mib"),
                note=f"{mib(f'new_{mode}_above')} MiB above the RSS before the files "
                f"({mib(f'new_{mode}_floor')} MiB)",
            ),
            common.Row(name, f"peak RSS, {BEFORE} / this", values(f"{mode}_ratio_mib"), *check),
        ]
        for kind, label in (("full", "full arrays"), ("beat", "beat-synced arrays")):
            out.append(
                common.Row(
                    name,
                    f"max |this commit - {BEFORE}|, {label}",
                    values(f"{mode}_diff_{kind}"),
                    "0" if whole else "< 0.01",
                    (lambda v: v == 0) if whole else common.below(0.01),
                    "the same bytes" if whole else "float rounding in the resampler",
                )
            )
    name = f"decode {CLIP_S:g} s of each file"
    return out + [
        common.Row(name, "whole file, then the middle (s)", values("decode_whole")),
        common.Row(name, "the middle alone (s)", values("decode_middle")),
        common.Row(name, "speed-up", values("decode_ratio"), ">1", above_one),
    ]


def sizes(quick: bool) -> dict:
    return {"minutes": 1.0} if quick else {"minutes": 4.0}


def describe(cpus: int, minutes: float, audio: str | None = None) -> str:
    files = (
        f"the files in {audio}"
        if audio
        else f"two {minutes:g}-min tracks made of tests/data/audio's excerpts (44.1 kHz stereo "
        "Vorbis, 48 kHz stereo Opus)"
    )
    return (
        f"extraction: the extract worker's step (`extract_audio._compute`, duration 0 and "
        f"{CLIP_S:g}) from this checkout, then from commit {BEFORE} (git archive), a fresh "
        f"process per side and duration, on {files}; peak RSS the process's high-water mark"
    )


def seeds(seed: int, repeats: int) -> str:
    return "extraction: deterministic (no seed)"


def code_state() -> str:
    """Whether the extraction code itself is as committed (other files may make HEAD dirty)."""
    paths = ["src/musictune/features.py", "src/musictune/extract*.py"]
    status = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", *paths],
        capture_output=True,
        text=True,
    )
    clean = status.returncode == 0 and not status.stdout.strip()
    return "extraction code (features.py, extract*.py): " + (
        "as committed" if clean else "**uncommitted changes**"
    )


def library_versions() -> str:
    import importlib.metadata as md

    names = ("librosa", "soundfile", "soxr", "scipy", "numba")
    return "audio libraries: " + ", ".join(f"{n} {md.version(n)}" for n in names)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--audio", help="genre folders of audio to extract (default: tracks made here)")
    args = p.parse_args(argv)

    def build(args: argparse.Namespace) -> common.Outcome:
        size = sizes(args.quick)
        rows = run(**size, audio=args.audio, repeats=args.repeats, seed=args.seed)
        extra = [code_state(), library_versions()]
        return common.Outcome(
            rows, describe(1, **size, audio=args.audio), seeds(args.seed, args.repeats), extra
        )

    return common.run_main(build, args, "Extraction")


if __name__ == "__main__":
    sys.exit(main())

"""The synthetic demo data set: numpy-synthesized music per FMA genre, in the real layout.

Nothing is downloaded. Every clip is drawn from its genre's recipe (tempo, drum pattern, timbre,
mode, register, note density), blended part way towards a random other genre and jittered so the
genres overlap the way real ones do, rendered to audio and passed through the one feature
extraction (`features.extract_features`). Affect targets follow from the drawn parameters.
The result is deterministic for a seed, whatever the number of worker processes.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musictune import features, layout, paths
from musictune.errors import UserError
from musictune.genres import FMA_CLASS_MAPPING, FMA_GENRES
from musictune.pool import run_pool

# Demo sizes: (train clips, test clips, seconds per clip). Clips are far shorter than the real
# 30 s so that generating the data and training on it stay quick on a laptop CPU.
SIZES: dict[str, tuple[int, int, float]] = {
    "tiny": (80, 20, 3.0),  # for tests
    # The default: >= 150 mapped genre clips in both validation (20 % of train) and test, so
    # macro F1 over 10 imbalanced classes is not decided by a handful of clips.
    "small": (860, 180, 3.0),
}

SR = features.SAMPLE_RATE
BLEND = 0.3  # at most this far a clip's parameters move towards another genre's recipe
TARGET_NOISE = 0.06  # sd of the Gaussian noise on the affect targets

# Drum patterns, one 4/4 bar of 16th steps each: (kick, snare, hi-hat).
BEATS: dict[str, tuple[str, str, str]] = {
    "none": ("", "", ""),
    "rock": ("x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "four": ("x...x...x...x...", "....x.......x...", "..x...x...x...x."),
    "hiphop": ("x......x..x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "metal": ("xxxxxxxxxxxxxxxx", "....x.......x...", "x...x...x...x..."),
    "punk": ("x...x...x...x...", "..x...x...x...x.", "x.x.x.x.x.x.x.x."),
    "shuffle": ("x.......x.......", "....x.......x...", "x..xx..xx..xx..x"),
    "trip": ("x.....x...x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "chip": ("x...x...x...x...", "....x.......x...", "xxxxxxxxxxxxxxxx"),
    "hand": ("x.......x.......", "", "x..x..x.x..x..x."),
    "sparse": ("x.......x.......", "........x.......", "x...x...x...x..."),
}

# Melody scales, (major, minor) variants, in semitones above the key.
SCALES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "diatonic": ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)),
    "pentatonic": ((0, 2, 4, 7, 9), (0, 3, 5, 7, 10)),
    "blues": ((0, 2, 3, 4, 7, 9), (0, 3, 5, 6, 7, 10)),
    "modal": ((0, 2, 4, 5, 7, 9, 10), (0, 1, 4, 5, 7, 8, 10)),  # mixolydian, phrygian dominant
}
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 0, 4))


@dataclass(frozen=True)
class Recipe:
    """What makes a genre sound like itself; every clip jitters and blends these."""

    weight: float  # relative frequency (imbalanced like FMA; the 5 genres the mapping drops are
    # rare, so the clips the generator spends on them stay few)
    bpm: float
    minor: float  # probability of a minor key
    beat: str = "none"  # a BEATS pattern
    drums: float = 0.0  # percussion loudness relative to the tonal parts
    swing: float = 0.0  # off-beat delay, fraction of a step: shuffle, jazz, hip-hop
    rolloff: float = 1.5  # harmonic k has amplitude k**-rolloff: low = bright
    odd: bool = False  # odd harmonics only: square-ish, hollow
    drive: float = 0.0  # tanh distortion
    attack: float = 0.01  # note attack time (s): bowed strings and pads swell in
    decay: float = 0.5  # note decay time (s): plucked vs sustained
    octave: int = 5  # register of the melody
    density: float = 2.0  # melody notes per beat
    noise: float = 0.01  # hiss / vinyl level
    vibrato: float = 0.0  # relative pitch modulation depth
    scale: str = "diatonic"
    sevenths: bool = False  # four-note chords and a walking bass


# fmt: off
RECIPES: dict[str, Recipe] = {
    # genre:          weight bpm minor beat     drums   timbre, register, melody
    "Rock":          Recipe(14, 120, .4, "rock",   .8, rolloff=1.2, drive=2.0),
    "Psych-Rock":    Recipe(3, 110, .5, "rock",    .6, rolloff=1.3, drive=1.5, decay=0.8,
                            noise=.03, vibrato=.01, scale="modal"),
    "Post-Rock":     Recipe(3, 95, .5, "sparse",   .5, rolloff=1.6, drive=0.3, attack=.08,
                            decay=1.2, octave=6, density=4, noise=.02),
    "Psych-Folk":    Recipe(3, 95, .6, "hand",     .3, rolloff=1.8, decay=0.4, noise=.03,
                            vibrato=.008, scale="pentatonic"),
    "Folk":          Recipe(6, 100, .3, "hand",   .25, rolloff=1.7, decay=0.35),
    "Metal":         Recipe(3, 160, .9, "metal",  1.0, rolloff=1.0, drive=6.0, decay=0.8,
                            octave=3, density=4, scale="modal"),
    "Punk":          Recipe(5, 180, .4, "punk",   1.0, rolloff=1.0, drive=4.0, decay=0.6,
                            octave=4, noise=.02),
    "Electronic":    Recipe(12, 125, .5, "four",   .9, rolloff=0.9, drive=0.5, decay=0.3,
                            density=4, noise=0),
    "Chiptune":      Recipe(3, 140, .3, "chip",    .5, rolloff=0.9, odd=True, decay=0.2,
                            octave=6, density=4, noise=0),
    "Trip-Hop":      Recipe(3, 85, .8, "trip",     .8, swing=.1, rolloff=2.4, drive=0.3,
                            decay=1.0, octave=4, density=1, noise=.05, vibrato=.005),
    "Pop":           Recipe(5, 115, .25, "rock",   .7, rolloff=1.3, drive=0.3),
    "Hip-Hop":       Recipe(7, 90, .6, "hiphop",  1.0, swing=.25, rolloff=2.0, octave=4,
                            density=1, noise=.03, scale="pentatonic"),
    "Classical":     Recipe(3, 80, .45, "none",     0, rolloff=1.8, attack=.2, decay=1.5,
                            noise=.005, vibrato=.012),
    "Blues":         Recipe(2.5, 80, .5, "shuffle", .5, swing=.33, rolloff=1.5, drive=0.8,
                            decay=0.6, octave=4, noise=.02, vibrato=.008, scale="blues",
                            sevenths=True),
    "Jazz":          Recipe(3, 130, .5, "shuffle", .4, swing=.3, rolloff=2.2, density=3,
                            scale="modal", sevenths=True),
    "Indie-Rock":    Recipe(1.2, 125, .4, "rock",    .7, rolloff=1.1, drive=1.0),
    "Post-Punk":     Recipe(1, 145, .8, "punk",    .8, rolloff=1.0, drive=1.5, decay=0.4,
                            octave=4, noise=.02),
    "Soundtrack":    Recipe(1, 75, .7, "sparse",   .2, rolloff=2.0, attack=.3, decay=2.0,
                            octave=4, density=0.5, vibrato=.01),
    "International": Recipe(1, 110, .5, "hand",    .6, swing=.1, rolloff=1.4, odd=True,
                            decay=0.3, density=3, noise=.02, vibrato=.01, scale="modal"),
    "Old-Time":      Recipe(1, 120, .1, "hand",    .3, rolloff=1.2, decay=0.25, octave=6,
                            density=4, noise=.03, vibrato=.01, scale="pentatonic"),
}
# fmt: on


@dataclass(frozen=True)
class Clip:
    """One clip's resolved parameters: the recipe after blending and jitter, plus a key."""

    recipe: Recipe
    key: int  # 0..11 semitones above C
    minor: bool
    levels: tuple[float, float, float]  # bass, chords, melody


class Job(NamedTuple):
    root: str
    seed: int
    index: int
    track_id: str
    split: str
    genre: str
    seconds: float


# --- synthesis -------------------------------------------------------------------------------


def draw_clip(genre: str, rng: np.random.Generator) -> Clip:
    """The genre's recipe blended towards a random other genre, then jittered."""
    own, other = RECIPES[genre], RECIPES[str(rng.choice(FMA_GENRES))]
    w = rng.uniform(0, BLEND)
    mixed = {}
    for f in fields(Recipe):
        a, b = getattr(own, f.name), getattr(other, f.name)
        if isinstance(a, (bool, str)):
            mixed[f.name] = b if rng.random() < w else a
        else:
            mixed[f.name] = (1 - w) * a + w * b
    r = replace(own, **mixed)
    r = replace(
        r,
        bpm=float(np.clip(r.bpm * np.exp(rng.normal(0, 0.1)), 60, 200)),
        drums=float(np.clip(r.drums * rng.uniform(0.6, 1.4), 0, 1.2)) if r.beat != "none" else 0,
        rolloff=float(max(0.6, r.rolloff + rng.normal(0, 0.3))),
        drive=float(r.drive * rng.uniform(0.5, 1.5)),
        decay=float(r.decay * np.exp(rng.normal(0, 0.3))),
        octave=int(round(r.octave)) + int(rng.choice([-1, 0, 0, 1])),
        density=float(np.clip(r.density * np.exp(rng.normal(0, 0.3)), 0.25, 4)),
        noise=float(r.noise * rng.uniform(0.5, 2.0) + rng.uniform(0, 0.01)),
    )
    levels = rng.uniform(0.2, 1.0, 3) * (rng.random(3) > 0.15)
    if not levels.any():
        levels[2] = 1.0
    return Clip(r, int(rng.integers(12)), bool(rng.random() < r.minor), tuple(levels.tolist()))


def affect_targets(clip: Clip, rng: np.random.Generator) -> tuple[float, float, float]:
    """Valence, energy and danceability as a listener might hear them in the parameters."""
    r = clip.recipe
    tempo = np.clip((r.bpm - 70) / 110, 0, 1)
    bright = np.clip((2.4 - r.rolloff) / 1.6, 0, 1)
    drive = np.clip(r.drive / 5, 0, 1)
    drums = np.clip(r.drums, 0, 1)
    kick, snare, _ = BEATS[r.beat]
    on_beat = sum(p[s] == "x" for p in (kick, snare) if p for s in range(0, 16, 4)) / 4
    regular = min(on_beat, 1.0) * (1 - r.swing)
    major, pentatonic, plucked = float(not clip.minor), r.scale == "pentatonic", r.decay < 0.5
    valence = 0.15 + 0.35 * major + 0.25 * tempo + 0.25 * bright - 0.15 * drive + 0.1 * pentatonic
    energy = 0.35 * drums + 0.3 * tempo + 0.25 * drive + 0.1 * bright + 0.05 * r.density
    dance = 0.5 * drums * regular + 0.35 * np.exp(-(((r.bpm - 120) / 25) ** 2)) + 0.15 * plucked
    values = np.array([valence, energy, dance]) + rng.normal(0, TARGET_NOISE, 3)
    return tuple(float(v) for v in np.clip(values, 0, 1))


def _midi_hz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69) / 12)


def _voice(onsets: np.ndarray, midi: np.ndarray, n: int, r: Recipe, decay: float) -> np.ndarray:
    """One monophonic line: additive harmonics (band-limited) under an attack-decay envelope."""
    if len(onsets) == 0:
        return np.zeros(n)
    idx = np.arange(n)
    note = np.searchsorted(onsets, idx, side="right") - 1
    active = note >= 0
    note = np.maximum(note, 0)
    freq = _midi_hz(midi)[note]
    if r.vibrato:
        freq = freq * (1 + r.vibrato * np.sin(2 * np.pi * 5.5 * idx / SR))
    # float32 from here on (it is twice as fast), after wrapping the phase to keep it exact.
    phase = np.mod(2 * np.pi / SR * np.cumsum(freq), 2 * np.pi).astype(np.float32)
    since = ((idx - onsets[note]) / SR).astype(np.float32)
    env = np.minimum(since / np.float32(r.attack), 1) * np.exp(-since / np.float32(decay)) * active
    # sin(k x) by the Chebyshev recurrence, in place: a multiply per harmonic instead of a sin.
    prev, cur = np.zeros(n, np.float32), np.sin(phase)
    two_cos, scratch = 2 * np.cos(phase), np.empty(n, np.float32)
    out = cur.copy()
    for k in range(2, 13):
        np.multiply(two_cos, cur, out=scratch)
        np.subtract(scratch, prev, out=prev)
        prev, cur = cur, prev
        if r.odd and k % 2 == 0:
            continue
        if k * freq.max() < SR / 2:
            out += np.float32(k**-r.rolloff) * cur
        else:
            out += np.float32(k**-r.rolloff) * cur * (k * freq < SR / 2)
    return out * env


def _drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One drum hit, slightly different per clip."""
    t = np.arange(int(0.3 * SR)) / SR
    noise = rng.standard_normal(t.size)
    if kind == "kick":
        f = rng.uniform(45, 60) + rng.uniform(80, 130) * np.exp(-t / 0.04)
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / rng.uniform(0.1, 0.25))
    if kind == "snare":
        tone = 0.5 * np.sin(2 * np.pi * rng.uniform(170, 220) * t) * np.exp(-t / 0.04)
        return 0.7 * (np.diff(noise, prepend=0) * np.exp(-t / 0.07) + tone)
    bright = np.diff(noise, n=2, prepend=[0, 0])
    return 0.15 * bright * np.exp(-t / rng.uniform(0.01, 0.04))


def _drums(r: Recipe, n: int, step: float, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    steps = int(n / SR / step) + 1
    for kind, pattern in zip(("kick", "snare", "hat"), BEATS[r.beat]):
        if not pattern:
            continue
        hit = _drum(kind, rng)
        for s in range(steps):
            play = pattern[s % 16] == "x"
            if (play and rng.random() < 0.1) or (not play and rng.random() > 0.04):
                continue  # humanized: a few dropped and a few ghost hits
            delay = r.swing * step * (s % 2) + 2 * r.swing * step * (s % 4 == 2)
            start = int((s * step + delay + rng.normal(0, 0.004)) * SR)
            if 0 <= start < n:
                seg = hit[: n - start]
                out[start : start + seg.size] += rng.uniform(0.7, 1.0) * seg
    return out


def _rms_norm(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def render(clip: Clip, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """The clip's audio: bass, chords and melody over drums, float32 at the extraction rate."""
    r, n = clip.recipe, int(seconds * SR)
    beat = 60.0 / r.bpm
    beats = int(seconds / beat) + 1
    chord_scale = np.array(SCALES["diatonic"][clip.minor])
    melody_scale = np.array(SCALES[r.scale][clip.minor])
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]

    def chord_of(b: int) -> int:
        return progression[(b // 4) % 4]

    def on_grid(times: np.ndarray) -> np.ndarray:
        return (times * SR).astype(int)

    # Bass on every beat, two octaves down: the chord root, sometimes the fifth, or walking.
    steps = rng.choice([0, 1, 2, 4], beats) if r.sevenths else 4 * (rng.random(beats) < 0.25)
    degrees = np.array([chord_of(b) for b in range(beats)]) + steps
    bass_midi = 36 + clip.key + chord_scale[degrees % 7]
    bass = _voice(on_grid(np.arange(beats) * beat), bass_midi, n, r, 0.4)
    # Chords: stacked thirds, restruck every 1, 2 or 4 beats.
    every = int(rng.choice([1, 2, 4]))
    strikes = np.arange(0, beats, every)
    chords = np.zeros(n)
    for tone in range(4 if r.sevenths else 3):
        degrees = np.array([chord_of(b) + 2 * tone for b in strikes])
        midi = 48 + clip.key + chord_scale[degrees % 7] + 12 * (degrees // 7)
        chords += _voice(on_grid(strikes * beat), midi, n, r, 1.5 * r.decay)
    # Melody: a random walk on the scale at the recipe's note density, with rests.
    grid = beat / max(1, round(r.density))
    times = np.arange(0, seconds, grid)
    times = times[rng.random(times.size) < 0.85]
    walk = np.cumsum(rng.integers(-2, 3, times.size)) + rng.integers(0, len(melody_scale))
    walk = np.clip(walk, -len(melody_scale), 2 * len(melody_scale))
    midi = (
        12 * (r.octave + 1)
        + clip.key
        + melody_scale[walk % len(melody_scale)]
        + 12 * (walk // len(melody_scale))
    )
    melody = _voice(on_grid(times), midi, n, r, r.decay)

    bass_level, chord_level, melody_level = clip.levels
    tonal = (
        bass_level * _rms_norm(bass)
        + chord_level * _rms_norm(chords)
        + melody_level * _rms_norm(melody)
    )
    if r.drive > 0:
        tonal = np.tanh(r.drive * tonal / np.abs(tonal).max()) / np.tanh(r.drive)
    y = _rms_norm(tonal)
    if r.drums > 0:
        y = y + r.drums * _rms_norm(_drums(r, n, beat / 4, rng))
    y = y + r.noise * 3 * rng.standard_normal(n)
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


# --- data set --------------------------------------------------------------------------------


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
    full, beat = features.extract_features(render(clip, job.seconds, rng), SR)
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

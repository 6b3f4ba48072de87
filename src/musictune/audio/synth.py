"""Numpy synthesis of music in the style of each FMA genre: the audio behind the demo data set.

Every clip is drawn from its genre's recipe (tempo, drum pattern, timbre, mode, register, note
density), blended part way towards a random other genre and jittered so the genres overlap the
way real ones do. Affect targets follow from the drawn parameters. Everything draws from the
generator it is given, so a clip is fixed by its generator's seed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from musictune.audio import features
from musictune.genres import FMA_GENRES

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

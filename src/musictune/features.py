"""The one librosa feature extraction used for the demo data, `musictune extract` and real audio.

It reproduces how the course data set was made: rows 0-127 mel power in dB (ref=max),
rows 128-139 chroma_cqt, sr 22050, n_fft 2048, hop 512; the beat-synced view takes the median of
the frames between beats found on the percussive part (HPSS).
"""

from __future__ import annotations

import os

import numpy as np

from musictune import paths

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_CHROMA = 12
N_FUSED = N_MELS + N_CHROMA

# Feature views: name -> row slice of the fused (140, T) array.
VIEWS: dict[str, slice] = {
    "mel": slice(0, N_MELS),
    "chroma": slice(N_MELS, N_FUSED),
    "fused": slice(0, N_FUSED),
}


def _librosa():
    """Import librosa (seconds, so only when extracting) with its documented disk cache on.

    The cache keeps the CQT filter bank that chroma_cqt otherwise rebuilds for every clip: a third
    of the extraction time of a 4 s clip. The output is the same; LIBROSA_CACHE_DIR still wins.
    """
    if "LIBROSA_CACHE_DIR" not in os.environ:
        cache = paths.cache_dir() / "librosa"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if os.access(cache, os.W_OK):
                os.environ["LIBROSA_CACHE_DIR"] = str(cache)
        except OSError:
            pass  # an unwritable cache only costs speed: librosa then builds the filters each time
    import librosa

    return librosa


def extract_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Return (full, beat_synced) float32 arrays of shape (140, T) for a mono signal.

    BLAS runs on one thread here. The last bits of the mel product depend on the thread count,
    so the demo data are then the same bytes on every machine; and the parallel workers of
    `demo-data` and `extract` (one per core) no longer fight over cores: two 2-thread workers on
    2 cores took 40 % longer per clip than single-threaded ones.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _extract(y, sr)


def _extract(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    librosa = _librosa()
    if sr != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    y = np.asarray(y, dtype=np.float32)
    mel = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS
    )
    mel_db = librosa.power_to_db(mel, ref=np.max)
    chroma = librosa.feature.chroma_cqt(y=y, sr=SAMPLE_RATE, hop_length=HOP_LENGTH)
    frames = min(mel_db.shape[1], chroma.shape[1])
    full = np.vstack([mel_db[:, :frames], chroma[:, :frames]]).astype(np.float32)

    percussive = librosa.effects.percussive(y)
    _, beats = librosa.beat.beat_track(y=percussive, sr=SAMPLE_RATE, hop_length=HOP_LENGTH)
    beats = beats[beats < frames]
    beat = librosa.util.sync(full, beats, aggregate=np.median).astype(np.float32)
    return full, beat


def load_audio(path: str, duration: float | None = None) -> np.ndarray:
    """Decode any audio file librosa reads to mono float32 at the extraction sample rate."""
    librosa = _librosa()
    y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True, duration=duration)
    return y

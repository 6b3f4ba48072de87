"""The one librosa feature extraction used for the demo data, `musictune extract` and real audio.

It reproduces how the course data set was made: rows 0-127 mel power in dB (ref=max),
rows 128-139 chroma_cqt, sr 22050, n_fft 2048, hop 512; the beat-synced view takes the median of
the frames between beats found on the percussive part (HPSS).
"""

from __future__ import annotations

import math
import os

import numpy as np

from musictune import paths

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_CHROMA = 12
N_FUSED = N_MELS + N_CHROMA
HPSS_KERNEL = 31  # librosa.effects.percussive's median filters: 31 frames, and 31 bins
MASK_BLOCK = 1024  # STFT frames (24 s) masked at a time: bounds the mask's temporaries
PIECE = 2048  # STFT frames (47.5 s) computed at a time: memory stays flat however long the track
MARGIN = 32  # frames of signal each side of a piece, so its own frames come out as on the whole
DECODE_BLOCK = 1 << 16  # frames decoded at a time (1.5 s at 44.1 kHz)
MIDDLE_MARGIN = 1.0  # seconds decoded beyond a middle clip's ends: the resampler's filter settles

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
    mel, percussive_mel, peaks = _by_pieces(y)
    mel_db = librosa.power_to_db(mel, ref=np.max)
    chroma = librosa.feature.chroma_cqt(
        y=y, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, tuning=_tuning(*peaks)
    )
    frames = min(mel_db.shape[1], chroma.shape[1])
    full = np.vstack([mel_db[:, :frames], chroma[:, :frames]]).astype(np.float32)

    # beat_track(y=percussive) would compute this onset envelope from the percussive signal.
    onsets = librosa.onset.onset_strength(
        S=librosa.power_to_db(percussive_mel),
        sr=SAMPLE_RATE,
        hop_length=HOP_LENGTH,
        aggregate=np.median,
    )
    _, beats = librosa.beat.beat_track(
        onset_envelope=onsets, bpm=_tempo(onsets), sr=SAMPLE_RATE, hop_length=HOP_LENGTH
    )
    beats = beats[beats < frames]
    beat = librosa.util.sync(full, beats, aggregate=np.median).astype(np.float32)
    return full, beat


def _by_pieces(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Everything made from short-time spectra, PIECE frames at a time, so that memory stays
    flat however long the signal: (mel power, mel power of the percussive part, the spectral
    peaks (pitch, magnitude) that chroma_cqt's tuning estimate uses).

    Each piece is computed with MARGIN frames of the signal on either side and keeps only its
    own frames, which are then the same numbers as on the whole signal: every step looks at
    most 21 frames away (STFT and ISTFT windows 2 each, HPSS's median 15). A clip of up to
    PIECE frames (47 s) is one piece.
    """
    librosa = _librosa()
    n_frames = 1 + len(y) // HOP_LENGTH  # of a centred STFT
    mel, percussive_mel, pitches, magnitudes = [], [], [], []
    for start in range(0, n_frames, PIECE):
        first = max(0, start - MARGIN)
        chunk = y[first * HOP_LENGTH : (start + PIECE + MARGIN) * HOP_LENGTH]
        keep = slice(start - first, min(start + PIECE, n_frames) - first)
        stft = librosa.stft(chunk, n_fft=N_FFT, hop_length=HOP_LENGTH)
        magnitude = np.abs(stft)
        mel.append(_mel_power(magnitude**2.0)[:, keep])
        pitch, peak = librosa.piptrack(S=magnitude, sr=SAMPLE_RATE, hop_length=HOP_LENGTH)
        found = pitch[:, keep] > 0
        pitches.append(pitch[:, keep][found])
        magnitudes.append(peak[:, keep][found])
        del pitch, peak
        percussive = _istft(_mask_percussive(stft, magnitude), chunk)
        del stft, magnitude
        spectrum = np.abs(librosa.stft(percussive, n_fft=N_FFT, hop_length=HOP_LENGTH)) ** 2.0
        percussive_mel.append(_mel_power(spectrum)[:, keep])
    peaks = (np.concatenate(pitches), np.concatenate(magnitudes))
    return np.hstack(mel), np.hstack(percussive_mel), peaks


def _mel_power(power: np.ndarray) -> np.ndarray:
    """melspectrogram(y=...) from the signal's power spectrum (its fmax: onset_strength's)."""
    librosa = _librosa()
    return librosa.feature.melspectrogram(
        S=power, sr=SAMPLE_RATE, n_mels=N_MELS, fmax=0.5 * SAMPLE_RATE
    )


def _tuning(pitches: np.ndarray, magnitudes: np.ndarray) -> float:
    """librosa.estimate_tuning(y=y, bins_per_octave=36), as chroma_cqt computes it, from the
    peaks piptrack found: the median and the histogram do not depend on their order."""
    librosa = _librosa()
    threshold = np.median(magnitudes) if len(magnitudes) else 0.0
    return librosa.pitch_tuning(pitches[magnitudes >= threshold], bins_per_octave=36)


def _tempo(onsets: np.ndarray) -> np.ndarray | None:
    """The tempo beat_track estimates (8-s autocorrelations averaged over the track), with the
    tempogram built PIECE columns at a time: the same number, without the whole-track float64
    temporaries of librosa's tempogram (a 178 MiB peak for 4 minutes).
    None for a flat envelope (beat_track then finds no beats, as it would)."""
    librosa = _librosa()
    if not onsets.any():
        return None
    width = librosa.time_to_frames(8.0, sr=SAMPLE_RATE, hop_length=HOP_LENGTH).item()
    padded = np.pad(onsets, width // 2, mode="linear_ramp", end_values=0)
    windows = librosa.util.frame(padded, frame_length=width, hop_length=1)[:, : len(onsets)]
    hann = librosa.filters.get_window("hann", width, fftbins=True)[:, np.newaxis]
    tempogram = np.empty(windows.shape)
    for start in range(0, windows.shape[1], PIECE):
        block = slice(start, start + PIECE)
        autocorrelation = librosa.autocorrelate(windows[:, block] * hann, axis=-2)
        tempogram[:, block] = librosa.util.normalize(autocorrelation, norm=np.inf, axis=-2)
    return librosa.feature.tempo(tg=tempogram, sr=SAMPLE_RATE, hop_length=HOP_LENGTH)


def percussive(y: np.ndarray) -> np.ndarray:
    """`librosa.effects.percussive(y)` with its defaults: the same numbers, 8x faster (see
    `_mask_percussive`)."""
    librosa = _librosa()
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    return _istft(_mask_percussive(stft, np.abs(stft)), y)


def _istft(stft: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The signal of `stft`, as long as `like` and of its dtype (as effects.percussive does)."""
    librosa = _librosa()
    return librosa.istft(
        stft, dtype=like.dtype, n_fft=N_FFT, hop_length=HOP_LENGTH, length=len(like)
    )


def _mask_percussive(stft: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """librosa.decompose.hpss(stft)[1] (kernel 31, power 2, margin 1), in place of `stft`.

    librosa's median filters (31 frames along time, 31 bins along frequency) run through scipy's
    n-D median filter: 10 of the 16 s a 4-minute track took (HPSS in all: 13). scipy's 1-D
    filter gives the same medians 8x faster. Only the percussive mask is made (hpss makes the
    harmonic one too), a block of frames at a time, so that its temporaries stay small.
    """
    librosa = _librosa()
    along_time = _median_filter_rows(magnitude, HPSS_KERNEL)  # hpss's "harm"
    across_bins = _median_filter_rows(np.ascontiguousarray(magnitude.T), HPSS_KERNEL).T
    for start in range(0, stft.shape[1], MASK_BLOCK):
        block = slice(start, start + MASK_BLOCK)
        mag, phase = librosa.magphase(stft[:, block])
        mask = librosa.util.softmask(
            across_bins[:, block], along_time[:, block], power=2.0, split_zeros=True
        )
        stft[:, block] = (mag * mask) * phase
    return stft


def _median_filter_rows(x: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage.median_filter(x, size=(1, size), mode="reflect"), the same values, in one
    call of scipy's fast 1-D filter: each row gets its own reflected edges, end to end."""
    from scipy.ndimage import median_filter

    half = size // 2
    padded = np.pad(x, ((0, 0), (half, half)), mode="symmetric")  # = scipy's "reflect"
    filtered = median_filter(padded.ravel(), size=size, mode="reflect").reshape(padded.shape)
    return filtered[:, half : padded.shape[1] - half]


def load_audio(path: str) -> np.ndarray:
    """Decode an audio file to mono float32 at SAMPLE_RATE: the samples that
    `librosa.load(path, sr=SAMPLE_RATE)` gives, decoded, mixed down and resampled (librosa's
    soxr_hq, as a stream) a block at a time, so the file is never held whole at its own rate
    and channels (a 4-minute 48 kHz stereo Opus: 139 MiB at once, 22 MiB so). Formats soundfile
    cannot read go through `librosa.load`, as they always did."""
    import soundfile

    try:
        return _decode(path)
    except soundfile.SoundFileRuntimeError:  # where librosa.load turns to audioread
        y, _ = _librosa().load(path, sr=SAMPLE_RATE, mono=True)
        return y


def load_middle(path: str, seconds: float) -> np.ndarray:
    """`middle(load_audio(path), seconds)`, decoding only that part and MIDDLE_MARGIN seconds
    on either side where soundfile can seek in the file (else all of it, then the middle).

    The part starts where the resampler's output grid meets the file's own samples, so the
    clip holds the whole decode's samples: exactly for a file at 22050 Hz, else to float
    rounding (at most 3e-7 on 4-minute 44.1 kHz Vorbis and 48 kHz Opus files).
    """
    n = int(round(seconds * SAMPLE_RATE))
    span = _middle_span(path, n)
    if span is not None:
        first, stop, skip = span
        clip = _decode(path, first, stop)[skip : skip + n]
        if len(clip) == n:  # else the file held fewer frames than its header said
            return clip
    return middle(load_audio(path), seconds)


def middle(y: np.ndarray, seconds: float) -> np.ndarray:
    """The middle `seconds` of a signal at SAMPLE_RATE (all of it when shorter, or for 0)."""
    n = int(round(seconds * SAMPLE_RATE))
    if n <= 0 or len(y) <= n:
        return y
    start = (len(y) - n) // 2
    return y[start : start + n]


def _middle_span(path: str, n: int) -> tuple[int, int, int] | None:
    """(first, stop) frames of the file to decode for the middle `n` samples at SAMPLE_RATE,
    and how many decoded samples precede them; None where all of it must be decoded."""
    import soundfile

    try:
        with soundfile.SoundFile(path) as f:
            rate, frames, seekable = f.samplerate, f.frames, f.seekable()
    except Exception:  # any reader trouble: decode it all, and report that path's error
        return None
    total = frames if rate == SAMPLE_RATE else int(np.ceil(frames * (SAMPLE_RATE / rate)))
    margin = int(MIDDLE_MARGIN * SAMPLE_RATE)
    if n <= 0 or not seekable or total <= n + 2 * margin:
        return None
    start = (total - n) // 2  # where middle() cuts the whole decode
    # Native frame k*step_in is output sample k*step_out of the resampler: start there.
    common = math.gcd(rate, SAMPLE_RATE)
    step_in, step_out = rate // common, SAMPLE_RATE // common
    first = (start - margin) // step_out
    stop = -(-(start + n + margin) // step_out)
    return first * step_in, min(frames, stop * step_in), start - first * step_out


def _decode(path: str, first: int = 0, stop: int | None = None) -> np.ndarray:
    """Frames [first, stop) of a file (to its end for None), mono at SAMPLE_RATE, DECODE_BLOCK
    frames at a time, as `librosa.load` computes them: soundfile's float32 samples, the mean
    of the channels, then soxr_hq, whose stream gives what one call on the whole would."""
    import soundfile
    import soxr

    librosa = _librosa()
    with soundfile.SoundFile(path) as f:
        rate = f.samplerate
        resampler = None
        if rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, "float32", "soxr_hq")
        f.seek(first)
        left = -1 if stop is None else stop - first  # -1: to the end
        parts, read = [], 0
        while True:
            want = DECODE_BLOCK if left < 0 else min(DECODE_BLOCK, left - read)
            block = f.read(want, dtype="float32", always_2d=False).T
            read += block.shape[-1]
            done = block.shape[-1] < want or read == left
            mono = librosa.to_mono(block)
            parts.append(mono if resampler is None else resampler.resample_chunk(mono, last=done))
            if done:
                break
    size = read if rate == SAMPLE_RATE else int(np.ceil(read * (float(SAMPLE_RATE) / rate)))
    return librosa.util.fix_length(np.concatenate(parts), size=size)

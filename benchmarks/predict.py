"""Predict against extract: files per second on the same 30-s files, and what the model adds.

    python benchmarks/predict.py                        # 24 files, 3 repeats
    python benchmarks/predict.py --quick --repeats 1    # 8 files, smoke test

The files: 30-s WAVs written once, untimed, from the real recordings in tests/data/audio (the
excerpts end to end, each file starting elsewhere in them), in two genre folders. Untimed, they
are extracted with `--duration 30` and a small CNN is trained on them (`musictune train`, one
epoch) and exported, so the model's clip is the files' 30 s: predict then scores each file as
one window, as extract makes it one clip. Each repeat times, as a user runs them, `musictune
extract AUDIO OUT --duration 30 --jobs 2` into a fresh folder and `musictune predict MODEL AUDIO
--jobs 2 --csv OUT`: both decode every file and run the one feature code; predict adds the
model. Both are whole commands, start-up included.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXCERPTS = ROOT / "tests" / "data" / "audio"
CLIP_S = 30
MAX_MODEL_SHARE = 0.10  # the model should add under 10 % to extract's time


def write_files(folder: Path, count: int) -> Path:
    """`count` 30-s mono WAVs at 22050 Hz from the excerpts, half in each of two genres."""
    import librosa
    import soundfile

    sr = 22050
    music = np.concatenate(
        [librosa.load(p, sr=sr, mono=True)[0] for p in sorted(EXCERPTS.glob("*.ogg"))]
    )
    n = CLIP_S * sr
    for i in range(count):
        start = (i * 7919 * sr // 10) % len(music)
        clip = np.resize(np.roll(music, -start), n)
        genre = folder / ("first" if i % 2 else "second")
        genre.mkdir(parents=True, exist_ok=True)
        soundfile.write(genre / f"track{i:02d}.wav", clip, sr)
    return folder


def musictune(*argv: str) -> float:
    """Run one musictune command to its end; its wall time."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "musictune", *argv],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return time.perf_counter() - started


def trained_model(audio: Path, tmp: Path) -> Path:
    data = tmp / "data"
    musictune("extract", str(audio), str(data), "--duration", str(CLIP_S), "--jobs", "2")
    runs = tmp / "run"
    musictune("train", "--data-dir", str(data), "--model", "cnn", "--epochs", "1",
              "--checkpoint-dir", str(runs))  # fmt: skip
    musictune("export", str(runs), "--out", str(tmp / "model"))
    return tmp / "model"


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    files: int = 24,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    """`data_dir`, `preset` and `seed` are not used: the files are written here."""
    extract, predict = [], []
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as name:
        tmp = Path(name)
        audio = write_files(tmp / "audio", files)
        model = trained_model(audio, tmp)
        for repeat in range(repeats):
            out = tmp / f"extract{repeat}"
            extract.append(
                musictune(
                    "extract", str(audio), str(out), "--duration", str(CLIP_S), "--jobs", "2"
                )  # fmt: skip
            )
            csv = tmp / f"predict{repeat}.csv"
            predict.append(musictune("predict", str(model), str(audio), "--jobs", "2",
                                     "--csv", str(csv)))  # fmt: skip
    share = [p / e - 1 for p, e in zip(predict, extract)]
    return [
        common.Row("predict", "musictune extract: files per second", [files / e for e in extract]),
        common.Row("predict", "musictune predict: files per second", [files / p for p in predict]),
        common.Row(
            "predict",
            "predict time / extract time - 1 (what the model adds)",
            share,
            f"< {MAX_MODEL_SHARE:.2f}",
            common.below(MAX_MODEL_SHARE),
            f"{files} files of {CLIP_S} s, --jobs 2 each, whole commands",
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"files": 8 if quick else 24}


def describe(cpus: int, files: int) -> str:
    return (
        f"predict: {files} WAV files of {CLIP_S} s (from tests/data/audio) in 2 genres; "
        "extract --duration 30 --jobs 2 and predict --jobs 2 with a 1-epoch CNN exported from "
        "them; whole commands timed"
    )


def seeds(seed: int, repeats: int) -> str:
    return "no randomness in the timed part; the model: musictune train --seed 0"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Predict against extract", argv)


if __name__ == "__main__":
    sys.exit(main())

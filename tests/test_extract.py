"""`musictune extract` on real recordings (excerpts kept in tests/data/audio, with their
licences): the layout it writes, the reader and `musictune train` on it, a real Ctrl-C and
resume, corrupt files, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from musictune import layout
from musictune.audio import extract_audio, features
from musictune.audio.extract import extract
from musictune.audio.extract_index import PENDING, assign_splits
from musictune.commands.cli import main
from musictune.data.dataset import load_dataset, load_task

# A few seconds of each of five licensed recordings (tests/data/audio/README.md says which);
# tests/data/audio/make_excerpts.py made them.
AUDIO = Path(__file__).resolve().parent / "data" / "audio"
CLIPS = {
    "brahms": "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "nutcracker": "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "vibeace": "Kevin_MacLeod_-_Vibe_Ace.ogg",
    "trumpet": "sorohanro_-_solo-trumpet-06.ogg",
    "fishin": "Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
}
FOLDERS = {
    "classical": ["brahms", "nutcracker"],
    "jazz": ["vibeace", "trumpet"],
    "country": ["fishin"],
}
SECONDS = 5.0
FRAMES = 1 + int(SECONDS * features.SAMPLE_RATE) // features.HOP_LENGTH  # 216


def link(dest: Path, clip: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(AUDIO / CLIPS[clip])


@pytest.fixture(scope="module")
def audio_tree(tmp_path_factory) -> Path:
    """GTZAN-style genre folders of real recordings, one corrupt file and a non-audio file."""
    root = tmp_path_factory.mktemp("music")
    for genre, clips in FOLDERS.items():
        for clip in clips:
            link(root / genre / f"{clip}.ogg", clip)
    (root / "classical" / "broken.ogg").write_bytes(np.random.default_rng(0).bytes(6000))
    (root / "jazz" / "liner-notes.txt").write_text("not audio\n")
    return root


def interrupt_after_first_file(run, pending: Path) -> bool:
    """Call run() and press Ctrl-C (a real SIGINT) once the first file's arrays are on disk.

    Our handler raises KeyboardInterrupt only while armed, so a signal that arrives after
    run() returned cannot escape the test.
    """
    armed = threading.Event()
    armed.set()

    def on_sigint(signum, frame):
        if armed.is_set():
            armed.clear()
            raise KeyboardInterrupt

    def watch():
        while armed.is_set():
            if pending.is_dir() and any(pending.glob("[0-9]*.beat.npy")):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    previous = signal.signal(signal.SIGINT, on_sigint)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        try:
            run()
        finally:
            armed.clear()
    except KeyboardInterrupt:
        return True
    finally:
        watcher.join()
        signal.signal(signal.SIGINT, previous)
    return False


@pytest.fixture(scope="module")
def extracted(audio_tree, tmp_path_factory) -> dict:
    """Extract, interrupted after the first file by Ctrl-C, then resumed with --jobs 2."""
    out = tmp_path_factory.mktemp("extracted") / "out"
    pending = out / PENDING

    def first_run():
        extract(audio_tree, out, duration=SECONDS, jobs=1, progress=False)

    # Five 5-s clips take well under a second on a fast machine, which once finished the whole
    # run before the Ctrl-C landed (CI, stop 19). Each file still runs the real extraction;
    # after it, the run waits up to 10 s, as a user's slower file would, for the key press.
    real_job = extract_audio.extract_job

    def slow_job(job):
        result = real_job(job)
        time.sleep(10)  # the Ctrl-C handler's KeyboardInterrupt ends it early
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(extract_audio, "extract_job", slow_job)
        interrupted = interrupt_after_first_file(first_run, pending)
    before = {p.name: p.stat().st_mtime_ns for p in pending.glob("[0-9]*.npy")}
    labels_before = (out / "fma_genre_spectrograms" / "train_labels.txt").exists()
    index_before = json.loads((out / "extract_index.json").read_text())
    summary = extract(audio_tree, out, duration=SECONDS, jobs=2, progress=False)
    return {
        "out": out,
        "summary": summary,
        "interrupted": interrupted,
        "pending_before": before,
        "labels_before": labels_before,
        "index_before": index_before,
    }


def tracks(out: Path) -> dict[str, tuple[int, str]]:
    index = json.loads((out / "extract_index.json").read_text())
    return {key: (track, split) for key, (track, split) in index["tracks"].items()}


def test_interrupted_extraction_resumes_without_redoing_files(extracted, audio_tree):
    out, summary, before = extracted["out"], extracted["summary"], extracted["pending_before"]
    assert extracted["interrupted"], "the first run finished before Ctrl-C reached it"
    assert not extracted["labels_before"], "labels must be written only at the end"
    done_first = {name.split(".")[0] for name in before if name.endswith(".beat.npy")}
    assert 1 <= len(done_first) < 5
    # The rerun decoded only the rest; the first run's arrays were moved in, not redone.
    assert summary.extracted == 5 - len(done_first)
    assert summary.skipped == len(done_first)
    ids = tracks(out)
    assert {k: v[0] for k, v in ids.items()} == {
        k: v[0] for k, v in extracted["index_before"]["tracks"].items()
    }
    by_id = {str(track): split for track, split in ids.values()}
    for track in done_first:
        for beat, kind in ((False, "full"), (True, "beat")):
            placed = (
                out
                / layout.dataset_dirname(layout.GENRE_TASK, beat)
                / by_id[track]
                / layout.array_filename(track)
            )
            assert placed.stat().st_mtime_ns == before[f"{track}.{kind}.npy"]
    assert not (out / PENDING).exists()

    # A third run has nothing left to decode and keeps every id and split.
    again = extract(audio_tree, out, duration=SECONDS, jobs=1, progress=False)
    assert (again.extracted, again.skipped, again.tracks) == (0, 5, 5)
    assert tracks(out) == ids


def test_corrupt_file_is_reported_and_skipped_and_labels_use_real_formats(extracted):
    out, summary = extracted["out"], extracted["summary"]
    assert [key for key, _ in summary.failed] == ["classical/broken.ogg"]
    assert "cannot decode" in summary.failed[0][1]
    assert summary.tracks == 5 and summary.genres == {"classical": 2, "country": 1, "jazz": 2}
    assert summary.splits["test"] >= 1 and sum(summary.splits.values()) == 5
    assert not (out / "multitask_dataset").exists()  # no targets given

    rows = {}
    for beat in (False, True):
        directory = out / layout.dataset_dirname(layout.GENRE_TASK, beat)
        for split in layout.SPLITS:
            lines = (directory / f"{split}_labels.txt").read_text().splitlines()
            assert lines[0] == "Id\tGenre"
            for line in lines[1:]:
                ident, genre = line.split("\t")
                if split == "test":
                    assert ident.endswith(".full.fused.npy.gz")
                elif beat:
                    assert ident.endswith(".beatsync.fused.npy.gz")
                else:
                    assert ident.endswith(".fused.full.npy.gz")
                rows[(beat, layout.track_id_of(ident))] = (split, genre)
    keys = {str(t): k for k, (t, _) in tracks(out).items()}
    for (_, track), (split, genre) in rows.items():
        assert keys[track].split("/")[0] == genre and tracks(out)[keys[track]][1] == split
    assert len(rows) == 10  # five files in both the full and the beat-synced layout
    train_genres = {g for (split, g) in rows.values() if split == "train"}
    assert train_genres == {"classical", "country", "jazz"}  # every genre keeps a train file
    manifest = json.loads((out / layout.MANIFEST).read_text())
    assert manifest["class_mapping"] is None and manifest["duration"] == SECONDS


def test_cli_lists_the_file_it_skipped(extracted, audio_tree, capsys):
    code = main(["extract", str(audio_tree), str(extracted["out"]), "--duration", str(SECONDS)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "classical/broken.ogg: cannot decode" in captured.err
    assert "5 files in" in captured.out and "0 extracted now, 5 already done" in captured.out


def test_reader_gives_the_same_shapes_as_for_the_real_layout(extracted, fake_root):
    """Issue 2's bar: data made by `musictune extract` from real audio reads like the rest."""
    out = extracted["out"]
    for view, width in (("mel", 128), ("chroma", 12), ("fused", 140)):
        data = load_dataset(out, features=view)
        reference = load_dataset(fake_root, features=view)
        assert data.classes == ("classical", "country", "jazz")
        for split in (data.train, data.val, data.test):
            assert split.frames.ndim == 2 and split.n_features == width
            assert split.n_features == reference.train.n_features
            assert split.padded().shape[1] == split.lengths.max()  # time-major (N, T, F)
            assert split.frames.dtype == reference.train.frames.dtype == np.float32
            assert split.lengths.dtype == reference.train.lengths.dtype
            assert split.ids.dtype.kind == reference.train.ids.dtype.kind == "U"
        assert set(np.concatenate([data.train.lengths, data.val.lengths, data.test.lengths])) == {
            FRAMES
        }
    beat = load_dataset(out, features="mel", beat=True)
    assert beat.train.n_features == 128 and 0 < beat.train.lengths.max() < FRAMES


def test_arrays_are_the_feature_code_on_the_middle_of_the_file(extracted):
    out = extracted["out"]
    track, split = tracks(out)["jazz/vibeace.ogg"]
    y = features.load_audio(str(AUDIO / CLIPS["vibeace"]))
    n = int(SECONDS * features.SAMPLE_RATE)
    assert len(y) > n + features.SAMPLE_RATE // 4  # so the middle is a real cut of the file
    start = (len(y) - n) // 2
    full, beat = features.extract_features(y[start : start + n])
    for array, is_beat in ((full, False), (beat, True)):
        stored = np.load(
            out / layout.dataset_dirname("genre", is_beat) / split / f"{track}.fused.full.npy"
        )
        np.testing.assert_allclose(stored, array, rtol=1e-5, atol=1e-5)


def test_musictune_train_trains_on_the_extracted_data(extracted):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "musictune",
            "train",
            "--data-dir",
            str(extracted["out"]),
        ]
        + ["--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "data: genre mel:" in proc.stdout and "128 features" in proc.stdout
    assert "epoch   1" in proc.stdout and "test_macro_f1" in proc.stdout


def test_csv_with_targets_keeps_gtzan_genres_and_a_mapping_folds_them(tmp_path):
    music = tmp_path / "music"
    link(music / "a" / "brahms.ogg", "brahms")
    link(music / "b" / "fishin.ogg", "fishin")
    link(music / "vibeace.ogg", "vibeace")
    rng = np.random.default_rng(1)
    rows = [
        ("music/a/brahms.ogg", "disco"),  # relative to the CSV's folder
        ("music/b/fishin.ogg", "disco"),
        (str(AUDIO / CLIPS["trumpet"]), "reggae"),  # absolute
        ("music/vibeace.ogg", "jazz"),
    ]
    table = ["path,genre,valence,energy,danceability"]
    table += [f"{p},{g}," + ",".join(f"{v:.3f}" for v in rng.uniform(0, 1, 3)) for p, g in rows]
    (tmp_path / "labels.csv").write_text("\n".join(table) + "\n")
    out = tmp_path / "out"

    summary = extract(music, out, csv=tmp_path / "labels.csv", duration=3, jobs=1, progress=False)
    assert summary.tracks == 4 and not summary.failed
    assert len(summary.layouts) == 4
    genre = load_dataset(out)
    assert genre.classes == ("disco", "jazz", "reggae")  # GTZAN names kept, not dropped
    multitask_dir = out / layout.dataset_dirname(layout.MULTITASK_TASK, False)
    train_lines = (multitask_dir / "train_labels.txt").read_text().splitlines()
    test_lines = (multitask_dir / "test_labels.txt").read_text().splitlines()
    assert train_lines[0] == "Id,valence,energy,danceability" and len(train_lines) == 4
    assert test_lines[0] == "Id" and len(test_lines) == 2 and "," not in test_lines[1]
    multi = load_task("multitask", out)
    assert multi.train.y.shape[1] == 3 and "no labels" in multi.test_note
    assert load_task("regression", out, target="energy", beat=True).train.n_features == 128

    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"disco": "Electronic", "reggae": None}))
    folded = extract(
        music, out, csv=tmp_path / "labels.csv", duration=3, mapping=mapping, progress=False
    )
    assert folded.extracted == 0 and folded.tracks == 3
    assert any("reggae" in note for note in folded.notes)
    assert load_dataset(out).classes == ("Electronic", "jazz")
    manifest = json.loads((out / layout.MANIFEST).read_text())
    assert manifest["class_mapping"] == {"disco": "Electronic", "jazz": "jazz", "reggae": None}


def test_split_is_stratified_seeded_and_keeps_small_genres_in_train():
    genres = ["rock"] * 10 + ["pop"] * 10 + ["disco"]
    split = assign_splits(genres, 0.2, seed=0, need_test=True)
    test = [g for g, s in zip(genres, split) if s == "test"]
    assert sorted(test) == ["pop", "pop", "rock", "rock"]
    assert split == assign_splits(genres, 0.2, seed=0, need_test=True)
    assert split != assign_splits(genres, 0.2, seed=1, need_test=True)
    assert assign_splits(["a", "b"], 0.15, seed=0, need_test=True) == ["train", "train"]
    assert assign_splits(["a", "a", "b"], 0.15, 0, need_test=True).count("test") == 1


def one_line_error(capsys, argv: list[str], *needles: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    out = str(tmp_path / "out")
    one_line_error(capsys, ["extract", str(tmp_path / "nope"), out], "does not exist")
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, ["extract", str(tmp_path / "empty"), out], "no audio files")
    audio = tmp_path / "audio"
    (audio / "rock").mkdir(parents=True)
    (audio / "rock" / "a.wav").write_bytes(np.random.default_rng(2).bytes(3000))
    one_line_error(capsys, ["extract", str(audio), "/proc/x"], "cannot write to /proc/x")
    (tmp_path / "bad.csv").write_text("path,valence\nrock/a.wav,0.5\n")
    one_line_error(
        capsys,
        ["extract", str(audio), out, "--csv", str(tmp_path / "bad.csv")],
        "missing column genre",
    )
    (tmp_path / "partial.csv").write_text("path,genre,valence\nrock/a.wav,rock,0.5\n")
    one_line_error(
        capsys,
        ["extract", str(audio), out, "--csv", str(tmp_path / "partial.csv")],
        "give all three targets or none",
    )
    (tmp_path / "map.json").write_text("{not json")
    one_line_error(
        capsys, ["extract", str(audio), out, "--mapping", str(tmp_path / "map.json")], "JSON"
    )
    foreign = tmp_path / "foreign"
    (foreign / "fma_genre_spectrograms").mkdir(parents=True)
    one_line_error(capsys, ["extract", str(audio), str(foreign)], "not written by")
    one_line_error(capsys, ["extract", str(audio), out, "--test-fraction", "0"], "test-fraction")
    assert not Path(out).exists()  # nothing is created before the input checks pass
    # Every file undecodable: one line, not a list.
    one_line_error(capsys, ["extract", str(audio), out], "none of the 1 audio file", "a.wav")
    # The default keeps whole songs, up to their middle 10 minutes.
    assert json.loads((Path(out) / "extract_index.json").read_text())["settings"]["duration"] == 600


def test_changed_settings_on_an_existing_out_dir_are_refused(extracted, audio_tree, capsys):
    one_line_error(
        capsys,
        ["extract", str(audio_tree), str(extracted["out"]), "--duration", "10"],
        "--duration 5.0",
    )


# --------------------------------------------------------------------------- decoding, features


def reference_features(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The feature code as it was, librosa's calls on the whole signal, to hold the fast,
    pieced one to: the same bytes, short clips (the demo data's) and long ones alike. One BLAS
    thread, as extract_features uses (the mel product's last bits depend on it)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _reference_features(y)


def _reference_features(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=22050, n_fft=2048, hop_length=512, n_mels=128)
    mel_db = librosa.power_to_db(mel, ref=np.max)
    chroma = librosa.feature.chroma_cqt(y=y, sr=22050, hop_length=512)
    frames = min(mel_db.shape[1], chroma.shape[1])
    full = np.vstack([mel_db[:, :frames], chroma[:, :frames]]).astype(np.float32)
    percussive = librosa.effects.percussive(y)
    _, beats = librosa.beat.beat_track(y=percussive, sr=22050, hop_length=512)
    beat = librosa.util.sync(full, beats[beats < frames], aggregate=np.median)
    return full, beat.astype(np.float32)


def music(seconds: float) -> np.ndarray:
    """Real music at 22050 Hz: the excerpts end to end, as long as asked."""
    y = np.concatenate([features.load_audio(str(AUDIO / name)) for name in CLIPS.values()])
    return np.tile(y, int(np.ceil(seconds * features.SAMPLE_RATE / len(y))))[
        : int(seconds * features.SAMPLE_RATE)
    ]


def write_audio(path: Path, y: np.ndarray, rate: int, subtype: str) -> Path:
    """y (22050 Hz) resampled to `rate`, as a stereo Ogg file (written in blocks: libsndfile's
    Vorbis encoder crashes on one large write)."""
    import librosa
    import soundfile

    z = librosa.resample(y, orig_sr=features.SAMPLE_RATE, target_sr=rate)
    stereo = np.stack([z, 0.8 * np.roll(z, 5)], axis=1)
    with soundfile.SoundFile(path, "w", rate, 2, format="OGG", subtype=subtype) as f:
        for i in range(0, len(stereo), 8192):
            f.write(stereo[i : i + 8192])
    return path


@pytest.fixture(scope="module")
def resampled_files(tmp_path_factory) -> list[Path]:
    """12 s of real music as a 44.1 kHz stereo Vorbis and a 48 kHz stereo Opus file: the common
    case of a user's own music, which is decoded, mixed down and resampled."""
    folder = tmp_path_factory.mktemp("resampled")
    y = music(12)
    return [
        write_audio(folder / "vorbis44k.ogg", y, 44100, "VORBIS"),
        write_audio(folder / "opus48k.opus", y, 48000, "OPUS"),
    ]


def test_features_are_librosa_s_bytes_on_clips_and_on_pieced_signals(monkeypatch):
    """The faster feature code (1-D median filters, pieces with margins, tuning and tempo from
    pieces) computes what librosa's calls on the whole signal do, bit for bit: a 3-s demo clip,
    a real 6-s excerpt, and 12 s of music cut into 3-s pieces (PIECE and MASK_BLOCK shrunk so
    that seams are crossed; the real pieces are 47.5 s)."""
    from musictune.audio import synth

    rng = np.random.default_rng(3)
    demo_clip = synth.render(synth.draw_clip("Rock", rng), 3.0, rng)
    excerpt = features.load_audio(str(AUDIO / CLIPS["vibeace"]))
    for y in (demo_clip, excerpt):
        for ours, theirs in zip(features.extract_features(y), reference_features(y)):
            assert ours.shape == theirs.shape and np.array_equal(ours, theirs)
    monkeypatch.setattr(features, "PIECE", 128)
    monkeypatch.setattr(features, "MASK_BLOCK", 50)
    y = music(12)
    full, beat = features.extract_features(y)
    assert full.shape[1] > 3 * features.PIECE and beat.shape[1] > 10
    reference = reference_features(y)
    assert np.array_equal(full, reference[0]) and np.array_equal(beat, reference[1])
    import librosa

    assert np.array_equal(features.percussive(y), librosa.effects.percussive(y))


def test_block_decode_is_librosa_load(resampled_files, monkeypatch):
    """load_audio decodes, mixes down and resamples a block at a time: librosa.load's samples."""
    import librosa

    monkeypatch.setattr(features, "DECODE_BLOCK", 5000)  # many blocks, an odd size
    for path in [AUDIO / CLIPS["brahms"], *resampled_files]:
        expected, _ = librosa.load(path, sr=features.SAMPLE_RATE, mono=True)
        assert np.array_equal(features.load_audio(str(path)), expected), path.name


def test_middle_decode_is_the_middle_of_the_whole_decode(resampled_files, monkeypatch):
    """--duration decodes only the middle (and a second on either side): the same samples as
    the middle of the whole file's decode, exactly at 22050 Hz and to float rounding when
    resampled; the features of the clip follow."""
    read = []
    real_decode = features._decode

    def spy(path, first=0, stop=None):
        read.append((first, stop))
        return real_decode(path, first, stop)

    monkeypatch.setattr(features, "_decode", spy)
    for path, exact in [(AUDIO / CLIPS["vibeace"], True), *((p, False) for p in resampled_files)]:
        seconds = 3.0 if exact else 8.0
        clip = features.load_middle(str(path), seconds)
        assert read[-1][0] > 0, "the middle was not decoded alone"
        whole = features.load_audio(str(path))
        assert whole.shape[0] > (seconds + 2) * features.SAMPLE_RATE
        expected = features.middle(whole, seconds)
        assert clip.shape == expected.shape == (int(seconds * features.SAMPLE_RATE),)
        if exact:
            assert np.array_equal(clip, expected)
            continue
        np.testing.assert_allclose(clip, expected, rtol=0, atol=1e-6)
        (full, beat), (full_ref, beat_ref) = map(features.extract_features, (clip, expected))
        np.testing.assert_allclose(full[:128], full_ref[:128], rtol=0, atol=1e-3)  # dB
        np.testing.assert_allclose(full[128:], full_ref[128:], rtol=0, atol=1e-4)  # chroma
        assert beat.shape == beat_ref.shape
    # Shorter than the clip (with its margins): decoded whole, as before.
    short = features.load_middle(str(AUDIO / CLIPS["trumpet"]), 30)
    assert read[-1] == (0, None)
    assert np.array_equal(short, features.load_audio(str(AUDIO / CLIPS["trumpet"])))

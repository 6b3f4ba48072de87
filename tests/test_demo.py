"""The synthetic demo data: the real layout and its quirks, determinism, atomic generation."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from musictune import layout, paths
from musictune.audio import features, synth
from musictune.data import demo
from musictune.errors import UserError
from musictune.genres import FMA_CLASS_MAPPING, FMA_GENRES

DIRS = sorted(
    layout.dataset_dirname(task, beat)
    for task in (layout.GENRE_TASK, layout.MULTITASK_TASK)
    for beat in (False, True)
)
N_TRAIN, N_TEST, SECONDS = demo.SIZES["tiny"]


@pytest.fixture(scope="module")
def tiny(demo_tiny) -> Path:
    """The session's tiny demo set (seed 0, one worker per core): generating costs ~30 s."""
    return demo_tiny


def rows(root: Path, directory: str, split: str) -> list[list[str]]:
    lines = (root / directory / f"{split}_labels.txt").read_text().splitlines()
    sep = "\t" if directory.startswith("fma") else ","
    return [line.split(sep) for line in lines]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_layout_is_exactly_the_real_one(tiny):
    assert sorted(p.name for p in tiny.iterdir()) == DIRS
    for directory in DIRS:
        names = sorted(p.name for p in (tiny / directory).iterdir())
        assert names == ["test", "test_labels.txt", "train", "train_labels.txt"]
        for split, n in (("train", N_TRAIN), ("test", N_TEST)):
            labelled = rows(tiny, directory, split)[1:]
            names = {layout.array_filename(layout.track_id_of(r[0])) for r in labelled}
            assert len(labelled) == n
            assert names == {p.name for p in (tiny / directory / split).iterdir()}


def test_headers_and_id_quirks(tiny):
    assert rows(tiny, "fma_genre_spectrograms", "train")[0] == ["Id", "Genre"]
    assert rows(tiny, "fma_genre_spectrograms_beat", "test")[0] == ["Id", "Genre"]
    for beat in ("", "_beat"):
        header, *train = rows(tiny, "multitask_dataset" + beat, "train")
        assert header == ["Id", "valence", "energy", "danceability"]
        assert all(len(r) == 4 for r in train)
        assert all(r == [r[0]] for r in rows(tiny, "multitask_dataset" + beat, "test"))
    for directory in DIRS:
        test_ids = [r[0] for r in rows(tiny, directory, "test")[1:]]
        assert all("full.fused" in i for i in test_ids)
        if directory.endswith("_beat"):
            assert all("beatsync.fused" in r[0] for r in rows(tiny, directory, "train")[1:])


def test_track_ids_look_like_fma_and_match_across_sets(tiny):
    ids = {
        d: [layout.track_id_of(r[0]) for s in ("train", "test") for r in rows(tiny, d, s)[1:]]
        for d in DIRS
    }
    first = ids[DIRS[0]]
    assert all(i.isdigit() and 1 <= int(i) <= 99_999 for i in first)
    assert len(set(first)) == N_TRAIN + N_TEST
    assert np.any(np.diff(sorted(map(int, first))) > 1)  # not contiguous
    assert all(v == first for v in ids.values())


def test_arrays_are_float32_140_rows(tiny):
    full_frames = int(SECONDS * features.SAMPLE_RATE) // features.HOP_LENGTH + 1  # 130
    for directory in DIRS:
        for path in (tiny / directory).rglob("*.npy"):
            a = np.load(path)
            assert a.dtype == np.float32 and a.shape[0] == features.N_FUSED
            if directory.endswith("_beat"):
                assert 1 <= a.shape[1] < 20
            else:
                assert a.shape[1] == full_frames
            assert np.isfinite(a).all()


def test_multitask_sets_hold_the_same_clips(tiny):
    for beat in ("", "_beat"):
        genre = files(tiny / ("fma_genre_spectrograms" + beat))
        multi = files(tiny / ("multitask_dataset" + beat))
        assert {k: v for k, v in multi.items() if k.endswith(".npy")} == {
            k: v for k, v in genre.items() if k.endswith(".npy")
        }


def test_genres_imbalanced_but_all_present(tiny):
    train = [r[1] for r in rows(tiny, "fma_genre_spectrograms", "train")[1:]]
    test = [r[1] for r in rows(tiny, "fma_genre_spectrograms", "test")[1:]]
    assert all(train.count(g) >= 2 for g in FMA_GENRES)
    assert {FMA_CLASS_MAPPING[g] for g in test} >= set(filter(None, FMA_CLASS_MAPPING.values()))
    assert train.count("Rock") > train.count("Blues")


def test_targets_in_unit_interval_and_spread(tiny):
    values = np.array(
        [[float(v) for v in r[1:]] for r in rows(tiny, "multitask_dataset", "train")[1:]]
    )
    assert values.shape == (N_TRAIN, 3)
    assert values.min() >= 0 and values.max() <= 1
    assert np.all(values.std(axis=0) > 0.12)


def test_same_seed_same_bytes_whatever_the_workers(tiny, tmp_path):
    again = demo.generate_demo(tmp_path / "again", "tiny", seed=0, jobs=2, progress=False)
    assert files(again) == files(tiny)
    # A clip rendered alone, in this process, out of order, still gives the same bytes.
    plan = demo._plan("tiny", 0, tmp_path / "alone")
    for job in reversed(plan[-3:]):
        demo.render_job(job)
    assert files(tmp_path / "alone").items() <= files(tiny).items()


def test_features_do_not_depend_on_the_blas_thread_count():
    """With 2 BLAS threads the mel product's last bits differ from 1 thread's; not so here."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng([0, 1])
    y = synth.render(synth.draw_clip("Jazz", rng), SECONDS, rng)
    results = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            results.append(features.extract_features(y))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_other_seed_other_data(tiny, tmp_path):
    plan0, plan1 = demo._plan("tiny", 0, tmp_path), demo._plan("tiny", 1, tmp_path)
    assert [j.track_id for j in plan0] != [j.track_id for j in plan1]
    job = plan0[0]._replace(seed=1, root=str(tmp_path / "other"))
    demo.render_job(job)
    name = f"fma_genre_spectrograms/{job.split}/{layout.array_filename(job.track_id)}"
    assert (tmp_path / "other" / name).read_bytes() != (tiny / name).read_bytes()


def test_refuses_existing_output_and_unknown_size(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        demo.generate_demo(out, "tiny", progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(UserError, match="tiny, small"):
        demo.generate_demo(tmp_path / "new", "huge", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def failing_extract(after: int, error: BaseException):
    calls = []
    real = features.extract_features

    def extract(y, sr=features.SAMPLE_RATE):
        calls.append(1)
        if len(calls) > after:
            raise error
        return real(y, sr)

    return extract


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "extract_features", failing_extract(3, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        demo.generate_demo(tmp_path / "out", "tiny", jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="patch must reach workers")
def test_failing_worker_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "extract_features", failing_extract(2, RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        demo.generate_demo(tmp_path / "out", "tiny", jobs=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_ensure_demo_generates_once_and_accepts_a_race_lost(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICTUNE_CACHE", str(tmp_path))
    expected = paths.demo_data_dir("tiny")
    assert expected.parent == tmp_path

    def other_process_won(out, size, seed, progress):
        out.mkdir()
        (out / "theirs").write_text("")
        raise UserError(f"{out} already exists: remove it or pass another --out")

    monkeypatch.setattr(demo, "generate_demo", other_process_won)
    assert demo.ensure_demo("tiny", progress=False) == expected
    assert "generating the tiny demo data once" in capsys.readouterr().err

    monkeypatch.setattr(demo, "generate_demo", lambda *a, **k: pytest.fail("regenerated"))
    assert demo.ensure_demo("tiny", progress=False) == expected
    assert capsys.readouterr().err == ""

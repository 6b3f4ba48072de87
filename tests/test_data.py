"""The reader: real-layout quirks, the class mapping, the split, standardisation, caching."""

from __future__ import annotations

import time

import numpy as np
import pytest

from musictune import layout
from musictune.data.dataset import load_dataset, load_task
from musictune.data.files import read_split
from musictune.errors import UserError
from musictune.genres import FMA_CLASS_MAPPING, FMA_CLASSES

from .conftest import write_layout


def test_label_id_quirks_resolve_to_the_file_on_disk(fake_root):
    beat_labels = (fake_root / "fma_genre_spectrograms_beat/train_labels.txt").read_text()
    test_labels = (fake_root / "fma_genre_spectrograms/test_labels.txt").read_text()
    assert "beatsync.fused.npy.gz" in beat_labels
    assert "full.fused.npy.gz" in test_labels
    raw = read_split(fake_root / "fma_genre_spectrograms_beat", "genre", "train")
    assert len(raw["lengths"]) == 60 and raw["frames"].shape == (raw["lengths"].sum(), 140)
    assert raw["ids"][0] == "1000"


def test_views_shapes_and_time_major(fake_root):
    for features, width in (("mel", 128), ("chroma", 12), ("fused", 140)):
        data = load_dataset(fake_root, features=features)
        assert data.train.padded().shape[1:] == (40, width)
        assert data.train.frames.shape == (data.train.lengths.sum(), width)  # end to end
    beat = load_dataset(fake_root, features="mel", beat=True)
    x = beat.train.padded()
    assert x.shape[1] == beat.train.lengths.max() <= 8
    # A batch is zero-padded after each clip's true length; clip(i) is its own frames.
    short = int(np.argmin(beat.train.lengths))
    assert np.all(x[short, beat.train.lengths[short] :] == 0)
    assert np.array_equal(x[short, : beat.train.lengths[short]], beat.train.clip(short))


def test_class_mapping_folds_20_into_10_and_drops_five():
    assert len(FMA_CLASS_MAPPING) == 20
    assert len(FMA_CLASSES) == 10
    assert FMA_CLASS_MAPPING["Psych-Rock"] == "Rock" and FMA_CLASS_MAPPING["Punk"] == "Metal"
    assert sum(v is None for v in FMA_CLASS_MAPPING.values()) == 5


def test_split_is_stratified_fixed_and_drops_unmapped(fake_root):
    data = load_dataset(fake_root)
    assert data.classes == FMA_CLASSES
    # 60 clips over 20 genres: 3 each, 5 genres dropped -> 45 kept, 20% validation.
    assert len(data.train) + len(data.val) == 45
    assert len(data.val) == 9
    again = load_dataset(fake_root)
    assert np.array_equal(data.val.ids, again.val.ids)
    other = load_dataset(fake_root, seed=7)
    assert not np.array_equal(data.val.ids, other.val.ids)


def test_standardisation_fitted_on_train_only(fake_root):
    data = load_dataset(fake_root, features="fused")
    frames = data.train.frames
    assert np.allclose(frames.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(frames.std(axis=0), 1, atol=1e-3)
    assert not np.allclose(data.test.frames.mean(axis=0), 0, atol=1e-4)


def test_second_load_comes_from_the_cache_quickly(fake_root):
    load_dataset(fake_root)
    started = time.perf_counter()
    load_dataset(fake_root)
    assert time.perf_counter() - started < 1.0
    # Editing the labels invalidates the cache.
    labels = fake_root / "fma_genre_spectrograms/train_labels.txt"
    labels.write_text(labels.read_text().rsplit("\n", 2)[0] + "\n")
    assert len(read_split(labels.parent, "genre", "train")["ids"]) == 59


def test_multitask_test_split_without_labels_uses_held_out_train(fake_root):
    data = load_task("multitask", fake_root)
    assert data.targets == layout.AFFECT_TARGETS
    assert data.train.y.shape[1] == 3 and data.test.y is not None
    assert "held out" in data.test_note
    assert not set(data.test.ids) & set(data.train.ids)
    energy = load_task("regression", fake_root, target="energy")
    assert energy.train.y.ndim == 1 and energy.targets == ("energy",)


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("missing_file", "is missing"),
        ("corrupt_npy", "not a readable .npy"),
        ("wrong_shape", r"is not \(140, T\)"),
        ("unknown_genre", "not in the class mapping"),
        ("bad_header", "header"),
        ("damaged_after_cache", "not a readable .npy"),
    ],
)
def test_bad_data_is_one_clear_error(fake_root, damage, expected):
    directory = fake_root / "fma_genre_spectrograms"
    first = directory / "train" / "1000.fused.full.npy"
    labels = directory / "train_labels.txt"
    if damage == "missing_file":
        first.unlink()
    elif damage == "corrupt_npy":
        first.write_bytes(b"\x93NUMPY garbage")
    elif damage == "wrong_shape":
        np.save(first, np.zeros((128, 40), np.float32))
    elif damage == "unknown_genre":
        labels.write_text(labels.read_text().replace("\tRock\n", "\tPolka\n", 1))
    elif damage == "damaged_after_cache":
        load_dataset(fake_root)
        first.write_bytes(b"\x93NUMPY garbage")
    elif damage == "bad_header":
        labels.write_text(labels.read_text().replace("Id\tGenre", "Track,Genre", 1))
    with pytest.raises(UserError, match=expected) as info:
        load_dataset(fake_root)
    assert "\n" not in str(info.value)


def test_missing_and_empty_data_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(UserError, match="is empty"):
        load_dataset(tmp_path)


def test_wrong_data_dir_names_a_few_of_its_folders_not_all(tmp_path):
    """Pointed at a busy folder (/tmp, $HOME), the error stays one readable line."""
    for i in range(40):
        (tmp_path / f"folder{i:02d}").mkdir()
    with pytest.raises(UserError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert "holds folder00, folder01, folder02, folder03, folder04, folder05 and 34 more" in message
    assert "folder06" not in message and "point --data-dir at" in message


def test_extracted_manifest_keeps_own_genres(tmp_path):
    root = write_layout(tmp_path / "gtzan", n_train=20, n_test=8, genres=("disco", "reggae"))
    (root / layout.MANIFEST).write_text('{"class_mapping": null}')
    data = load_dataset(root)
    assert data.classes == ("disco", "reggae")


def test_extracted_manifest_mapping_folds_and_drops_genres(tmp_path):
    root = write_layout(tmp_path / "mine", n_train=30, n_test=9, genres=("disco", "jazz", "reggae"))
    mapping = '{"disco": "Electronic", "jazz": "jazz", "reggae": null}'
    (root / layout.MANIFEST).write_text(f'{{"class_mapping": {mapping}}}')
    assert load_dataset(root).classes == ("Electronic", "jazz")


def test_unknown_task_is_refused(fake_root):
    with pytest.raises(UserError, match="unknown task 'nope': choose one of genre, regression"):
        load_task("nope", fake_root)

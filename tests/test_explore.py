"""analysis/explore.py on data in the real layout: the figures, the counts, bad input."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import matplotlib.image
import pytest

from musictune import layout
from musictune.genres import FMA_CLASS_MAPPING

from .conftest import ROOT, load_script

FIGURES = ("clips.png", "classes.png", "lengths.png")
explore_cli = load_script(ROOT / "analysis" / "explore.py")


def labels(root: Path, split: str) -> dict[str, str]:
    """track id -> FMA genre, read straight from a label file."""
    path = root / layout.dataset_dirname(layout.GENRE_TASK, False) / f"{split}_labels.txt"
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return {layout.track_id_of(r[0]): r[1] for r in rows}


def test_explore_writes_figures_and_counts_that_match_the_labels(
    fake_root, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("MUSICTUNE_RESULTS", str(tmp_path / "results"))
    argv = ["--data-dir", str(fake_root), "--genres", "Rock", "Classical"]
    assert explore_cli.main(argv) == 0
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "reports").iterdir()  # the default: reports/ beside the results
    assert folder.name.startswith("explore-")
    for name in FIGURES:
        pixels = matplotlib.image.imread(folder / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400 and pixels.std() > 0
    train, test = labels(fake_root, "train"), labels(fake_root, "test")
    kept = {
        s: sum(FMA_CLASS_MAPPING[g] is not None for g in split.values())
        for s, split in (("train", train), ("test", test))
    }
    classes = {FMA_CLASS_MAPPING[g] for g in train.values()} - {None}
    genres = len(Counter(train.values()))
    assert (
        f"clips: {len(train)} train / {len(test)} test in {genres} genres; after the mapping "
        f"{kept['train']} / {kept['test']} in {len(classes)} classes"
    ) in out
    # The two clips shown really are of the asked-for classes.
    for wanted in ("Rock", "Classical"):
        track = out.split(f"{wanted} (track ", 1)[1].split(")", 1)[0]
        assert FMA_CLASS_MAPPING[train[track]] == wanted
    assert not [p for p in (tmp_path / "reports").iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--genres", "Rock", "Polka"], "no clip of genre 'Polka'"),
        (["--genres", "Rock", "Rock"], "two different genres"),
        (["--out", "{existing}"], "already exists"),
    ],
)
def test_explore_bad_input_is_one_line_with_exit_status_2(
    fake_root, tmp_path, capsys, extra, message
):
    existing = tmp_path / "taken"
    existing.mkdir()
    argv = ["--data-dir", str(fake_root), "--out", str(tmp_path / "new")]
    argv += [a.format(existing=existing) for a in extra]
    assert explore_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "data"] == ["taken"]


def test_explore_without_data_dir_names_the_missing_folder(tmp_path, capsys):
    assert explore_cli.main(["--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err

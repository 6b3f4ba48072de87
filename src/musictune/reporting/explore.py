"""Data-set exploration figures, the course's first lab step (`python analysis/explore.py`; the
lab report's first section): two genres' clips, clips per genre and class, sequence lengths."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from musictune import layout, paths
from musictune.audio.features import HOP_LENGTH, N_MELS, SAMPLE_RATE
from musictune.data.files import class_mapping, dataset_dir, read_split, resolve_data_dir
from musictune.errors import UserError
from musictune.reporting import plots

SPLITS = ("train", "test")


def mapped(genres: np.ndarray, mapping: dict | None) -> list[str | None]:
    return [str(g) if mapping is None else mapping.get(str(g)) for g in genres]


def pick_clips(
    train: dict, beat_ids: set[str] | None, mapping: dict | None, wanted: list[str] | None
) -> list[tuple[str, int]]:
    """(class, index) of one clip for each of two different classes, present in both views."""
    classes = mapped(train["genres"], mapping)
    raw = [str(g) for g in train["genres"]]
    usable = [i for i, t in enumerate(train["ids"]) if beat_ids is None or str(t) in beat_ids]
    if wanted:
        picks = []
        for name in wanted:
            hits = [i for i in usable if classes[i] == name or raw[i] == name]
            if not hits:
                known = sorted({c for c in classes if c} | set(raw))
                raise UserError(f"no clip of genre {name!r}: choose from {', '.join(known)}")
            picks.append((name, hits[0]))
        return picks
    counts = Counter(classes[i] for i in usable if classes[i])
    top = [c for c, _ in counts.most_common(2)]
    if len(top) < 2:
        raise UserError("the train split needs clips of at least two classes to compare")
    return [(c, next(i for i in usable if classes[i] == c)) for c in top]


def clip_figure(clips: list[tuple[str, np.ndarray, np.ndarray | None]], path: Path) -> Path:
    """Rows: clips; columns: mel and chroma, full then beat-synced."""
    import librosa.display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 4, figsize=(17, 3.4 * len(clips)), layout="constrained")
    for row, (label, full, beat) in zip(axes, clips):
        views = [(full, "full"), (beat, "beat-synced")]
        for col, (array, view) in enumerate(views):
            mel_ax, chroma_ax = row[2 * col], row[2 * col + 1]
            if array is None:
                for ax in (mel_ax, chroma_ax):
                    ax.axis("off")
                    ax.set_title(f"{label}: no {view} clip")
                continue
            timed = view == "full"
            common = dict(sr=SAMPLE_RATE, hop_length=HOP_LENGTH, x_axis="time" if timed else None)
            show = librosa.display.specshow
            mel = show(array[:N_MELS], y_axis="mel", fmax=SAMPLE_RATE / 2, ax=mel_ax, **common)
            fig.colorbar(mel, ax=mel_ax, format="%+.0f dB")
            chroma = show(array[N_MELS:], y_axis="chroma", ax=chroma_ax, **common)
            fig.colorbar(chroma, ax=chroma_ax)
            mel_ax.set_title(f"{label}\nmel spectrogram, {view}")
            chroma_ax.set_title(f"{label}\nchromagram, {view}")
            if not timed:
                for ax in (mel_ax, chroma_ax):
                    ax.set_xlabel(f"beat ({array.shape[1]} frames)")
    return plots.save(fig, path)


def class_figure(genres: dict[str, np.ndarray], mapping: dict | None, path: Path) -> tuple:
    """Clips per raw genre and per mapped class (with the dropped ones), train and test."""
    import matplotlib.pyplot as plt

    before = {s: Counter(str(g) for g in genres[s]) for s in SPLITS}
    after = {s: Counter(c or "(dropped)" for c in mapped(genres[s], mapping)) for s in SPLITS}
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.5), layout="constrained")
    for ax, counts, title in (
        (axes[0], before, "before the mapping: FMA genres"),
        (axes[1], after, "after the mapping: classes"),
    ):
        names = sorted(
            set(counts["train"]) | set(counts["test"]),
            key=lambda n: (n == "(dropped)", -counts["train"][n], n),
        )
        x = np.arange(len(names))
        train = [counts["train"][n] for n in names]
        ax.bar(x, train, label="train")
        ax.bar(x, [counts["test"][n] for n in names], bottom=train, label="test")
        ax.set_xticks(x, names, rotation=60, ha="right")
        ax.set(ylabel="clips", title=title)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    plots.save(fig, path)
    return before, after


def length_figure(lengths: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Histograms of clip lengths in frames, one panel per view, train and test overlaid."""
    fig, axes = plots.panels(1, len(lengths), (6 * len(lengths), 3.8))
    for ax, (view, per_split) in zip(axes.flat, lengths.items()):
        every = np.concatenate(list(per_split.values()))
        low, high = int(every.min()), int(every.max())
        # One bin per length when lengths are few (beat-synced), else 30 bins.
        bins = np.arange(low, high + 2) - 0.5 if high - low < 60 else 30
        for split, values in per_split.items():
            ax.hist(values, bins=bins, alpha=0.6, label=f"{split} (n={len(values)})")
        ax.set(xlabel="frames", ylabel="clips", title=f"sequence lengths, {view}")
        ax.legend()
    return plots.save(fig, path)


def data_views(data_dir: str | os.PathLike | None) -> tuple[Path, dict | None, dict, dict | None]:
    """The data root, its class mapping, and the raw train/test splits of the full genre
    layout and of the beat-synced one (None if absent)."""
    root = resolve_data_dir(data_dir)
    full_dir = dataset_dir(root, layout.GENRE_TASK, False)
    mapping = class_mapping(root)
    beat_dir = root / layout.dataset_dirname(layout.GENRE_TASK, True)

    def read(folder: Path) -> dict:
        return {s: read_split(folder, layout.GENRE_TASK, s) for s in SPLITS}

    return root, mapping, read(full_dir), read(beat_dir) if beat_dir.is_dir() else None


def clips_to_show(
    full: dict, beat: dict | None, mapping: dict | None, genres: list[str] | None
) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(title, full clip, beat-synced clip or None) of the two train clips compared."""
    beat_index = None if beat is None else {str(t): i for i, t in enumerate(beat["train"]["ids"])}
    picks = pick_clips(full["train"], None if beat is None else set(beat_index), mapping, genres)
    clips = []
    for label, i in picks:
        track = str(full["train"]["ids"][i])
        beat_clip = None if beat is None else raw_clip(beat["train"], beat_index[track]).T
        clips.append((f"{label} (track {track})", raw_clip(full["train"], i).T, beat_clip))
    return clips


def raw_clip(raw: dict, i: int) -> np.ndarray:
    """Clip i's (T, 140) frames of a split as `read_split` returns it (clips end to end)."""
    start = int(raw["lengths"][:i].sum())
    return raw["frames"][start : start + int(raw["lengths"][i])]


def figures(views: tuple, folder: Path, genres: list[str] | None, prefix: str = "") -> tuple:
    """The clip and class figures (and, without a prefix, the lengths) into `folder`; returns
    the clips compared and the counts before and after the mapping."""
    _, mapping, full, beat = views
    clips = clips_to_show(full, beat, mapping, genres)
    clip_figure(clips, folder / f"{prefix}clips.png")
    genre = {s: full[s]["genres"] for s in SPLITS}
    before, after = class_figure(genre, mapping, folder / f"{prefix}classes.png")
    if not prefix:
        shown = {"full": full} | ({"beat-synced": beat} if beat is not None else {})
        lengths = {v: {s: d[s]["lengths"] for s in SPLITS} for v, d in shown.items()}
        length_figure(lengths, folder / "lengths.png")
    return clips, before, after


def explore(
    data_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    genres: list[str] | None = None,
) -> Path:
    """Write the exploration PNGs into a new folder (built aside, renamed when complete)."""
    if genres is not None and len(set(genres)) != 2:
        raise UserError(f"--genres takes two different genres, got {' '.join(genres)}")
    views = data_views(data_dir)
    reports = paths.default_results_dir().parent / "reports"
    target = Path(out).expanduser() if out else reports / time.strftime("explore-%Y-%m-%d_%H%M%S")
    if target.exists():
        raise UserError(f"{target} already exists: choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        clips, before, after = figures(views, tmp, genres)
        os.chmod(tmp, 0o755)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = {s: sum(before[s].values()) for s in SPLITS}
    kept = {s: total[s] - after[s].get("(dropped)", 0) for s in SPLITS}
    print(f"data: {views[0]}")
    print(
        f"clips: {total['train']} train / {total['test']} test in {len(before['train'])} genres; "
        f"after the mapping {kept['train']} / {kept['test']} in "
        f"{len([c for c in after['train'] if c != '(dropped)'])} classes"
    )
    print(f"clips compared: {', '.join(c[0] for c in clips)}")
    print(f"figures: {target}/clips.png, classes.png, lengths.png")
    return target

"""What `musictune extract` reads: genre subfolders or a CSV of files, and a genre mapping.

Both inputs come down to a list of `Source`s, each keyed by its path relative to AUDIO_ROOT:
that key is what the extract index remembers a file by across reruns.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from musictune import layout
from musictune.errors import UserError

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".ogg", ".oga", ".opus", ".flac", ".mp3", ".au", ".aif", ".aiff", ".m4a", ".aac"}
)
CSV_COLUMNS = ("path", "genre")


class Source(NamedTuple):
    """One audio file to extract: where it is, its key in the index, its labels."""

    path: Path
    key: str  # path relative to AUDIO_ROOT (posix), or absolute when outside it
    genre: str
    targets: tuple[float, float, float] | None


def _check_genre(genre: str, where: str) -> str:
    genre = genre.strip()
    if not genre or any(c in genre for c in "\t\r\n"):
        raise UserError(f"{where}: genre {genre!r} is empty or holds a tab or newline; rename it")
    return genre


def _key(path: Path, root: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return absolute.as_posix()


def scan_folders(root: Path, exclude: Path | None = None) -> tuple[list[Source], list[str]]:
    """Genre subfolders -> sources, plus notes on what was ignored (loose or non-audio files)."""
    sources, notes = [], []
    loose = [p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    ignored = 0
    skip = Path(os.path.abspath(exclude)) if exclude else None
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if skip and Path(os.path.abspath(folder)) == skip:
            continue
        genre = _check_genre(folder.name, str(folder))
        for path in sorted(folder.rglob("*")):
            if any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue
            if not path.is_file():
                continue
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                sources.append(Source(path, _key(path, root), genre, None))
            else:
                ignored += 1
    if not sources:
        raise UserError(
            f"{root} holds no audio files in genre subfolders: put them in {root}/<genre>/ "
            f"({', '.join(sorted(AUDIO_EXTENSIONS))}) or pass --csv FILE with columns path,genre"
        )
    if loose:
        notes.append(f"ignored {len(loose)} file(s) directly in {root} (not in a genre folder)")
    if ignored:
        notes.append(f"ignored {ignored} file(s) without an audio extension")
    return sources, notes


def _read_table(csv_path: Path):
    """The CSV as strings with lower-case column names, and whether it gives the targets."""
    import pandas as pd

    if not csv_path.is_file():
        raise UserError(f"CSV file {csv_path} not found: pass --csv an existing file")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{csv_path}: not a readable CSV ({reason}); fix the file") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    want = "path,genre (and optionally " + ",".join(layout.AFFECT_TARGETS) + ")"
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(
            f"{csv_path}: missing column {', '.join(missing)} (header: "
            f"{','.join(table.columns)}); the header must name {want}"
        )
    given = [t for t in layout.AFFECT_TARGETS if t in table.columns]
    if given and len(given) != len(layout.AFFECT_TARGETS):
        absent = [t for t in layout.AFFECT_TARGETS if t not in given]
        raise UserError(
            f"{csv_path}: has {', '.join(given)} but not {', '.join(absent)}; "
            "give all three targets or none"
        )
    if table.empty:
        raise UserError(f"{csv_path} lists no files: add one row per audio file")
    return table, bool(given)


def _row_targets(values: dict, where: str) -> tuple[float, float, float]:
    try:
        targets = tuple(float(values[t]) for t in layout.AFFECT_TARGETS)
    except ValueError:
        raise UserError(f"{where}: a target value is not a number; fix that row") from None
    if not all(0.0 <= v <= 1.0 for v in targets):
        raise UserError(f"{where}: targets must lie in [0, 1], got {targets}; fix it")
    return targets


def read_csv(csv_path: Path, root: Path) -> list[Source]:
    """`path,genre[,valence,energy,danceability]`; relative paths start at the CSV's folder."""
    table, has_targets = _read_table(csv_path)
    sources, seen = [], {}
    for line, row in enumerate(table.itertuples(index=False), start=2):
        values = row._asdict()
        where = f"{csv_path} line {line}"
        text = values["path"].strip()
        if not text:
            raise UserError(f"{where}: the path is empty; fill it in")
        path = Path(text).expanduser()
        path = path if path.is_absolute() else csv_path.parent / path
        key = _key(path, root)
        if key in seen:
            raise UserError(
                f"{where}: {text} is listed again (first on line {seen[key]}); "
                "keep one row per file"
            )
        seen[key] = line
        genre = _check_genre(values["genre"], where)
        targets = _row_targets(values, where) if has_targets else None
        sources.append(Source(path, key, genre, targets))
    return sources


def read_mapping(path: Path) -> dict[str, str | None]:
    """A JSON object genre -> class name, or null to leave the genre out."""
    try:
        mapping = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"mapping file {path} not found: pass --mapping an existing file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"mapping file {path} is not valid JSON ({exc}); fix it") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, str) and v.strip()))
        for k, v in mapping.items()
    ):
        raise UserError(
            f'mapping file {path} must be one JSON object of "genre": "class" or null '
            '(e.g. {"hiphop": "Hip-Hop", "country": null}); fix it'
        )
    return {k.strip(): (v.strip() if v else None) for k, v in mapping.items()}


def list_sources(
    root: Path,
    out: Path,
    csv: str | os.PathLike | None,
    folding: dict[str, str | None] | None,
    mapping_name: str | os.PathLike | None,
) -> tuple[list[Source], list[str]]:
    """The files to extract (from the CSV, else the genre folders) less the genres the mapping
    drops, plus notes on what was left out."""
    if csv:
        sources, notes = read_csv(Path(csv).expanduser(), root), []
    else:
        sources, notes = scan_folders(root, exclude=out)
    if folding:
        dropped = Counter(s.genre for s in sources if s.genre in folding and not folding[s.genre])
        sources = [s for s in sources if s.genre not in dropped]
        if dropped:
            notes.append(
                f"left out {sum(dropped.values())} file(s) of genres mapped to null: "
                + ", ".join(sorted(dropped))
            )
        if not sources:
            raise UserError(
                f"the mapping {mapping_name} drops every genre: map at least one to a class"
            )
    return sources, notes

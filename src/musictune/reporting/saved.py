"""A report's results on disk: `results.json` (versioned, Python's JSON: NaN kept) and
`results.npz` (the arrays). A damaged or foreign file is one `UserError`, never a traceback."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from musictune.errors import UserError
from musictune.reporting.results import ReportResults

RESULTS_FILE = "results.json"
ARRAYS_FILE = "results.npz"
VERSION = 1  # bump when a field changes meaning; older files are then refused, not misread
FIX = "rebuild it with a full report run (musictune report without --render-only)"


def save(results: ReportResults, folder: Path) -> None:
    """results.json (and results.npz if there are arrays) into a report's temporary folder."""
    arrays: dict[str, np.ndarray] = {}
    raw = results.model_dump(context={"arrays": arrays})
    text = json.dumps(raw, indent=1, default=_plain)
    if arrays:
        with open(folder / ARRAYS_FILE, "wb") as f:
            np.savez_compressed(f, **arrays)
    (folder / RESULTS_FILE).write_text(text + "\n", encoding="utf-8")


def _plain(value):
    if isinstance(value, np.generic):  # a NumPy scalar, as its Python value
        return value.item()
    raise TypeError(f"cannot save {type(value).__name__} in report results: {value!r}")


def saved_files(results: ReportResults, folder: Path) -> list[Path]:
    """The files that make up the saved results: a rebuilt report copies these."""
    paths = [folder / RESULTS_FILE, folder / ARRAYS_FILE]
    return [p for p in paths if p.exists()] + [folder / e.trials for e in results.experiments]


def load(folder: Path) -> ReportResults:
    """Read a report's saved results; a missing, damaged or foreign file is a `UserError`."""
    path = folder / RESULTS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path} does not exist (not a report folder, or an older one): {FIX}"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}): {FIX}") from None
    version = raw.get("version") if isinstance(raw, dict) else None
    if version != VERSION:
        raise UserError(f"{path} has results version {version!r}, this code reads {VERSION}: {FIX}")
    try:
        arrays = _read_arrays(folder / ARRAYS_FILE)
        results = ReportResults.model_validate(raw, context={"arrays": arrays})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise UserError(f"{path} is malformed ({where}: {error['msg']}): {FIX}") from None
    missing = [e.trials for e in results.experiments if not (folder / e.trials).is_file()]
    if missing:
        raise UserError(f"{folder / missing[0]} is missing: {FIX}")
    return results


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} cannot be read ({exc}): {FIX}") from None

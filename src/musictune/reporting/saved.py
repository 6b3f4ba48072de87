"""A report's results on disk: `results.json` (versioned) and `results.npz` (prediction arrays).

The JSON mirrors the dataclasses of `results` field by field (Python's JSON: NaN is kept as
NaN, as summary.json does); each NumPy array is stored in the .npz and referenced by name, so
floats come back bit for bit and a rebuilt page equals the first. Loading checks the version and
every field's type: a damaged or foreign file is one `UserError`, never a traceback mid-render.
A field added later with a default (feature maps, the data's origin) may be absent: results of
the same version saved before it read as that default, so their pages still rebuild.
"""

from __future__ import annotations

import json
import types
import typing
import zipfile
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import numpy as np

from musictune.errors import UserError
from musictune.reporting.results import ReportResults

RESULTS_FILE = "results.json"
ARRAYS_FILE = "results.npz"
VERSION = 1  # bump when a field changes meaning; older files are then refused, not misread
ARRAY_KEY = "__array__"


class Malformed(ValueError):
    """The file does not hold what its dataclass expects (where: the field path)."""


def save(results: ReportResults, folder: Path) -> None:
    """Write results.json (and results.npz if there are arrays) into `folder`: a report's
    temporary folder, published whole, so the files need no atomic writes of their own."""
    arrays: dict[str, np.ndarray] = {}
    text = json.dumps(_encode(results, arrays), indent=1)
    if arrays:
        with open(folder / ARRAYS_FILE, "wb") as f:
            np.savez_compressed(f, **arrays)
    (folder / RESULTS_FILE).write_text(text + "\n", encoding="utf-8")


def saved_files(results: ReportResults, folder: Path) -> list[Path]:
    """The files that make up the saved results: a rebuilt report copies these."""
    paths = [folder / RESULTS_FILE, folder / ARRAYS_FILE]
    return [p for p in paths if p.exists()] + [folder / e.trials for e in results.experiments]


def load(folder: Path) -> ReportResults:
    """Read a report's saved results; a missing, damaged or foreign file is a `UserError`."""
    path = folder / RESULTS_FILE
    fix = "rebuild it with a full report run (musictune report without --render-only)"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path} does not exist (not a report folder, or an older one): {fix}"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}): {fix}") from None
    version = raw.get("version") if isinstance(raw, dict) else None
    if version != VERSION:
        raise UserError(f"{path} has results version {version!r}, this code reads {VERSION}: {fix}")
    arrays = _read_arrays(folder / ARRAYS_FILE, fix)
    try:
        results = _decode(ReportResults, raw, arrays, "")
    except Malformed as exc:
        raise UserError(f"{path} is malformed ({exc}): {fix}") from None
    missing = [e.trials for e in results.experiments if not (folder / e.trials).is_file()]
    if missing:
        raise UserError(f"{folder / missing[0]} is missing: {fix}")
    return results


def _read_arrays(path: Path, fix: str) -> dict[str, np.ndarray]:
    """The .npz's arrays, read in full (none without the file: results without arrays)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} cannot be read ({exc}): {fix}") from None


def _encode(value, arrays: dict[str, np.ndarray]):
    """Dataclasses to dicts, arrays into `arrays` (referenced by name), NumPy scalars to Python."""
    if is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name), arrays) for f in fields(value)}
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {ARRAY_KEY: name}
    if isinstance(value, dict):
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot save {type(value).__name__} in report results: {value!r}")


def _required(f) -> bool:
    """A field without a default; one with a default was added later, and older results of the
    same version (which lack it) read as that default."""
    return f.default is MISSING and f.default_factory is MISSING


SCALARS = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
}


def _decode(kind, value, arrays: dict[str, np.ndarray], where: str):
    """`value` (parsed JSON) as `kind` (a type hint); Malformed where it is not one."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _decode(kind, value, arrays, where)
    if kind is np.ndarray:
        if not isinstance(value, dict) or value.get(ARRAY_KEY) not in arrays:
            raise Malformed(f"{where or 'top'}: no array")
        return arrays[value[ARRAY_KEY]]
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise Malformed(f"{where or 'top'}: not an object")
        hints = typing.get_type_hints(kind)
        names = [f.name for f in fields(kind) if f.init]
        absent = [f.name for f in fields(kind) if f.init and f.name not in value and _required(f)]
        if absent:
            raise Malformed(f"{where or 'top'}: no {absent[0]!r}")
        present = [n for n in names if n in value]  # a later field absent: its default
        return kind(**{n: _decode(hints[n], value[n], arrays, f"{where}.{n}") for n in present})
    container = origin or kind
    if container in (list, dict) and not isinstance(value, container):
        raise Malformed(f"{where}: not a {container.__name__}")
    if container is list:
        item = args[0] if args else typing.Any
        return [_decode(item, v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if container is dict:
        item = args[1] if args else typing.Any
        return {k: _decode(item, v, arrays, f"{where}.{k}") for k, v in value.items()}
    if kind in SCALARS:
        ok = isinstance(value, SCALARS[kind]) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise Malformed(f"{where}: not a {kind.__name__}")
    return value

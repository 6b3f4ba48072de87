"""Atomic file writes: every writer in the package goes through here.

A file is written to a temporary name beside its target and renamed over it only when complete,
so a reader (a later command, a resumed sweep, another process) never sees half a file, even
after Ctrl-C, a crash or a full disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from musictune.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path`; it becomes `path` when the block ends without error and
    is removed when it does not. `suffix` keeps writers that add extensions (numpy) in line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_writable(folder: Path, what: str, fix: str) -> None:
    """Fail in one line before minutes of work when an output folder cannot be written:
    `<what> <folder> is not writable (<why>): <fix>`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"{what} {folder} is not writable ({exc.strerror}): {fix}") from None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)

"""A partitioned run's output folder: one Parquet file per partition, written as it is answered.

``ddf.claude.batch(..., to_parquet="dir/")`` writes ``part.00000.parquet``, ``part.00001.parquet``, …
into a folder. Everything about that folder is checked before anything is computed or sent — a
file in its place, files batchkit did not write, a place this process cannot write — and nothing
is left behind by the check; an earlier run's part files are replaced, and those past the new
run's partitions removed.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchkit.errors import OutputPathError

if TYPE_CHECKING:
    from .answers import PartOutput

__all__ = ["PART_FILE", "PartWriter", "check_parts_dir", "ready_parts_dir"]

PART_FILE = "part.{:05d}.parquet"
"""The file each partition's output is written to under ``to_parquet=``."""
_PART_FILE = re.compile(r"part\.\d{5,}\.parquet")


def check_parts_dir(value: Any) -> Path:
    """Check ``to_parquet=`` (nothing is left written): a new or empty folder, or one holding only
    an earlier run's part files, that this process can write (or create) — tried with a probe
    folder made and removed at once in it or in its nearest existing parent.

    Raises:
        OutputPathError: the path is a file, or a folder holding other files, or one that cannot
            be written or created (``/proc/x``, a read-only place, a parent that is a file).
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise OutputPathError(f"to_parquet= must be the path of a folder, not {value!r}", path=str(value))
    if "\x00" in str(value):
        raise OutputPathError(
            f"to_parquet={str(value)!r} holds a NUL byte, which no path can; fix the path", path=str(value)
        )
    try:
        return _checked_dir(value)
    except OSError as exc:
        raise OutputPathError(
            f"to_parquet={str(value)!r} cannot be written ({exc.strerror or exc}); give a folder this process "
            "can create and write (and, on a cluster, the workers too)",
            path=str(value),
        ) from None


def _checked_dir(value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise OutputPathError(
            f"to_parquet={str(value)!r} is a file; give the path of a folder for the dataset "
            f"(one {PART_FILE.format(0)} per partition)",
            path=str(path),
        )
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if not _PART_FILE.fullmatch(p.name))
        if others:
            raise OutputPathError(
                f"to_parquet={str(value)!r} holds files batchkit did not write ({', '.join(others[:3])}"
                f"{', …' if len(others) > 3 else ''}); give a new or empty folder",
                path=str(path),
            )
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder")
    os.rmdir(tempfile.mkdtemp(prefix=".batchkit-probe-", dir=existing))  # can it be written here?
    return path


def ready_parts_dir(path: Path, npartitions: int) -> None:
    """Make the checked folder ready: created, and an earlier run's part files past this run's
    partitions removed (the others are replaced as their partitions are written).

    Raises:
        OutputPathError: it cannot be created after all (e.g. the place changed since the check).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"to_parquet={str(path)!r} cannot be created ({exc.strerror or exc}); give a "
            "folder this process can create and write",
            path=str(path),
        ) from None
    for stale in path.iterdir():
        if _PART_FILE.fullmatch(stale.name) and int(stale.name.split(".")[1]) >= npartitions:
            stale.unlink()


class PartWriter:
    """``on_output`` of a run that writes each partition's file as it is answered, a bounded number
    at a time: ``write(out, file)`` starts the writing of partition ``out.part`` to ``file`` and
    returns a future whose result is the rows written; at most ``ahead`` are pending."""

    def __init__(self, path: Path, write: Callable[[PartOutput, Path], Any], *, ahead: int) -> None:
        self._path = path
        self._write = write
        self._ahead = ahead
        self._pending: deque[Any] = deque()
        self.rows = 0

    def __call__(self, out: PartOutput) -> None:
        self._pending.append(self._write(out, self._path / PART_FILE.format(out.part)))
        while len(self._pending) > self._ahead:
            self.rows += self._pending.popleft().result()

    def finish(self) -> None:
        while self._pending:
            self.rows += self._pending.popleft().result()

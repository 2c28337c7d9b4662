"""File helpers shared by the loaders: find a file, read it whole, decompress by extension.

Every failure (missing, unreadable, truncated or corrupt compressed stream) becomes a
:class:`~hqnn.exceptions.DataError` that names the file, so a user never sees a bare
``OSError``/``EOFError`` traceback from deep inside ``gzip`` or ``lzma``.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hqnn.exceptions import DataError

__all__ = ["find_file", "read_bytes", "resolve_root"]

_DECOMPRESSORS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


def resolve_root(path: str | Path | None, dataset: str, expected: str) -> Path:
    """Return ``path`` as an existing directory or file, or raise a DataError saying what to pass.

    Args:
        path: the user's path (a directory or a file, depending on the dataset), or None.
        dataset: dataset name, for the message.
        expected: what the path should hold, for the message.

    Returns:
        The path as a :class:`~pathlib.Path`.

    Raises:
        DataError: ``path`` is None or does not exist.
    """
    if path is None:
        raise DataError(f"dataset {dataset!r} needs path=... pointing to {expected}; got no path")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"dataset {dataset!r}: {root} does not exist (expected {expected})")
    return root


def find_file(directory: Path, names: tuple[str, ...]) -> Path:
    """Return the first of ``names`` that exists in ``directory``.

    Args:
        directory: folder to look in.
        names: candidate file names, in order of preference (e.g. raw then ``.gz``).

    Returns:
        The path of the first existing candidate.

    Raises:
        DataError: none of the candidates exists.
    """
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise DataError(f"missing file in {directory}: expected one of {', '.join(names)}")


def read_bytes(path: Path) -> bytes:
    """Read a whole file, decompressing it when its name ends in ``.gz``, ``.xz`` or ``.bz2``.

    Args:
        path: the file.

    Returns:
        The (decompressed) content.

    Raises:
        DataError: the file cannot be read, or its compressed stream is truncated or corrupt.
    """
    opener = _DECOMPRESSORS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as handle:
            return handle.read()
    except _DECOMPRESS_ERRORS as exc:
        kind = "compressed file is truncated or corrupt" if opener is not open else "cannot read file"
        raise DataError(f"{path}: {kind} ({type(exc).__name__}: {exc})") from exc

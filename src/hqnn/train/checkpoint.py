"""Atomic files: a checkpoint or report is written to a temporary file and moved into place with
``os.replace``, so a crash or Ctrl-C while writing never leaves a half-written file nor loses the
previous good one."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hqnn.exceptions import ConfigError

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint", "write_json", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename the result to ``path``.

    Args:
        path: the final file.
        write: writes the whole content to the path it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Save a training state (tensors, numbers, strings, lists, dicts) atomically with ``torch.save``."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` onto the CPU (``weights_only``: no code runs).

    Raises:
        ConfigError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no checkpoint to resume from: {path} does not exist (run without run.resume=true)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ConfigError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc


def write_json(value: Any, path: str | Path) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

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


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
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
        ConfigError: the file is missing or unreadable, or holds no training state (a dict with the keys
            the trainer reads back: epoch, phase_index, model, optimizer, scheduler, best, history, rng,
            model_name, config).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no checkpoint to resume from: {path} does not exist (run without run.resume=true)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        detail = " ".join(str(exc).split())  # torch's messages span several lines: keep one
        raise ConfigError(f"cannot read checkpoint {path}: {type(exc).__name__}: {detail}") from exc
    _check_training_state(state, path)
    return state


# the keys the trainer reads back on resume, and the types their values must have
_REQUIRED: dict[str, tuple[type, ...]] = {
    "epoch": (int,),
    "phase_index": (int,),
    "model": (dict,),
    "optimizer": (dict,),
    "scheduler": (dict, type(None)),
    "best": (dict, type(None)),
    "history": (list,),
    "rng": (dict,),
    "model_name": (str,),
    "config": (dict,),
}


def _check_training_state(state: Any, path: Path) -> None:
    """Refuse a file that loads but is not a training state (another file, or a damaged one: torch
    does not check the archive's CRC, so a flipped bit can turn the dict into a tuple)."""
    prefix = f"checkpoint {path} is not an hqnn training checkpoint"
    if not isinstance(state, dict):
        raise ConfigError(f"{prefix}: expected a dict of training state, got {type(state).__name__}")
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        present = ", ".join(map(str, list(state)[:12])) + (", ..." if len(state) > 12 else "")
        raise ConfigError(f"{prefix}: missing {', '.join(missing)} (has {present or 'no keys'})")
    for key, types in _REQUIRED.items():
        value = state[key]
        if types == (int,):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{prefix}: {key!r} should be an int >= 0, got {type(value).__name__} {value!r:.60}")
        elif not isinstance(value, types):
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise ConfigError(f"{prefix}: {key!r} should be {expected}, got {type(value).__name__} {value!r:.60}")
    train = state["config"].get("train")
    epochs = train.get("epochs") if isinstance(train, dict) else None
    if not isinstance(epochs, int):  # the trainer compares it with train.epochs on resume
        raise ConfigError(f"{prefix}: its config has no train.epochs (an int); got {epochs!r:.60}")


def write_json(value: Any, path: str | Path) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

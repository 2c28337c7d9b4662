"""Experiment presets: YAML files shipped in ``hqnn/train/presets/``, one per seed recipe.

A preset is named by its file stem (``digits_cnn_qnn``). :func:`load_config` also accepts a path to
any YAML config (a run directory's ``config.yaml`` reruns that run), and looks in ``./configs/``
first, so a project can keep its own presets there and shadow the shipped ones by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hqnn.exceptions import ConfigError
from hqnn.train.config import ExperimentConfig, apply_overrides, config_from_dict, load_yaml

__all__ = ["PRESET_DIR", "DEFAULT_PRESET", "list_presets", "resolve_preset", "load_config"]

PRESET_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_PRESET = "digits_cnn_qnn"
_LOCAL_DIR = Path("configs")


def list_presets() -> list[str]:
    """Names of the shipped presets and of ``./configs/*.yaml``, sorted."""
    files = [*PRESET_DIR.glob("*.yaml"), *(_LOCAL_DIR.glob("*.yaml") if _LOCAL_DIR.is_dir() else [])]
    return sorted({f.stem for f in files})


def resolve_preset(name_or_path: str) -> Path:
    """The YAML file of a preset name or path: an existing file, ``./configs/<name>.yaml``, or the
    shipped ``hqnn/train/presets/<name>.yaml``, in that order.

    Raises:
        ConfigError: nothing matches; the message lists the presets.
    """
    given = Path(name_or_path)
    stem = given.name.removesuffix(".yaml")
    for candidate in (given, _LOCAL_DIR / f"{stem}.yaml", PRESET_DIR / f"{stem}.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no config file or preset named {name_or_path!r}; presets: {', '.join(list_presets())}"
    )


def load_config(name_or_path: str = DEFAULT_PRESET, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load a preset (or YAML file) and apply ``key=value`` overrides.

    Args:
        name_or_path: a preset name from :func:`list_presets` or a YAML file.
        overrides: ``key=value`` strings (see :func:`~hqnn.train.config.apply_overrides`).

    Returns:
        The resolved config; its ``preset`` is the file's stem unless the file sets it.

    Raises:
        ConfigError: unknown preset, unreadable YAML, unknown key or bad value.

    Example:
        >>> load_config("digits_cnn_qnn", ["epochs=1"]).train.epochs
        1
    """
    path = resolve_preset(name_or_path)
    values = load_yaml(path)
    values.setdefault("preset", path.stem)
    return apply_overrides(config_from_dict(values), overrides)

"""Exceptions raised by hqnn.

Every error a user can trigger is an :class:`HQNNError`, so callers (and the CLI) can catch one
type. Each message says what was expected and what was given.
"""

__all__ = [
    "HQNNError",
    "ShapeError",
    "WireError",
    "GateError",
    "ValueRangeError",
    "ConfigError",
    "DataError",
    "ResourceError",
    "MissingDependencyError",
    "UnsupportedError",
    "require",
]


class HQNNError(Exception):
    """Base class of all hqnn errors."""


class ShapeError(HQNNError, ValueError):
    """A tensor has the wrong shape (input width, weight shape, batch shape)."""


class WireError(HQNNError, ValueError):
    """A wire index is out of range or repeated within one gate."""


class GateError(HQNNError, ValueError):
    """An unknown gate name, or a gate given the wrong number of parameters."""


class ValueRangeError(HQNNError, ValueError):
    """A value is outside its valid range (NaN angles, probabilities outside [0, 1])."""


class ConfigError(HQNNError, ValueError):
    """An experiment configuration is invalid (unknown key, wrong type, bad preset)."""


class DataError(HQNNError):
    """A dataset file is missing, truncated, corrupted, of the wrong format, or holds bad labels."""


class ResourceError(HQNNError, MemoryError):
    """A request needs more memory than is available; raised before allocating."""


class MissingDependencyError(HQNNError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class UnsupportedError(HQNNError, NotImplementedError):
    """A feature of another toolchain that hqnn cannot translate (names the feature)."""


def require(module: str, extra: str):
    """Import an optional dependency or raise MissingDependencyError naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module!r} is required for this feature but is not installed; "
            f"install it with: pip install 'hqnn[{extra}]'"
        ) from exc

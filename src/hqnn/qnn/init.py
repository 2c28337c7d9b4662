"""Weight initialisers for quantum layers (in place, like ``torch.nn.init``)."""

from __future__ import annotations

import math

import torch

from hqnn.exceptions import ConfigError

__all__ = ["INITIALIZERS", "initialize"]


def _uniform(w: torch.Tensor, low: float = 0.0, high: float = 2 * math.pi) -> torch.Tensor:
    return torch.nn.init.uniform_(w, low, high)


def _normal(w: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    return torch.nn.init.normal_(w, mean, std)


def _truncated_normal(w: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = 0.0,
                      b: float = 2 * math.pi) -> torch.Tensor:
    return torch.nn.init.trunc_normal_(w, mean, std, a, b)


def _zeros(w: torch.Tensor) -> torch.Tensor:
    return torch.nn.init.zeros_(w)


INITIALIZERS = {
    "uniform": _uniform,  # U[0, 2π): PennyLane TorchLayer's default
    "normal": _normal,
    "truncated_normal": _truncated_normal,  # N(0, 1) cut to [0, 2π]: SQDR-CNN's "normal" init
    "zeros": _zeros,
}


def initialize(weights: torch.Tensor, init: str = "uniform", **kwargs) -> torch.Tensor:
    """Fill ``weights`` in place with a named initialiser (keyword arguments are its settings).

    Raises:
        ConfigError: an unknown initialiser name.
    """
    if init not in INITIALIZERS:
        raise ConfigError(f"unknown initialiser {init!r}; valid: {', '.join(INITIALIZERS)}")
    with torch.no_grad():
        return INITIALIZERS[init](weights, **kwargs)

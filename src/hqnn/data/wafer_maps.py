"""Preparing wafer maps for a CNN: fixed-size nearest-neighbour resizing, encodings, augmentation.

Wafer-map values are categories (0 = no die, 1 = pass, 2 = fail), so resizing uses nearest
neighbour (every output value is one of the input values; no 1.5 is ever invented), and the
augmentation uses only the wafer's symmetries: rotations by multiples of 90 degrees and flips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hqnn.exceptions import ConfigError, ShapeError

__all__ = ["resize_nearest", "resize_max", "wafer_maps_to_tensor", "RandomRot90Flip", "WAFER_ENCODINGS",
           "WAFER_RESIZES"]

WAFER_ENCODINGS = ("scalar", "onehot")
WAFER_RESIZES = ("nearest", "max")
_N_VALUES = 3  # no die, pass, fail


def resize_nearest(wafer_map: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D map to ``size`` x ``size`` by nearest neighbour with pixel-centre alignment.

    Output pixel i samples input row ``floor((i + 0.5) * H / size)`` (the same for columns), so
    the output holds only values present in the input.

    Args:
        wafer_map: (H, W) array.
        size: output side length (>= 1).

    Returns:
        (size, size) array of the input's dtype.
    """
    rows = np.minimum(((np.arange(size) + 0.5) * wafer_map.shape[0] / size).astype(np.int64), wafer_map.shape[0] - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * wafer_map.shape[1] / size).astype(np.int64), wafer_map.shape[1] - 1)
    return wafer_map[np.ix_(rows, cols)]


def resize_max(wafer_map: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D map of values 0 (no die) < 1 (pass) < 2 (fail) to ``size`` x ``size``, keeping
    every failing die: an output pixel is the maximum over the input cells it covers.

    Shrinking by nearest neighbour drops whole rows and columns, so a one-die-wide scratch on a
    41x41 wafer (the median Scratch map of WM-811K) breaks into dots at 32x32; the maximum keeps it
    connected. Output cell i covers input rows ``floor(i H / size)`` up to the next cell's first
    row; where the input is smaller than ``size`` (no row to reduce) it takes row ``floor(i H / size)``.

    Args:
        wafer_map: (H, W) array.
        size: output side length (>= 1).

    Returns:
        (size, size) array of the input's dtype.

    Example:
        >>> resize_max(np.array([[0, 2], [1, 1]]), 1).tolist()
        [[2]]
    """
    rows = (np.arange(size) * wafer_map.shape[0]) // size
    cols = (np.arange(size) * wafer_map.shape[1]) // size
    return np.maximum.reduceat(np.maximum.reduceat(wafer_map, rows, axis=0), cols, axis=1)


def wafer_maps_to_tensor(
    maps: Sequence[np.ndarray], size: int = 32, encoding: str = "scalar", resize: str = "nearest"
) -> torch.Tensor:
    """Stack wafer maps of any sizes into one float tensor of fixed size.

    Args:
        maps: N 2-D arrays with values in {0, 1, 2}.
        size: output side length.
        encoding: ``"scalar"``: one channel holding value / 2 (0, 0.5, 1); ``"onehot"``: three
            channels, channel k is 1 where the value is k.
        resize: ``"nearest"`` (:func:`resize_nearest`) or ``"max"`` (:func:`resize_max`, keeps
            thin failure patterns when shrinking).

    Returns:
        (N, 1, size, size) or (N, 3, size, size) float32 tensor.

    Raises:
        ConfigError: unknown encoding or size < 1.
    """
    if encoding not in WAFER_ENCODINGS:
        raise ConfigError(f"wafer map encoding must be one of {WAFER_ENCODINGS}; got {encoding!r}")
    if resize not in WAFER_RESIZES:
        raise ConfigError(f"wafer map resize must be one of {WAFER_RESIZES}; got {resize!r}")
    if size < 1:
        raise ConfigError(f"wafer map size must be >= 1; got {size}")
    resize_one = resize_max if resize == "max" else resize_nearest
    resized = torch.from_numpy(np.stack([resize_one(m, size) for m in maps]).astype(np.int64))  # (N, S, S)
    if encoding == "scalar":
        return (resized.to(torch.float32) / 2.0).unsqueeze(1)  # (N, 1, S, S)
    return nn.functional.one_hot(resized, _N_VALUES).permute(0, 3, 1, 2).to(torch.float32)  # (N, 3, S, S)


class RandomRot90Flip(nn.Module):
    """Random rotation by k * 90 degrees (k uniform in 0..3) and a random horizontal flip, per image.

    Together they reach all eight symmetries of the square, which keep a wafer map's failure
    pattern class.

    Args:
        flip_p: probability of the horizontal flip.
        generator: optional torch.Generator for reproducible draws.

    Example:
        >>> out = RandomRot90Flip()(torch.rand(4, 3, 16, 16))
        >>> out.shape
        torch.Size([4, 3, 16, 16])
    """

    def __init__(self, flip_p: float = 0.5, generator: torch.Generator | None = None):
        super().__init__()
        self.flip_p = flip_p
        self.generator = generator

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
            raise ShapeError(f"RandomRot90Flip needs square images (B, C, S, S); got {tuple(images.shape)}")
        quarter_turns = torch.randint(0, 4, (images.shape[0],), generator=self.generator)
        flips = torch.rand(images.shape[0], generator=self.generator) < self.flip_p
        out = torch.where(flips[:, None, None, None], images.flip(-1), images)  # (B, C, S, S)
        for k in range(1, 4):
            chosen = quarter_turns == k
            if chosen.any():
                out[chosen] = torch.rot90(out[chosen], k, dims=(-2, -1))
        return out

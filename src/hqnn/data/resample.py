"""Pillow's 8-bit resampling (``Image.resize`` with BILINEAR or BICUBIC), batched in torch.

The CIFAR-100 recipe computes its quantum angles and channel maps with Pillow on uint8 images;
reproducing Pillow's arithmetic exactly (separable passes, horizontal first, fixed-point weights
with 22 fractional bits, rounding and clipping to uint8 after each pass) keeps the cached
descriptors identical to the original while running on whole batches at once. Verified equal to
Pillow 13 for square images (the recipe's 32 -> 28 bilinear and 2 -> 224 bicubic); for some
non-square shrinking shapes Pillow runs the vertical pass first and values can differ by a grey
level.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hqnn.exceptions import ConfigError, ShapeError

__all__ = ["pil_resize", "pil_grayscale"]

_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c for 8-bit images


def _bilinear(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _bicubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


_FILTERS = {"bilinear": (_bilinear, 1.0), "bicubic": (_bicubic, 2.0)}


def _fixed_point_weights(in_size: int, out_size: int, filter_name: str) -> torch.Tensor:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` as a dense (out, in) int64 matrix."""
    kernel, support = _FILTERS[filter_name]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    inverse_scale = 1.0 / filterscale
    weights = np.zeros((out_size, in_size), dtype=np.int64)
    for out in range(out_size):
        center = (out + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = [kernel((x - center + 0.5) * inverse_scale) for x in range(lo, hi)]
        total = sum(taps)
        for offset, tap in enumerate(taps):
            tap = tap / total if total != 0.0 else tap
            weights[out, lo + offset] = math.trunc(tap * (1 << _PRECISION_BITS) + (0.5 if tap >= 0 else -0.5))
    return torch.from_numpy(weights)


def _clip8(acc: torch.Tensor) -> torch.Tensor:
    """Pillow's clip8: round the fixed-point sum (the bias is pre-added) and clamp to 0..255."""
    return torch.clamp(acc >> _PRECISION_BITS, 0, 255)


def pil_resize(images: torch.Tensor, size: tuple[int, int], filter_name: str = "bilinear") -> torch.Tensor:
    """Resize 8-bit single-channel images exactly as ``PIL.Image.resize((W, H), filter)`` does.

    Args:
        images: (B, H, W) integer tensor with values 0..255.
        size: output (H, W).
        filter_name: ``"bilinear"`` or ``"bicubic"``.

    Returns:
        (B, H_out, W_out) uint8 tensor.

    Raises:
        ShapeError: images not 3-D. ConfigError: unknown filter.

    Example:
        >>> pil_resize(torch.full((1, 4, 4), 7, dtype=torch.uint8), (2, 2)).tolist()
        [[[7, 7], [7, 7]]]
    """
    if filter_name not in _FILTERS:
        raise ConfigError(f"filter must be one of {sorted(_FILTERS)}; got {filter_name!r}")
    if images.ndim != 3:
        raise ShapeError(f"pil_resize needs (B, H, W) images; got {tuple(images.shape)}")
    bias = 1 << (_PRECISION_BITS - 1)
    out = images.to(torch.int64)  # (B, H, W)
    if size[1] != out.shape[2]:
        out = _clip8(out @ _fixed_point_weights(out.shape[2], size[1], filter_name).T + bias)  # (B, H, W_out)
    if size[0] != out.shape[1]:
        out = _clip8(_fixed_point_weights(out.shape[1], size[0], filter_name) @ out + bias)  # (B, H_out, W_out)
    return out.to(torch.uint8)


def pil_grayscale(images: torch.Tensor) -> torch.Tensor:
    """RGB -> Pillow "L": ``(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`` (= 0.299R + 0.587G + 0.114B).

    Args:
        images: (B, 3, H, W) uint8, or float in [0, 1] (rounded to 0..255 first).

    Returns:
        (B, H, W) uint8.

    Raises:
        ShapeError: not (B, 3, H, W).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ShapeError(f"grayscale conversion needs (B, 3, H, W) RGB images; got {tuple(images.shape)}")
    if images.is_floating_point():
        images = torch.round(images.clamp(0, 1) * 255)
    rgb = images.to(torch.int64)
    gray = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16  # (B, H, W)
    return gray.to(torch.uint8)

"""Pointwise and depthwise convolutions whose output is a single pixel, computed without oneDNN.

At the end of SP&A-Net's trunk the maps are 1x1 or 2x2 (32x32 input, five stride-2 steps), and
oneDNN's CPU convolutions spend far more time on setup than on arithmetic there: a depthwise 3x3 on
a 480-channel 1x1 map takes 1.4-7 ms forward and backward at batch 32, the same sum written as one
multiply 0.07 ms. :class:`SmallMapConv2d` is an :class:`torch.nn.Conv2d` (same parameters, same
state dict) that takes the short way when the output is one pixel:

* pointwise (1x1 kernel, stride 1, no padding, no groups) on a 1x1 map: ``linear(x, w)``;
* depthwise (``groups == in == out``) when the whole input lies inside the kernel window of the one
  output pixel (e.g. a "same"-padded k x k on 1x1, or 5x5 stride 2 on 2x2): the input times the
  window of the kernel it meets, summed over the map.

Elsewhere it is the ordinary convolution. :func:`use_small_map_convs` converts a model's qualifying
convolutions in place. The results equal the convolution's within float rounding (exactly, for a
depthwise conv on a 1x1 map); ``tests/layers/test_small_conv.py`` checks values and gradients
against ``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SmallMapConv2d", "use_small_map_convs"]


def _kind(conv: nn.Conv2d) -> str | None:
    """``"pointwise"``, ``"depthwise"`` or None: which short way ``conv`` can take on small maps."""
    if conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    if conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1:
        return "pointwise"
    if conv.groups == conv.in_channels == conv.out_channels:
        return "depthwise"
    return None


class SmallMapConv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` that computes a one-pixel output of a pointwise or depthwise
    convolution as a matrix product or a weighted sum (see the module docstring).

    Built like ``nn.Conv2d``; :meth:`from_conv` wraps an existing one, sharing its parameters.

    Example:
        >>> conv = SmallMapConv2d(4, 4, 3, padding=1, groups=4, bias=False)
        >>> x = torch.randn(2, 4, 1, 1)
        >>> torch.equal(conv(x), F.conv2d(x, conv.weight, padding=1, groups=4))
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.short_way = _kind(self)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> SmallMapConv2d:
        """A ``SmallMapConv2d`` holding ``conv``'s own weight and bias (the same Parameter objects)."""
        new = cls.__new__(cls)
        new.__dict__.update(conv.__dict__)  # modules' state: parameters, buffers, hooks, settings
        new.short_way = _kind(conv)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.short_way == "pointwise" and h == w == 1 and x.dim() == 4:
            return F.linear(x.flatten(1), self.weight.flatten(1), self.bias)[..., None, None]  # (B, out, 1, 1)
        if self.short_way == "depthwise" and x.dim() == 4:
            (kh, kw), (sh, sw) = self.kernel_size, self.stride
            ph, pw = cast(tuple[int, int], self.padding)  # not a string: _kind checked it
            one_pixel = (h + 2 * ph - kh) // sh == 0 and (w + 2 * pw - kw) // sw == 0
            if one_pixel and ph + h <= kh and pw + w <= kw:
                window = self.weight[:, 0, ph : ph + h, pw : pw + w]  # (C, h, w): the taps the input meets
                out = (x * window).sum((-2, -1), keepdim=True)  # (B, C, 1, 1)
                return out if self.bias is None else out + self.bias[:, None, None]
        return super().forward(x)


def use_small_map_convs(model: nn.Module) -> int:
    """Replace, in place, every plain ``nn.Conv2d`` in ``model`` that is pointwise or depthwise by a
    :class:`SmallMapConv2d` sharing its parameters; returns how many were replaced.

    State dicts, parameter objects (and so optimisers built before) and hooks are unchanged.
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d and _kind(child) is not None:
                setattr(parent, name, SmallMapConv2d.from_conv(child))
                replaced += 1
    return replaced

"""The Self-Proliferate (SP) module of SP&A-Net: GhostNet's ghost module without BN or ReLU inside."""

from __future__ import annotations

import math

import torch
from torch import nn

from hqnn.exceptions import ConfigError

__all__ = ["SelfProliferate"]


class SelfProliferate(nn.Module):
    """Make ``out_chs`` feature maps from a few "primary" maps and cheap depthwise copies of them.

    Follows ``Self_Proliferate.py`` of Yfyangd/SPA (spec 1.3.1), itself the ghost module of GhostNet
    (Han et al., CVPR 2020) without the BatchNorm/ReLU that GhostNet puts inside the module:

    1. primary: ``conv_kernel`` x ``conv_kernel`` conv, ``in_chs -> c1 = ceil(out_chs / ratio)``;
    2. cheap: depthwise ``dw_kernel`` x ``dw_kernel`` conv on the primary maps, depth multiplier
       ``ratio - 1``;
    3. output: ``cat([primary, cheap[:, : out_chs - c1]])``. With ``ratio == 1`` only the primary
       maps are returned.

    All convolutions are bias-free, stride 1, "same" padding.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        ratio: ``out_chs / primary channels``; 2 in every SP&A-Net config.
        conv_kernel: kernel of the primary conv (1 in SP&A-Net).
        dw_kernel: kernel of the cheap depthwise conv (3 in SP&A-Net).

    Raises:
        ConfigError: if a channel count or the ratio is not positive, or a kernel is even.

    Example:
        >>> SelfProliferate(16, 48)(torch.zeros(2, 16, 8, 8)).shape
        torch.Size([2, 48, 8, 8])
    """

    def __init__(self, in_chs: int, out_chs: int, ratio: int = 2, conv_kernel: int = 1, dw_kernel: int = 3):
        super().__init__()
        if min(in_chs, out_chs, ratio) < 1:
            raise ConfigError(
                f"SelfProliferate needs positive in_chs, out_chs and ratio; got {in_chs}, {out_chs}, {ratio}"
            )
        if conv_kernel % 2 == 0 or dw_kernel % 2 == 0:
            raise ConfigError(f"SelfProliferate kernels must be odd; got conv {conv_kernel}, dw {dw_kernel}")
        self.out_chs = out_chs
        primary_chs = math.ceil(out_chs / ratio)
        self.primary = nn.Conv2d(in_chs, primary_chs, conv_kernel, padding=conv_kernel // 2, bias=False)
        self.cheap = (
            nn.Conv2d(
                primary_chs,
                primary_chs * (ratio - 1),
                dw_kernel,
                padding=dw_kernel // 2,
                groups=primary_chs,
                bias=False,
            )
            if ratio > 1
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary(x)  # (B, c1, H, W)
        if self.cheap is None:
            return primary
        cheap = self.cheap(primary)  # (B, c1 * (ratio - 1), H, W)
        return torch.cat([primary, cheap], dim=1)[:, : self.out_chs]

"""The SP&A block of SP&A-Net: self-proliferating expansion, optional attention, compression, and a
projection shortcut."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hqnn.layers.attention import make_attention
from hqnn.layers.ghost import SelfProliferate

__all__ = ["SPABlock", "keras_batch_norm"]


def keras_batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with Keras defaults: eps 1e-3, momentum 0.99 (PyTorch ``momentum=0.01``)."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def depthwise_conv(channels: int, kernel: int, stride: int) -> nn.Conv2d:
    """Bias-free depthwise conv (multiplier 1) with symmetric "same" padding ``kernel // 2``."""
    return nn.Conv2d(channels, channels, kernel, stride, padding=kernel // 2, groups=channels, bias=False)


class SPABlock(nn.Module):
    """One SP&A block (``Self_Proliferate_and_Attention.py`` of Yfyangd/SPA, spec 1.3.3).

    Main branch: ``ReLU(BN(SP(exp)(x)))``; if ``stride > 1``, ``ReLU(BN(DWConv_k,stride(.)))``;
    attention; ``BN(SP(out)(.))``. Shortcut: ``BN(conv1x1(BN(DWConv_k,stride(x))))``, a projection
    even when shapes agree (the code does this; the figure's identity skip is not used). Output is
    ``shortcut + main`` with no activation. BatchNorms use Keras defaults (eps 1e-3, momentum 0.01).

    Departure: stride-2 convs pad symmetrically (``k // 2``), so output sizes equal TF's "same" but
    the sampling grid is shifted by one pixel against TF's bottom/right padding.

    Args:
        in_chs: input channels.
        exp_chs: expansion channels.
        out_chs: output channels.
        dw_kernel: depthwise kernel (3 or 5).
        stride: 1 or 2.
        attention: ``None``/``"none"``, ``"code"`` or ``"gc"`` (see :func:`make_attention`).
        ratio: SP and attention ratio (2).

    Example:
        >>> SPABlock(16, 48, 24, dw_kernel=3, stride=2)(torch.zeros(2, 16, 8, 8)).shape
        torch.Size([2, 24, 4, 4])
    """

    def __init__(
        self,
        in_chs: int,
        exp_chs: int,
        out_chs: int,
        dw_kernel: int = 3,
        stride: int = 1,
        attention: str | None = None,
        ratio: int = 2,
    ):
        super().__init__()
        self.expand = SelfProliferate(in_chs, exp_chs, ratio)
        self.expand_bn = keras_batch_norm(exp_chs)
        if stride > 1:
            self.downsample: nn.Module | None = depthwise_conv(exp_chs, dw_kernel, stride)
            self.downsample_bn = keras_batch_norm(exp_chs)
        else:
            self.downsample = None
        self.attention = make_attention(attention, exp_chs, ratio)
        self.compress = SelfProliferate(exp_chs, out_chs, ratio)
        self.compress_bn = keras_batch_norm(out_chs)
        self.shortcut = nn.Sequential(
            depthwise_conv(in_chs, dw_kernel, stride),
            keras_batch_norm(in_chs),
            nn.Conv2d(in_chs, out_chs, 1, bias=False),
            keras_batch_norm(out_chs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.expand_bn(self.expand(x)))  # (B, exp, H, W)
        if self.downsample is not None:
            y = F.relu(self.downsample_bn(self.downsample(y)))  # (B, exp, H/s, W/s)
        y = self.attention(y)
        y = self.compress_bn(self.compress(y))  # (B, out, H/s, W/s)
        return self.shortcut(x) + y

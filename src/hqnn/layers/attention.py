"""Self-attention (SA) blocks of SP&A-Net in their two readings, and a factory that picks one.

The published code and the paper's figure disagree (spec 1.3.2): the code (``Self_Attention.py``) is a
per-pixel gate, the figure is GCNet's global-context block. Both are here; ``make_attention`` maps the
names used by the models (``"code"``, ``"gc"``, ``None``/``"none"``) to them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hqnn.exceptions import ConfigError

__all__ = [
    "ATTENTION_KINDS",
    "ChannelLayerNorm",
    "GlobalContextAttention",
    "PixelGateAttention",
    "keras_hard_sigmoid",
    "make_attention",
]

ATTENTION_KINDS = ("none", "code", "gc")


def keras_hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 2 / TF 2.3 ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``.

    Not :func:`torch.nn.functional.hardsigmoid`, which is ``relu6(x + 3) / 6`` (the Keras 3 form).
    """
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor, at every pixel (Keras ``LayerNormalization``
    on NHWC, default eps 1e-3)."""

    def __init__(self, channels: int, eps: float = 1e-3):
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class PixelGateAttention(nn.Module):
    """SA as published in ``Self_Attention.py`` (spec 1.3.2 A): a per-pixel, per-channel gate.

    ``a = conv1x1_{C->1}(y)``; ``h = ReLU(LN(conv1x1_{1->C/r}(a)))``; ``e = hard_sigmoid(conv1x1_{C/r->C}(h))``;
    output ``y * e``. The published code also multiplies ``a`` by a softmax over an axis of size 1,
    which is identically 1, so that step is left out. No global pooling. Convs are bias-free;
    ``C + C/r + 2 C/r + C^2/r`` parameters.

    Args:
        channels: C, the channels of ``y``.
        ratio: bottleneck ratio r (2 in SP&A-Net).
        ln_eps: LayerNorm eps (Keras default 1e-3).

    Example:
        >>> PixelGateAttention(8)(torch.zeros(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int, ratio: int = 2, ln_eps: float = 1e-3):
        super().__init__()
        hidden = channels // ratio
        self.score = nn.Conv2d(channels, 1, 1, bias=False)
        self.expand = nn.Conv2d(1, hidden, 1, bias=False)
        self.norm = ChannelLayerNorm(hidden, eps=ln_eps)
        self.gate = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        a = self.score(y)  # (B, 1, H, W)
        h = F.relu(self.norm(self.expand(a)))  # (B, C/r, H, W)
        return y * keras_hard_sigmoid(self.gate(h))


class GlobalContextAttention(nn.Module):
    """SA as drawn in the paper's figure ``SA.jpg`` (spec 1.3.2 B): GCNet's global-context block.

    Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond" (2019):
    context ``c = sum_p softmax_p(conv1x1_{C->1}(y)) y_p`` (C x 1 x 1), transform
    ``t = conv1x1_{C/r->C}(ReLU(LN(conv1x1_{C->C/r}(c))))``, output ``y + t`` (broadcast add).
    Bias-free convs, as everywhere in SP&A-Net.

    Args:
        channels: C.
        ratio: bottleneck ratio r (2 in SP&A-Net).
        ln_eps: LayerNorm eps (Keras default 1e-3).

    Example:
        >>> GlobalContextAttention(8)(torch.zeros(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int, ratio: int = 2, ln_eps: float = 1e-3):
        super().__init__()
        hidden = channels // ratio
        self.score = nn.Conv2d(channels, 1, 1, bias=False)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=False)
        self.norm = ChannelLayerNorm(hidden, eps=ln_eps)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        batch, channels = y.shape[:2]
        weights = torch.softmax(self.score(y).flatten(2), dim=-1)  # (B, 1, HW)
        context = torch.bmm(y.flatten(2), weights.transpose(1, 2))  # (B, C, 1)
        context = context.view(batch, channels, 1, 1)
        return y + self.expand(F.relu(self.norm(self.reduce(context))))


def make_attention(kind: str | None, channels: int, ratio: int = 2) -> nn.Module:
    """Build the SA block named ``kind``: ``"code"`` (per-pixel gate), ``"gc"`` (global context), or
    ``None``/``"none"`` (identity).

    Raises:
        ConfigError: for any other name.
    """
    kind = "none" if kind is None else kind
    if kind == "none":
        return nn.Identity()
    if kind == "code":
        return PixelGateAttention(channels, ratio)
    if kind == "gc":
        return GlobalContextAttention(channels, ratio)
    raise ConfigError(f"unknown attention {kind!r}; expected one of {ATTENTION_KINDS} or None")

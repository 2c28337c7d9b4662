"""Keras' default weight initialisation, for models ported from Keras code."""

from __future__ import annotations

from torch import nn

__all__ = ["init_like_keras"]


def init_like_keras(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every Conv2d and Linear inside ``module`` (Keras'
    ``glorot_uniform`` / ``zeros`` defaults; fans follow PyTorch's weight layout, which for depthwise
    kernels differs from Keras')."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

"""HCQDL (Yang & Sun, CVPR 2022) and its classical backbone SP&A-Net (Yang & Sun, IEEE TSM 2021).

Spec: ``seed_models.md`` section 1. Sources: ``Yfyangd/SPA`` (``SPA_Net.py`` and the block files) for
the classical network, ``Yfyangd/CVPR2022`` README figures for the hybrid (the published
``Hybrid_CNN.py`` does not run).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.layers import SPABlock, init_like_keras, keras_batch_norm
from hqnn.models._quantum import AngleEncoder, circuit_layer
from hqnn.models._registry import register_variants
from hqnn.templates.recipes import readout_width

__all__ = ["HCQDL", "SPANet", "SPANetTrunk", "SPANET_BLOCKS"]

# The GhostNet-1.0 table: (dw_kernel, stride, expansion, out, attention in Hybrid_CNN.py's pattern).
SPANET_BLOCKS = (
    (3, 1, 16, 16, False),
    (3, 2, 48, 24, False),
    (3, 1, 72, 24, False),
    (5, 2, 72, 40, True),
    (5, 1, 120, 40, True),
    (3, 2, 240, 80, False),
    (3, 1, 200, 80, False),
    (3, 1, 184, 80, False),
    (3, 1, 184, 80, False),
    (3, 1, 480, 112, True),
    (3, 1, 672, 112, True),
    (5, 2, 672, 160, True),
    (5, 1, 960, 160, False),
    (5, 1, 960, 160, True),
    (5, 1, 960, 160, False),
    (5, 1, 960, 160, True),
)
ATTENTION_PATTERNS = ("all", "hybrid")
STEM_CHS, TRUNK_CHS, HEAD_CHS = 16, 960, 1280


class SPANetTrunk(nn.Module):
    """SP&A-Net up to the global average pool: stem, 16 SP&A blocks, ``conv1x1 160->960``+BN+ReLU.

    Args:
        in_chans: input channels (3 for CIFAR, 1 for wafer maps).
        attention: ``None``/``"none"``, ``"code"`` (per-pixel gate of ``Self_Attention.py``) or
            ``"gc"`` (the paper figure's global-context block).
        attention_pattern: ``"all"`` blocks (``SPA_Net.py``) or ``"hybrid"``, the T/F column of
            :data:`SPANET_BLOCKS` used by ``Hybrid_CNN.py`` (GhostNet's SE pattern).

    Shapes: ``(B, in_chans, H, W) -> (B, 960, H/32, W/32)`` (ceil at each stride-2 step).
    """

    def __init__(self, in_chans: int = 3, attention: str | None = None, attention_pattern: str = "all"):
        super().__init__()
        if attention_pattern not in ATTENTION_PATTERNS:
            raise ConfigError(
                f"unknown attention_pattern {attention_pattern!r}; expected one of {ATTENTION_PATTERNS}"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, STEM_CHS, 3, stride=2, padding=1, bias=False),
            keras_batch_norm(STEM_CHS),
            nn.ReLU(inplace=True),
        )
        blocks = []
        in_chs = STEM_CHS
        for dw_kernel, stride, exp_chs, out_chs, in_hybrid in SPANET_BLOCKS:
            use = attention_pattern == "all" or in_hybrid
            blocks.append(SPABlock(in_chs, exp_chs, out_chs, dw_kernel, stride, attention if use else None))
            in_chs = out_chs
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Sequential(
            nn.Conv2d(in_chs, TRUNK_CHS, 1, bias=False),
            keras_batch_norm(TRUNK_CHS),
            nn.ReLU(inplace=True),
        )
        self.num_features = TRUNK_CHS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_head(self.blocks(self.stem(x)))  # (B, 960, h, w)


class SPANet(nn.Module):
    """SP&A-Net classifier (``SPA_Net.py`` of Yfyangd/SPA; spec 1.3).

    Trunk (:class:`SPANetTrunk`), then GAP, ``conv1x1 960->1280``+BN+ReLU, ``conv1x1 1280->classes``
    (no bias), returning logits (the softmax goes into the loss). Keras defaults throughout: bias-free
    convs and Glorot-uniform init, BatchNorm eps 1e-3 / momentum 0.01, LayerNorm eps 1e-3.

    Departures: stride-2 convs pad symmetrically (grid shifted by one pixel against TF "same");
    ``attention`` is selectable: ``SPA_Net.py`` uses the per-pixel gate in all blocks, the authors'
    trained notebook effectively has none (its SA result is never assigned), the paper draws GCNet.
    Exact trainable counts for 10 classes, 3 channels: none 2,573,112; code/all 5,096,416;
    code/hybrid 4,081,128; gc/all 7,599,320; gc/hybrid 5,577,336.

    Args:
        num_classes: classes.
        in_chans: input channels.
        attention: see :class:`SPANetTrunk`.
        attention_pattern: see :class:`SPANetTrunk`.

    Example:
        >>> SPANet(num_classes=9, in_chans=1)(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 9])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        attention: str | None = None,
        attention_pattern: str = "all",
    ):
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.trunk = SPANetTrunk(in_chans, attention, attention_pattern)
        self.head_expand = nn.Sequential(
            nn.Conv2d(TRUNK_CHS, HEAD_CHS, 1, bias=False),
            keras_batch_norm(HEAD_CHS),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(HEAD_CHS, num_classes, 1, bias=False)
        init_like_keras(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)  # (B, 960, h, w)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(feats, 1)  # (B, 960, 1, 1)
        return self.classifier(self.head_expand(pooled)).flatten(1)  # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class HCQDL(nn.Module):
    """Hybrid classical-quantum SP&A-Net (HCQDL, Yang & Sun CVPR 2022), as drawn in the README figures.

    SP&A-Net trunk -> GAP (960) -> ``Linear(960, n_qubits)`` -> tanh -> circuit on ``n_qubits``
    (``RY(x_i)`` encoding, then the fig. 1 CRX ring ``hcqdl_crx_ring`` or the fig. 2 PQC
    ``hcqdl_figure2``) -> ``<Z_i>`` -> ``Linear(n_qubits, hidden)`` + ReLU -> ``Linear(hidden, classes)``.

    Departures (the published ``Hybrid_CNN.py`` cannot run, spec 1.2/1.4): the wiring follows
    ``images/1.png``, not the code's 2-qubit PennyLane doc example on the logits; the figure's
    "Conv2D 1x1" on the pooled vector is the equivalent ``Linear`` (with bias); the FC layer's
    ``hidden`` width (16) and its ReLU are inferred (the figure draws 3 hidden units and no
    activation); circuit angles start U(0, 2 pi) (PennyLane's KerasLayer would use Glorot); classical
    layers use Keras' default init. ``circuit=None`` is the classical twin: a
    ``Linear(n, n)`` + tanh in place of the circuit, all else equal.

    Args:
        num_classes: classes.
        in_chans: input channels.
        attention: trunk attention (default ``"code"`` in the ``"hybrid"`` pattern, as ``Hybrid_CNN.py``).
        attention_pattern: ``"all"`` or ``"hybrid"``.
        circuit: ``"hcqdl_crx_ring"``, ``"hcqdl_figure2"`` or None (classical twin).
        n_qubits: circuit width (4).
        hidden: width of the FC classifier's hidden layer.
        n_layers: re-uploading layers of ``hcqdl_crx_ring`` (1: the figure's).
        readout: ``"z"`` (the figure's), ``"z+zz"`` or ``"z+zz_neighbours"``
            (:func:`~hqnn.templates.recipes.add_readout`); the twin gets the same output width.
        encoding: ``"tanh"`` (the figure's) or ``"bn_sigmoid"`` (angles in (0, pi), see
            :class:`~hqnn.models._quantum.AngleEncoder`); the twin gets the same.
        fusion: ``"none"`` (the figure's: the circuit's outputs are the classifier's only input) or
            ``"residual"``: ``logits = classifier(circuit(...)) + Linear(960, classes)(pooled)``, a
            residual path past the n-value bottleneck as in the CIFAR-100 quantum head (spec 4.5),
            so every logit still has the circuit's term; the twin gets the same.

    Example:
        >>> HCQDL(num_classes=3, circuit=None)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        attention: str | None = "code",
        attention_pattern: str = "hybrid",
        circuit: str | None = "hcqdl_crx_ring",
        n_qubits: int = 4,
        hidden: int = 16,
        n_layers: int = 1,
        readout: str = "z",
        encoding: str = "tanh",
        fusion: str = "none",
    ):
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.trunk = SPANetTrunk(in_chans, attention, attention_pattern)
        self.pre_quantum = nn.Linear(TRUNK_CHS, n_qubits)
        self.encoder = AngleEncoder(encoding, n_qubits, scale=math.pi)  # the recipes read raw angles
        n_out = readout_width(n_qubits, readout)
        recipe: dict[str, Any] = {"n_qubits": n_qubits}
        if (n_layers, readout) != (1, "z"):  # only hcqdl_crx_ring takes these
            recipe |= {"n_layers": n_layers, "readout": readout}
        self.quantum = circuit_layer(circuit, n_qubits, n_out, **recipe)
        self.classifier = nn.Sequential(
            nn.Linear(n_out, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )
        if fusion not in ("none", "residual"):
            raise ConfigError(f"unknown fusion {fusion!r}; expected 'none' or 'residual'")
        self.skip = nn.Linear(TRUNK_CHS, num_classes) if fusion == "residual" else None
        init_like_keras(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)  # (B, 960, h, w)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(feats, 1).flatten(1)  # (B, 960)
        angles = self.encoder(self.pre_quantum(pooled))  # (B, n_qubits)
        logits = self.classifier(self.quantum(angles))  # (B, classes)
        return logits if self.skip is None else logits + self.skip(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_SPANET_SOURCE = "Yfyangd/SPA SPA_Net.py"
register_variants(
    SPANet,
    {
        "spanet": dict(
            attention=None,
            param_count=2_573_112,
            summary=f"SP&A-Net, no attention (as the trained notebook); {_SPANET_SOURCE}",
        ),
        "spanet_sa_code": dict(
            attention="code", param_count=5_096_416, summary=f"SP&A-Net, code attention in all blocks; {_SPANET_SOURCE}"
        ),
        "spanet_sa_code_hybrid": dict(
            attention="code",
            attention_pattern="hybrid",
            param_count=4_081_128,
            summary="SP&A-Net, code attention in Hybrid_CNN.py's blocks",
        ),
        "spanet_sa_gc": dict(
            attention="gc", param_count=7_599_320, summary="SP&A-Net, GCNet attention (paper figure) in all blocks"
        ),
        "spanet_sa_gc_hybrid": dict(
            attention="gc",
            attention_pattern="hybrid",
            param_count=5_577_336,
            summary="SP&A-Net, GCNet attention in Hybrid_CNN.py's blocks",
        ),
    },
)
register_variants(
    HCQDL,
    {
        "hcqdl": dict(
            circuit="hcqdl_crx_ring", param_count=2_841_066, summary="HCQDL hybrid, CRX-ring PQC (README fig. 1)"
        ),
        "hcqdl_figure2": dict(
            circuit="hcqdl_figure2", param_count=2_841_074, summary="HCQDL hybrid, RX/RY/RZ + CNOT-ladder PQC (fig. 2)"
        ),
        "hcqdl_plus": dict(
            attention=None, n_qubits=8, n_layers=2, readout="z+zz", encoding="bn_sigmoid", hidden=64, fusion="residual",
            param_count=1_349_300,
            summary="recommended HCQDL: no attention, BN+sigmoid angles, 8-qubit 2-layer CRX ring, <Z>+<ZZ>, "
                    "residual fusion",
        ),
        "hcqdl_plus_classical": dict(
            attention=None, n_qubits=8, n_layers=2, readout="z+zz", encoding="bn_sigmoid", hidden=64, fusion="residual",
            circuit=None, param_count=1_349_608,
            summary="classical twin of hcqdl_plus: Linear(8,36)+tanh for the circuit",
        ),
        "hcqdl_classical": dict(
            circuit=None, param_count=2_841_082, summary="classical twin of hcqdl: Linear(4,4)+tanh for the circuit"
        ),
    },
)

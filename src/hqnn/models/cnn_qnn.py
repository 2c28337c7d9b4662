"""The small CNN + 4-qubit QNN of SalahDin Rezk's blog post "Quantum Enhanced Image Classification
with Hybrid Quantum-Classical Neural Networks" (2023).

Spec: ``seed_models.md`` section 3. Source: the blog's markdown only (no code repository exists).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hqnn.exceptions import ConfigError, ShapeError
from hqnn.layers import init_like_keras
from hqnn.models._quantum import AngleEncoder, circuit_layer
from hqnn.models._registry import register_variants
from hqnn.templates.recipes import readout_width

__all__ = ["RezkCNN"]


def _conv_out(size: int) -> int:
    """Spatial size after conv3x3 (valid) -> maxpool 2 -> conv3x3 (valid) -> maxpool 2."""
    return ((size - 2) // 2 - 2) // 2


class RezkCNN(nn.Module):
    """The blog's CNN, plain or with the quantum bottleneck.

    Trunk: ``Conv(32, 3x3, valid)`` + ReLU, maxpool 2, ``Conv(64, 3x3, valid)`` + ReLU, maxpool 2,
    flatten, ``Linear(-> 128)`` + ReLU. Head: with ``n_qubits`` set, ``Linear(128, n_qubits)`` ->
    circuit (``rezk_qnn``: ``RY(pi x_i)``, ``RZ(w0_i)``, CNOT ring, ``RY(w1_i)``, ``<Z_i>``) ->
    ``Linear(n_qubits, classes)``; with ``n_qubits=None``, the blog's plain ``Linear(128, classes)``.

    Departures (the blog's snippets do not run, spec 3.2): the circuit follows ``Dense(128)``
    directly and a ``Linear(n_qubits, classes)`` is added after it (the blog chains it after a 10-way
    softmax and trains 4 outputs on 10 classes); the flatten size comes from ``img_size`` (a Keras
    model builds it from its input shape); circuit angles start U(0, 2 pi) instead of Keras'
    Glorot U(-1, 1). Classical layers use Keras' default init. ``circuit=None`` (with ``n_qubits``
    set) is the classical twin: ``Linear(4, 4)`` + tanh in place of the circuit.

    Args:
        num_classes: classes.
        in_chans: input channels.
        img_size: input height and width (an int for square images), at least 10.
        n_qubits: width of the quantum bottleneck, or None for the plain CNN.
        circuit: ``"rezk_qnn"`` or None (classical twin / plain CNN).
        n_layers: re-uploading layers of the circuit (1: the blog's).
        readout: ``"z"`` (the blog's), ``"z+zz"`` or ``"z+zz_neighbours"`` (see
            :func:`~hqnn.templates.recipes.add_readout`); the twin gets the same output width.
        encoding: how ``Linear(128, n_qubits)`` becomes angles: ``"none"`` (the blog's) or
            ``"bn_sigmoid"`` (see :class:`~hqnn.models._quantum.AngleEncoder`); the twin gets the same.

    Raises:
        ConfigError: if ``img_size`` is too small, or a circuit is named without ``n_qubits``.

    Example:
        >>> RezkCNN(circuit=None, img_size=28, in_chans=1)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int | tuple[int, int] = 32,
        n_qubits: int | None = 4,
        circuit: str | None = "rezk_qnn",
        n_layers: int = 1,
        readout: str = "z",
        encoding: str = "none",
    ):
        super().__init__()
        height, width = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if min(_conv_out(height), _conv_out(width)) < 1:
            raise ConfigError(f"RezkCNN needs img_size of at least 10x10; got {height}x{width}")
        if n_qubits is None and circuit is not None:
            raise ConfigError(f"circuit {circuit!r} needs n_qubits; the plain CNN takes circuit=None")
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, (height, width)
        self.conv1 = nn.Conv2d(in_chans, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.flat_features = 64 * _conv_out(height) * _conv_out(width)
        self.dense = nn.Linear(self.flat_features, 128)
        if n_qubits is None:
            self.head: nn.Module = nn.Linear(128, num_classes)
        else:
            n_out = readout_width(n_qubits, readout)
            recipe: dict[str, Any] = dict(n_qubits=n_qubits, n_layers=n_layers, readout=readout)
            encoder = [AngleEncoder(encoding, n_qubits, scale=1.0)] if encoding != "none" else []  # rezk_qnn: pi x
            self.head = nn.Sequential(
                nn.Linear(128, n_qubits),
                *encoder,
                circuit_layer(circuit, n_qubits, n_out, **recipe),
                nn.Linear(n_out, num_classes),
            )
        init_like_keras(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 32, (H-2)/2, (W-2)/2)
        return F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 64, h, w)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        flat = feats.flatten(1)  # (B, 64 h w)
        if flat.shape[1] != self.flat_features:
            raise ShapeError(
                f"RezkCNN was built for {self.img_size[0]}x{self.img_size[1]} inputs "
                f"({self.flat_features} features after the convs); got {tuple(feats.shape[1:])} feature maps; "
                "pass img_size= for other input sizes"
            )
        return self.head(F.relu(self.dense(flat)))  # (B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_TRUNK_PARAMS = 896 + 18_496 + 295_040  # conv1, conv2, dense for 3x32x32
register_variants(
    RezkCNN,
    {
        "cnn_qnn": dict(
            param_count=_TRUNK_PARAMS + 516 + 8 + 50,
            summary="Rezk blog CNN -> Linear(128,4) -> 4-qubit RY(pi x)/CNOT-ring QNN -> Linear(4,10)",
        ),
        "cnn_qnn_classical": dict(
            circuit=None,
            param_count=_TRUNK_PARAMS + 516 + 20 + 50,
            summary="classical twin of cnn_qnn: Linear(4,4)+tanh for the circuit",
        ),
        "cnn_qnn_plus": dict(
            n_layers=2,
            readout="z+zz",
            encoding="bn_sigmoid",
            param_count=_TRUNK_PARAMS + 516 + 8 + 16 + 110,
            summary="recommended cnn_qnn: BN+sigmoid angles in (0, pi), 2 re-upload layers, <Z>+<ZZ> readout",
        ),
        "cnn_qnn_plus_classical": dict(
            circuit=None,
            n_layers=2,
            readout="z+zz",
            encoding="bn_sigmoid",
            param_count=_TRUNK_PARAMS + 516 + 8 + 50 + 110,
            summary="classical twin of cnn_qnn_plus: Linear(4,10)+tanh for the circuit",
        ),
        "cnn_blog": dict(
            circuit=None, n_qubits=None, param_count=_TRUNK_PARAMS + 1_290, summary="Rezk blog's plain CNN"
        ),
    },
)

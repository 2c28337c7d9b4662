"""The benchmark circuits written by hand in PennyLane, gate for gate as :mod:`hqnn.templates.recipes`.

Each builder returns ``(qfunc, weight_shapes)`` for ``qml.qnn.TorchLayer``: ``qfunc(inputs, **weights)``
reads batched ``inputs (B, n_inputs)`` and the weight blocks under the same names and shapes as the
hqnn circuit, so that one flat weight vector sets both. Written as a PennyLane user would write them
(templates where PennyLane has them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["PENNYLANE_CIRCUITS"]


def _expval_z(qml, n: int) -> list:
    return [qml.expval(qml.PauliZ(i)) for i in range(n)]


def _ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n if n > 2 else n - 1)]


def rezk_qnn(qml, n: int):
    def qfunc(inputs, params):
        for i in range(n):
            qml.RY(math.pi * inputs[..., i], wires=i)
            qml.RZ(params[0, i], wires=i)
        for pair in _ring(n):
            qml.CNOT(wires=pair)
        for i in range(n):
            qml.RY(params[1, i], wires=i)
        return _expval_z(qml, n)

    return qfunc, {"params": (2, n)}


def hcqdl_crx_ring(qml, n: int):
    def qfunc(inputs, crx):
        qml.AngleEmbedding(inputs, wires=range(n), rotation="Y")
        for k, control in enumerate([n - 1] + list(range(n - 2, -1, -1))):
            qml.CRX(crx[k], wires=[control, (control + 1) % n])
        return _expval_z(qml, n)

    return qfunc, {"crx": (n,)}


def strongly_entangling(qml, n: int, n_layers: int):
    def qfunc(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(n), rotation="X")
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return _expval_z(qml, n)

    return qfunc, {"weights": (n_layers, n, 3)}


def sqdr_reupload(qml, n: int, n_blocks: int):
    def qfunc(inputs, weights):
        for b in range(n_blocks):
            for i in range(n):
                qml.Rot(inputs[..., 3 * i], inputs[..., 3 * i + 1], inputs[..., 3 * i + 2], wires=i)
                qml.Rot(weights[b, i, 0], weights[b, i, 1], weights[b, i, 2], wires=i)
            if b < n_blocks - 1:
                for i in range(n - 1):
                    qml.CZ(wires=[i, i + 1])
        return _expval_z(qml, n)

    return qfunc, {"weights": (n_blocks, n, 3)}


def sqdr_reupload_noisy(qml, n: int, n_blocks: int, p_bitflip: float = 0.02, p_depol: float = 0.03,
                        damping_index: int = 0):
    """The SQDR source's ``default.mixed`` circuit; PennyLane channels take one strength, not a batch."""
    def qfunc(inputs, weights):
        for b in range(n_blocks):
            for i in range(n):
                qml.Rot(inputs[..., 3 * i], inputs[..., 3 * i + 1], inputs[..., 3 * i + 2], wires=i)
                qml.Rot(weights[b, i, 0], weights[b, i, 1], weights[b, i, 2], wires=i)
                qml.BitFlip(p_bitflip, wires=i)
                qml.DepolarizingChannel(p_depol, wires=i)
                qml.AmplitudeDamping(torch.sigmoid(inputs[..., 3 * i + damping_index]), wires=i)
            if b < n_blocks - 1:
                for i in range(n - 1):
                    qml.CZ(wires=[i, i + 1])
                qml.BitFlip(p_bitflip, wires=n - 1)
                qml.DepolarizingChannel(p_depol, wires=n - 1)
        return _expval_z(qml, n)

    return qfunc, {"weights": (n_blocks, n, 3)}


# recipe name -> builder(qml, *recipe args)
PENNYLANE_CIRCUITS: dict[str, Callable] = {
    "rezk_qnn": rezk_qnn,
    "hcqdl_crx_ring": hcqdl_crx_ring,
    "diana_qhead": strongly_entangling,
    "strongly_entangling": strongly_entangling,
    "sqdr_reupload": sqdr_reupload,
    "sqdr_reupload_noisy": sqdr_reupload_noisy,
}

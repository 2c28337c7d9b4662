"""SQDR-CNN (Luu et al., PeerJ CS 2026, arXiv 2512.03895): a spiking convolutional encoder feeding a
quantum data re-uploading circuit.

Spec: ``seed_models.md`` section 2. Source: ``luutn2002/SQDR-CNN`` (``sqdr_cnn/model.py``,
``snn_modules.py``, ``pqc_modules.py``, ``tq_pqc_modules.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.layers import IFNeuron, TimeDistributed, WeightedPhaseEncoder
from hqnn.models._quantum import circuit_layer
from hqnn.models._registry import register_variants
from hqnn.templates.recipes import readout_width

__all__ = ["SQDRCNN", "SpikingConvEncoder"]

BN_MOMENTUM = math.sqrt(0.1)  # as published (SpikingJelly layer.BatchNorm2d given momentum 0.1 ** 0.5)
# SQDR-CNN's init names -> QuantumLayer initialisers: "normal" is N(0, 1) truncated to [0, 2 pi].
WEIGHT_INITS = {"normal": "truncated_normal", "uniform": "uniform"}


class SpikingConvEncoder(nn.Module):
    """Multi-step spiking CNN of SQDR-CNN (spec 2.3): three ``conv3x3 (no bias) -> BN -> IF -> maxpool 2``
    stages widening ``C -> 2C -> 4C -> 8C``, then adaptive average pool, ``Linear(8C, out_features)``, IF.

    Conv, BN and pooling see the ``T*B`` samples at once (BN statistics over ``T*B*H*W``); each IF
    neuron integrates over T and starts from rest in every call.

    Args:
        in_chans: C.
        out_features: outputs per time step.
        last_norm: a BatchNorm over the last Linear's outputs (statistics over T*B) before the last
            IF neuron, so that each output neuron's input is spread around the threshold instead of
            never (or always) firing. Not published; ``2 out_features`` more parameters.

    Shapes: ``(T, B, C, H, W) -> (T, B, out_features)`` spikes; ``H, W >= 8``.
    """

    def __init__(self, in_chans: int, out_features: int, last_norm: bool = False):
        super().__init__()
        stages = []
        chs = in_chans
        for _ in range(3):
            stages += [
                TimeDistributed(
                    nn.Sequential(
                        nn.Conv2d(chs, 2 * chs, 3, padding=1, bias=False),
                        nn.BatchNorm2d(2 * chs, momentum=BN_MOMENTUM),
                    )
                ),
                IFNeuron(),
                TimeDistributed(nn.MaxPool2d(2, 2)),
            ]
            chs *= 2
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(chs, out_features)]
        if last_norm:
            head.append(nn.BatchNorm1d(out_features, momentum=BN_MOMENTUM))
        stages += [TimeDistributed(nn.Sequential(*head)), IFNeuron()]
        self.layers = nn.Sequential(*stages)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.layers(spikes)  # (T, B, out_features)


class SQDRCNN(nn.Module):
    """SQDR-CNN: weighted-phase spikes -> spiking CNN -> firing rates -> re-uploading PQC -> MLP.

    ``x * 255/256`` (so 8-bit pixels k/255 become exact binary fractions k/256) -> weighted-phase
    encoding over ``time_steps`` -> :class:`SpikingConvEncoder` -> mean over T, ``(B, 3 n_wires)``
    firing rates -> ``sqdr_reupload`` circuit (each block: per wire ``Rot(rates[3i:3i+3])`` then a
    trainable ``Rot``; CZ entangler between blocks) -> ``<Z_i>`` ``(B, n_wires)`` ->
    ``Linear(n_wires, classes)`` -> ReLU. Inputs must lie in ``[0, 1]`` (no normalisation).

    Departures: the SNN's last Linear has ``3 n_wires`` outputs (the published 9 crash the circuit,
    which reads 27 angles); the neurons are stateless between calls, where the original needs
    ``reset_net`` after every batch; the circuit is noiseless by default (the original defaults to
    its noisy density-matrix circuit, which ``noise=True`` selects: ``sqdr_reupload_noisy``); the
    final ReLU, published but unusual on logits, can be switched off. ``circuit=None`` is the classical twin:
    ``Linear(27, 9)`` + tanh in place of the circuit. 803 parameters for ``in_chans=1``, 10 classes
    (SNN 649 + PQC 54 + MLP 100).

    Args:
        num_classes: classes.
        in_chans: input channels.
        time_steps: T (the README example uses 10).
        n_wires: qubits (9).
        n_blocks: re-upload blocks (2).
        entangler: ``"chain"`` (PennyLane code) or ``"ring"`` (TorchQuantum code, the paper).
        noise: run the published noisy circuit (bit flip 0.02, depolarising 0.03, amplitude damping
            ``sigmoid(rates[3i + r])`` on every wire and block; density-matrix simulation, CZ chain only).
        damping_index: with ``noise``, r in {0, 1, 2} or ``"random"`` (redrawn per sample and call, as
            published).
        weight_init: circuit angles ``"normal"`` (trunc_normal(0, 1, a=0, b=2 pi), published default)
            or ``"uniform"`` U(0, 2 pi).
        final_relu: apply the published ReLU to the logits.
        circuit: ``"sqdr_reupload"`` or None (classical twin).
        readout: ``"z"`` (published), ``"z+zz"`` or ``"z+zz_neighbours"``
            (:func:`~hqnn.templates.recipes.add_readout`); the twin gets the same output width.
        input_scale: the firing rates (in [0, 1]) are multiplied by this before they become Rot
            angles (published: 1, i.e. angles in [0, 1] rad; π uses the half turn).
        last_norm: see :class:`SpikingConvEncoder` (not published).

    Raises:
        ConfigError: for an unknown ``weight_init``, or ``noise`` with the ring entangler or the twin.

    Example:
        >>> SQDRCNN(circuit=None, time_steps=4)(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        time_steps: int = 10,
        n_wires: int = 9,
        n_blocks: int = 2,
        entangler: str = "chain",
        noise: bool = False,
        damping_index: int | str = "random",
        weight_init: str = "normal",
        final_relu: bool = True,
        circuit: str | None = "sqdr_reupload",
        readout: str = "z",
        input_scale: float = 1.0,
        last_norm: bool = False,
    ):
        super().__init__()
        if weight_init not in WEIGHT_INITS:
            raise ConfigError(f"unknown weight_init {weight_init!r}; expected one of {tuple(WEIGHT_INITS)}")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.final_relu = final_relu
        self.encoder = WeightedPhaseEncoder(time_steps)
        self.input_scale = input_scale
        self.snn = SpikingConvEncoder(in_chans, 3 * n_wires, last_norm)
        if noise and (circuit != "sqdr_reupload" or entangler != "chain"):
            raise ConfigError(
                "noise=True runs the published noisy sqdr_reupload circuit (CZ chain); "
                f"got circuit={circuit!r}, entangler={entangler!r}"
            )
        recipe: dict[str, Any] = dict(n_qubits=n_wires, n_blocks=n_blocks)
        if readout != "z":
            recipe["readout"] = readout
        n_out = readout_width(n_wires, readout)
        if noise:
            circuit, recipe["damping_index"] = "sqdr_reupload_noisy", damping_index
        else:
            recipe["entangler"] = entangler
        self.quantum = circuit_layer(circuit, 3 * n_wires, n_out, init=WEIGHT_INITS[weight_init], **recipe)
        self.classifier = nn.Linear(n_out, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.encoder(x * (255 / 256))  # (T, B, C, H, W)
        return self.snn(spikes).mean(0)  # (B, 3 n_wires) firing rates

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.quantum(self.input_scale * feats))  # (B, classes)
        return torch.relu(logits) if self.final_relu else logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


register_variants(
    SQDRCNN,
    {
        "sqdr_cnn": dict(
            param_count=803,
            input_size=(1, 28, 28),
            summary="SQDR-CNN, spiking CNN + 9-qubit 2-block re-upload PQC (luutn2002/SQDR-CNN)",
        ),
        "sqdr_cnn_noisy": dict(
            noise=True,
            param_count=803,
            input_size=(1, 28, 28),
            summary="sqdr_cnn with the published noise (bit flip, depolarising, data-dependent damping)",
        ),
        "sqdr_cnn_plus": dict(
            final_relu=False, input_scale=math.pi, last_norm=True,
            param_count=857,
            input_size=(1, 28, 28),
            summary="recommended SQDR-CNN: BN before the last IF neuron, rates x pi as angles, no ReLU on the logits",
        ),
        "sqdr_cnn_plus_noisy": dict(
            noise=True, final_relu=False, input_scale=math.pi, last_norm=True,
            param_count=857,
            input_size=(1, 28, 28),
            summary="sqdr_cnn_plus with the published noise (bit flip, depolarising, data-dependent damping)",
        ),
        "sqdr_cnn_plus_classical": dict(
            circuit=None, final_relu=False, input_scale=math.pi, last_norm=True,
            param_count=1_055,
            input_size=(1, 28, 28),
            summary="classical twin of sqdr_cnn_plus: Linear(27,9)+tanh for the circuit",
        ),
        "sqdr_cnn_classical": dict(
            circuit=None,
            param_count=1_001,
            input_size=(1, 28, 28),
            summary="classical twin of sqdr_cnn: Linear(27,9)+tanh for the circuit",
        ),
    },
)

"""ResNet-34 with a last-layer quantum head fused into the classical logits by a learned gate
(``cifar100_hybrid_Qhead.py`` of Diana1800/cifar100-quantum-hybrid-resnet, spec 4.5)."""

from __future__ import annotations

import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.models._quantum import circuit_layer
from hqnn.models._registry import register_variants
from hqnn.models.resnet import ResNet

__all__ = ["PHASE_ALPHA_RAW", "ResNetQHead"]

# alpha_raw at the start of each training phase: A warms up the classical network with the quantum
# branch switched off (sigmoid(-20) ~ 2e-9) and frozen; B opens the gate at alpha = 0.5.
PHASE_ALPHA_RAW = {"A": -20.0, "B": 0.0}


class ResNetQHead(ResNet):
    """ResNet with a quantum branch beside the classifier: ``logits = fc(f) + sigmoid(alpha_raw) post_q(q(pre_q(f)))``.

    ``f`` is the pooled 512-d feature; ``pre_q = Linear(512, n_qubits)`` (no activation, no angle
    scaling); ``q`` = ``diana_qhead``: ``RX(x_i)`` angle embedding, ``StronglyEntanglingLayers``
    ``(n_layers, n_qubits, 3)`` initialised U(0, 2 pi), ``<Z_i>``; ``post_q = Linear(n_qubits, classes)``;
    ``alpha_raw`` a scalar Parameter starting at -20. :meth:`set_phase` reproduces the two-phase
    schedule. ``circuit=None`` is the classical twin: ``Linear(4, 4)`` + tanh in place of the circuit.

    Departures: none in the model (the original runs the circuit on CPU via PennyLane-Lightning
    adjoint; here it is simulated on the model's device).

    Args:
        depth: 18 or 34.
        num_classes: classes.
        in_chans: input channels.
        stem: ``"imagenet"`` or ``"small"``.
        circuit: ``"diana_qhead"`` or None (classical twin).
        n_qubits: width of the quantum branch (4).
        n_layers: entangling layers (2).

    Example:
        >>> model = ResNetQHead(18, num_classes=10, stem="small", circuit=None)
        >>> trainable = model.set_phase("A")
    """

    def __init__(
        self,
        depth: int = 34,
        num_classes: int = 100,
        in_chans: int = 3,
        stem: str = "imagenet",
        circuit: str | None = "diana_qhead",
        n_qubits: int = 4,
        n_layers: int = 2,
    ):
        super().__init__(depth, num_classes, in_chans, stem)
        self.pre_q = nn.Linear(self.num_features, n_qubits)
        self.q_head = circuit_layer(circuit, n_qubits, n_qubits, n_qubits=n_qubits, n_layers=n_layers)
        self.post_q = nn.Linear(n_qubits, num_classes)
        self.alpha_raw = nn.Parameter(torch.tensor(PHASE_ALPHA_RAW["A"]))

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(feats)  # (B, 512)
        logits_q = self.post_q(self.q_head(self.pre_q(pooled)))  # (B, classes)
        return self.fc(pooled) + torch.sigmoid(self.alpha_raw) * logits_q

    def _quantum_branch(self) -> list[nn.Parameter]:
        return [self.alpha_raw, *self.pre_q.parameters(), *self.q_head.parameters(), *self.post_q.parameters()]

    def phase_parameters(self, phase: str) -> list[nn.Parameter]:
        """The parameters trained in ``phase``: ``"A"`` all but the quantum branch and ``alpha_raw``;
        ``"B"`` all.

        Raises:
            ConfigError: for another phase.
        """
        if phase not in PHASE_ALPHA_RAW:
            raise ConfigError(f"unknown training phase {phase!r}; expected one of {tuple(PHASE_ALPHA_RAW)}")
        if phase == "B":
            return list(self.parameters())
        frozen = {id(p) for p in self._quantum_branch()}
        return [p for p in self.parameters() if id(p) not in frozen]

    def set_phase(self, phase: str) -> list[nn.Parameter]:
        """Enter ``phase``: reset ``alpha_raw`` (A: -20, B: 0) and freeze everything outside
        :meth:`phase_parameters`. Returns those parameters, for a fresh optimiser."""
        trainable = self.phase_parameters(phase)
        keep = {id(p) for p in trainable}
        with torch.no_grad():
            self.alpha_raw.fill_(PHASE_ALPHA_RAW[phase])
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        return trainable


register_variants(
    ResNetQHead,
    {
        "resnet34_qhead": dict(
            param_count=21_338_549, summary="ResNet-34 + gated 4-qubit SEL quantum head (Diana1800 hybrid_Qhead)"
        ),
        "resnet34_qhead_classical": dict(
            circuit=None,
            param_count=21_338_545,
            summary="classical twin of resnet34_qhead: Linear(4,4)+tanh for the circuit",
        ),
    },
)

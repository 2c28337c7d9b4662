"""Embeddings: how input features become gate angles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hqnn.exceptions import ConfigError, ShapeError
from hqnn.sim.circuit import AngleLike
from hqnn.templates._common import wire_list

__all__ = ["AngleEmbedding"]

_ROTATIONS = {"X": "RX", "Y": "RY", "Z": "RZ"}


@dataclass(frozen=True)
class AngleEmbedding:
    """One rotation per feature, PennyLane's ``AngleEmbedding``: R(scale * x_i) on ``wires[i]``.

    Args:
        features: symbolic inputs (``c.inputs`` or a slice of it), at most one per wire.
        wires: target wires (all by default).
        rotation: "X" (default, as in PennyLane), "Y" or "Z".
        scale: multiplies every feature (e.g. ``math.pi`` for RY(pi x)).
    """

    features: Iterable[AngleLike]
    wires: Sequence[int] | None = None
    rotation: str = "X"
    scale: float = 1.0

    def __call__(self, circuit) -> None:
        if self.rotation.upper() not in _ROTATIONS:
            raise ConfigError(f"AngleEmbedding rotation must be one of X, Y, Z; got {self.rotation!r}")
        wires = wire_list(self.wires, circuit)
        features = list(self.features)
        if len(features) > len(wires):
            raise ShapeError(f"AngleEmbedding takes at most {len(wires)} features for {len(wires)} wires; "
                             f"got {len(features)}")
        gate = _ROTATIONS[self.rotation.upper()]
        for feature, wire in zip(features, wires):
            circuit.gate(gate, wire, feature * self.scale)

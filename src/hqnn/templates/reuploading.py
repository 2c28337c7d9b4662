"""Data re-uploading: the inputs are encoded again before every trainable block.

Pérez-Salinas et al., "Data re-uploading for a universal quantum classifier", Quantum 4, 226 (2020).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hqnn.exceptions import ShapeError
from hqnn.sim.circuit import AngleLike, ParamArray
from hqnn.templates._common import check_count, check_shape, wire_list
from hqnn.templates.entanglers import Entangler

__all__ = ["DataReuploading"]


@dataclass(frozen=True)
class DataReuploading:
    """Blocks of [Rot(x[3i], x[3i+1], x[3i+2]) then Rot(w[b, i, :]) on every wire i] + an entangler.

    Args:
        features: symbolic inputs, 3 per wire (``3 * M``).
        weights: symbolic weights of shape ``(n_blocks, M, 3)``.
        wires: the M wires (all by default).
        pattern, gate: the entangler after each block (a CZ chain by default).
        entangle_last: also entangle after the last block.
    """

    features: Iterable[AngleLike]
    weights: ParamArray
    wires: Sequence[int] | None = None
    pattern: str = "chain"
    gate: str = "CZ"
    entangle_last: bool = False

    @staticmethod
    def shape(n_blocks: int, n_wires: int) -> tuple[int, int, int]:
        return (n_blocks, n_wires, 3)

    def __call__(self, circuit) -> None:
        wires = wire_list(self.wires, circuit)
        m = len(wires)
        check_count("DataReuploading", m, 1)
        features = list(self.features)
        if len(features) != 3 * m:
            raise ShapeError(f"DataReuploading reads 3 features per wire ({3 * m} for {m} wires); got {len(features)}")
        n_blocks = self.weights.shape[0] if len(self.weights.shape) == 3 else -1
        check_shape("DataReuploading", self.weights.shape, (max(n_blocks, 0), m, 3), f"for {m} wires")
        for b in range(n_blocks):
            for i, wire in enumerate(wires):
                circuit.rot(features[3 * i], features[3 * i + 1], features[3 * i + 2], wire)
                circuit.rot(self.weights[b, i, 0], self.weights[b, i, 1], self.weights[b, i, 2], wire)
            if b < n_blocks - 1 or self.entangle_last:
                Entangler(self.pattern, self.gate, wires)(circuit)

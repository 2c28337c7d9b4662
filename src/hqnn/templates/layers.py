"""Trainable layer templates with PennyLane's names, conventions and ``shape()``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hqnn.exceptions import ConfigError
from hqnn.sim.circuit import ParamArray
from hqnn.sim.gates import gate_spec
from hqnn.templates._common import check_count, check_shape, wire_list

__all__ = ["StronglyEntanglingLayers", "BasicEntanglerLayers"]


@dataclass(frozen=True)
class StronglyEntanglingLayers:
    """PennyLane's StronglyEntanglingLayers: per layer, Rot(w[l,i,0], w[l,i,1], w[l,i,2]) on every wire,
    then the imprimitive on (wires[i], wires[(i + r) % M]) for i = 0..M-1.

    Default ranges r_l = (l mod (M-1)) + 1 (none on one wire). Schuld et al., arXiv:1804.00633.

    Args:
        weights: symbolic weights of shape ``(L, M, 3)``.
        wires: the M wires (all by default).
        ranges: one range per layer, each not a multiple of M.
        imprimitive: the two-qubit gate (fixed), CNOT by default.
    """

    weights: ParamArray
    wires: Sequence[int] | None = None
    ranges: Sequence[int] | None = None
    imprimitive: str = "CNOT"

    @staticmethod
    def shape(n_layers: int, n_wires: int) -> tuple[int, int, int]:
        return (n_layers, n_wires, 3)

    def __call__(self, circuit) -> None:
        wires = wire_list(self.wires, circuit)
        m = len(wires)
        check_count("StronglyEntanglingLayers", m, 1)
        n_layers = self.weights.shape[0] if len(self.weights.shape) == 3 else -1
        check_shape("StronglyEntanglingLayers", self.weights.shape, (max(n_layers, 0), m, 3), f"for {m} wires")
        if self.ranges is None:
            ranges = [(layer % (m - 1)) + 1 if m > 1 else 0 for layer in range(n_layers)]
        else:
            ranges = list(self.ranges)
            if len(ranges) != n_layers or any(m > 1 and r % m == 0 for r in ranges):
                raise ConfigError(f"ranges must be {n_layers} integers, none a multiple of {m}; got {ranges}")
        spec = gate_spec(self.imprimitive)
        if spec.n_params or spec.n_wires != 2:
            raise ConfigError(f"imprimitive must be a fixed two-qubit gate such as CNOT or CZ; "
                              f"got {self.imprimitive!r}")
        for layer in range(n_layers):
            for i, wire in enumerate(wires):
                circuit.rot(self.weights[layer, i, 0], self.weights[layer, i, 1], self.weights[layer, i, 2], wire)
            if m > 1:
                for i in range(m):
                    circuit.gate(spec.name, (wires[i], wires[(i + ranges[layer]) % m]))


@dataclass(frozen=True)
class BasicEntanglerLayers:
    """PennyLane's BasicEntanglerLayers: per layer, rotation(w[l, i]) on every wire, then a CNOT ring
    (a single CNOT on two wires, none on one).

    Args:
        weights: symbolic weights of shape ``(L, M)``.
        wires: the M wires (all by default).
        rotation: a one-angle single-qubit gate, RX by default.
    """

    weights: ParamArray
    wires: Sequence[int] | None = None
    rotation: str = "RX"

    @staticmethod
    def shape(n_layers: int, n_wires: int) -> tuple[int, int]:
        return (n_layers, n_wires)

    def __call__(self, circuit) -> None:
        from hqnn.templates.entanglers import Entangler

        wires = wire_list(self.wires, circuit)
        m = len(wires)
        check_count("BasicEntanglerLayers", m, 1)
        n_layers = self.weights.shape[0] if len(self.weights.shape) == 2 else -1
        check_shape("BasicEntanglerLayers", self.weights.shape, (max(n_layers, 0), m), f"for {m} wires")
        spec = gate_spec(self.rotation)
        if spec.n_params != 1 or spec.n_wires != 1:
            raise ConfigError(f"rotation must be a one-angle single-qubit gate such as RX; got {self.rotation!r}")
        for layer in range(n_layers):
            for i, wire in enumerate(wires):
                circuit.gate(spec.name, wire, self.weights[layer, i])
            Entangler("ring", "CNOT", wires)(circuit)

"""Entangling patterns: which wire pairs a layer of two-qubit gates acts on, and the layer itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hqnn.exceptions import ConfigError
from hqnn.sim.circuit import ParamArray
from hqnn.sim.gates import gate_spec
from hqnn.templates._common import check_shape, wire_list

__all__ = ["PATTERNS", "entangler_pairs", "Entangler"]

PATTERNS = ("chain", "ring", "star", "all_to_all")


def entangler_pairs(pattern: str, wires: Sequence[int]) -> list[tuple[int, int]]:
    """(control, target) pairs of a pattern over ``wires``.

    chain: (w0,w1), (w1,w2), ...; ring: the chain plus (w_last, w0) when there are more than two
    wires (PennyLane's "ring"); star: (w0, wi) for every other wire; all_to_all: (wi, wj), i < j.

    Example:
        >>> entangler_pairs("ring", [0, 1, 2])
        [(0, 1), (1, 2), (2, 0)]
    """
    w = list(wires)
    n = len(w)
    if pattern == "chain":
        return [(w[i], w[i + 1]) for i in range(n - 1)]
    if pattern == "ring":
        return [(w[i], w[(i + 1) % n]) for i in range(n if n > 2 else n - 1)]
    if pattern == "star":
        return [(w[0], w[i]) for i in range(1, n)]
    if pattern == "all_to_all":
        return [(w[i], w[j]) for i in range(n) for j in range(i + 1, n)]
    raise ConfigError(f"unknown entangling pattern {pattern!r}; valid: {', '.join(PATTERNS)}")


@dataclass(frozen=True)
class Entangler:
    """A layer of two-qubit gates over a pattern: fixed (CNOT, CZ, ...) or controlled rotations.

    Args:
        pattern: "chain", "ring", "star" or "all_to_all".
        gate: a two-qubit gate name: CNOT, CZ, CY, SWAP, or a one-angle one (CRX, CRY, CRZ, IsingZZ, ...).
        wires: the wires (all by default).
        weights: for gates with an angle, one weight per pair, shape ``Entangler.shape(pattern, n)``.
    """

    pattern: str = "ring"
    gate: str = "CNOT"
    wires: Sequence[int] | None = None
    weights: ParamArray | None = None

    @staticmethod
    def shape(pattern: str, n_wires: int) -> tuple[int]:
        return (len(entangler_pairs(pattern, range(n_wires))),)

    def __call__(self, circuit) -> None:
        wires = wire_list(self.wires, circuit)
        pairs = entangler_pairs(self.pattern, wires)
        spec = gate_spec(self.gate)
        if spec.n_params:
            if self.weights is None:
                raise ConfigError(f"{spec.name} entangler needs weights of shape {(len(pairs),)}")
            check_shape("Entangler", self.weights.shape, (len(pairs),), f"for {self.pattern} on {len(wires)} wires")
            for k, pair in enumerate(pairs):
                circuit.gate(spec.name, pair, self.weights[k])
        else:
            for pair in pairs:
                circuit.gate(spec.name, pair)

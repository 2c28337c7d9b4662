"""Resource estimates of a circuit: qubits, depth, gate counts, parameters, coupling-map fit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations

from hqnn.exceptions import WireError
from hqnn.sim.circuit import Circuit

__all__ = ["Resources", "resources"]


@dataclass(frozen=True)
class Resources:
    """What a circuit needs (hqnn gates, before any decomposition).

    Attributes:
        n_qubits: wires.
        depth: number of ASAP layers (each gate goes one layer after the latest gate on its wires).
        gate_counts: gate name -> count.
        n_two_qubit_gates: gates on exactly two wires.
        n_weights, n_inputs: trainable weights and input features.
        fits: every multi-qubit gate's wire pairs are coupling-map edges (undirected); None without a map.
        offending_pairs: the (sorted, distinct) wire pairs that are not edges.
    """

    n_qubits: int
    depth: int
    gate_counts: dict[str, int]
    n_two_qubit_gates: int
    n_weights: int
    n_inputs: int
    fits: bool | None = None
    offending_pairs: tuple[tuple[int, int], ...] = field(default=())

    @property
    def n_gates(self) -> int:
        return sum(self.gate_counts.values())


def resources(circuit: Circuit, coupling_map: Iterable[tuple[int, int]] | None = None) -> Resources:
    """Count what ``circuit`` needs and check it against a coupling map.

    Args:
        circuit: the circuit.
        coupling_map: hardware edges as wire pairs (direction ignored); None skips the check.

    Returns:
        a :class:`Resources`.

    Raises:
        WireError: a coupling-map entry that is not a pair of distinct wires.

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> r = resources(rezk_qnn(4), [(0, 1), (1, 2), (2, 3)])
        >>> r.n_two_qubit_gates, r.fits, r.offending_pairs
        (4, False, ((0, 3),))
    """
    layer_of_wire = [0] * circuit.n_qubits
    for op in circuit.ops:
        layer = 1 + max(layer_of_wire[w] for w in op.wires)
        for w in op.wires:
            layer_of_wire[w] = layer
    fits: bool | None = None
    offending: tuple[tuple[int, int], ...] = ()
    if coupling_map is not None:
        edges = set()
        for pair in coupling_map:
            edge = tuple(int(w) for w in pair)
            if len(edge) != 2 or edge[0] == edge[1]:
                raise WireError(f"a coupling-map edge is a pair of distinct wires; got {edge}")
            edges.add(frozenset(edge))
        bad = {(min(p), max(p)) for op in circuit.ops for p in combinations(op.wires, 2) if frozenset(p) not in edges}
        fits, offending = not bad, tuple(sorted(bad))
    return Resources(
        n_qubits=circuit.n_qubits,
        depth=max(layer_of_wire, default=0),
        gate_counts=dict(Counter(op.name for op in circuit.ops)),
        n_two_qubit_gates=sum(len(op.wires) == 2 for op in circuit.ops),
        n_weights=circuit.n_weights,
        n_inputs=circuit.n_inputs,
        fits=fits,
        offending_pairs=offending,
    )

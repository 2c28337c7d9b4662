"""The circuits of the four seed systems, each in a few lines (``../shared/specs/seed_models.md``).

Every function returns a fresh :class:`~hqnn.sim.Circuit` reading its inputs as the source does
and measuring ⟨Z⟩ on every wire unless stated otherwise.
"""

from __future__ import annotations

import itertools
import math

from hqnn.exceptions import ConfigError
from hqnn.sim.circuit import Circuit
from hqnn.templates.embeddings import AngleEmbedding
from hqnn.templates.entanglers import Entangler
from hqnn.templates.layers import StronglyEntanglingLayers
from hqnn.templates.reuploading import DataReuploading

__all__ = [
    "RECIPES",
    "READOUTS",
    "add_readout",
    "readout_width",
    "rezk_qnn",
    "hcqdl_crx_ring",
    "hcqdl_figure2",
    "hcqdl_code_qnode",
    "sqdr_reupload",
    "diana_edge",
    "diana_texture",
    "diana_qhead",
    "strongly_entangling",
]


READOUTS = ("z", "z+zz", "z+zz_neighbours")


def add_readout(c: Circuit, readout: str = "z") -> Circuit:
    """Measure ``c``: ``"z"`` gives ⟨Z_i⟩ on every wire (n outputs, the seed circuits' readout);
    ``"z+zz"`` adds ⟨Z_i Z_j⟩ for every pair i < j (n + n(n-1)/2 outputs); ``"z+zz_neighbours"``
    adds ⟨Z_i Z_{i+1}⟩ only (2n - 1 outputs). Two-body words widen the n-value bottleneck between
    the circuit and the classifier at no extra simulation cost (one pass gives every word).

    Raises:
        ConfigError: an unknown readout.
    """
    readout_width(c.n_qubits, readout)  # validates the name
    c.expval_z()
    n = c.n_qubits
    pairs = itertools.combinations(range(n), 2) if readout == "z+zz" else zip(range(n - 1), range(1, n))
    for i, j in pairs if readout != "z" else ():
        c.expval(f"Z{i} Z{j}")
    return c


def readout_width(n_qubits: int, readout: str = "z") -> int:
    """Number of outputs :func:`add_readout` gives on ``n_qubits`` wires.

    Raises:
        ConfigError: an unknown readout.
    """
    if readout not in READOUTS:
        raise ConfigError(f"unknown readout {readout!r}; expected one of {', '.join(READOUTS)}")
    pairs = {"z": 0, "z+zz": n_qubits * (n_qubits - 1) // 2, "z+zz_neighbours": n_qubits - 1}[readout]
    return n_qubits + pairs


def _check_layers(n_layers: int) -> None:
    if n_layers < 1:
        raise ConfigError(f"n_layers must be at least 1; got {n_layers}")


def rezk_qnn(n_qubits: int = 4, n_layers: int = 1, readout: str = "z") -> Circuit:
    """Rezk's blog QNN: RY(π x_i), RZ(w[0, i]); CNOT ring; RY(w[1, i]); ⟨Z_i⟩. 2·n weights.

    ``n_layers > 1`` re-uploads: the block (encoding included) repeats with its own weights
    (``params`` has shape ``(2 n_layers, n)``); ``readout`` as in :func:`add_readout`. The defaults
    are the blog's circuit.
    """
    _check_layers(n_layers)
    c = Circuit(n_qubits, n_inputs=n_qubits)
    w = c.add_weights("params", (2 * n_layers, n_qubits))
    for layer in range(n_layers):
        for i in range(n_qubits):
            c.ry(math.pi * c.inputs[i], i)
            c.rz(w[2 * layer, i], i)
        c.add(Entangler("ring", "CNOT"))
        for i in range(n_qubits):
            c.ry(w[2 * layer + 1, i], i)
    return add_readout(c, readout)


def hcqdl_crx_ring(n_qubits: int = 4, n_layers: int = 1, readout: str = "z") -> Circuit:
    """HCQDL paper figure 1: RY(x_i); CRX ring (q_{n-1}→q_0, q_{n-2}→q_{n-1}, ..., q_0→q_1); ⟨Z_i⟩.

    The ring order follows the figure (the first half of Sim et al. 2019 circuit 14); n weights.
    ``n_layers > 1`` re-uploads (RY(x_i) then a CRX ring with its own weights, repeated; ``crx`` has
    shape ``(n_layers n,)``); ``readout`` as in :func:`add_readout`. The defaults are the figure's.
    """
    _check_layers(n_layers)
    c = Circuit(n_qubits, n_inputs=n_qubits)
    w = c.add_weights("crx", (n_layers * n_qubits,))
    order = [n_qubits - 1] + list(range(n_qubits - 2, -1, -1))
    for layer in range(n_layers):
        c.add(AngleEmbedding(c.inputs, rotation="Y"))
        for k, control in enumerate(order):
            c.crx(w[layer * n_qubits + k], control, (control + 1) % n_qubits)
    return add_readout(c, readout)


def hcqdl_figure2(n_qubits: int = 4) -> Circuit:
    """HCQDL README figure 2 PQC: RY(x_i) encoding [inferred: the figure omits the encoding gate];
    RX(θ); CNOT ladder; RY(θ); CNOT ladder; RZ(θ); ⟨Z_i⟩. 3·n weights (the RZ layer does not change ⟨Z⟩)."""
    c = Circuit(n_qubits, n_inputs=n_qubits)
    c.add(AngleEmbedding(c.inputs, rotation="Y"))
    w = c.add_weights("theta", (3, n_qubits))
    for layer, gate in enumerate(("RX", "RY", "RZ")):
        for i in range(n_qubits):
            c.gate(gate, i, w[layer, i])
        if layer < 2:
            c.add(Entangler("chain", "CNOT"))
    return c.expval_z()


def hcqdl_code_qnode() -> Circuit:
    """HCQDL repository's quantum_circuit.py (PennyLane's KerasLayer example): RX(x0), RX(x1);
    Rot(w0) on wire 0; RY(w1) on wire 1; CNOT(0, 1); ⟨Z0⟩, ⟨Z1⟩. Weights: w0 (3,), w1 (1,)."""
    c = Circuit(2, n_inputs=2)
    c.add(AngleEmbedding(c.inputs, rotation="X"))
    w0, w1 = c.add_weights("w0", (3,)), c.add_weights("w1", (1,))
    c.rot(w0[0], w0[1], w0[2], 0)
    c.ry(w1[0], 1)
    c.cnot(0, 1)
    return c.expval_z()


def sqdr_reupload(n_qubits: int = 9, n_blocks: int = 2, entangler: str = "chain", readout: str = "z") -> Circuit:
    """SQDR-CNN's data re-uploading PQC (noiseless), 3 inputs per qubit (the 27-input fix).

    ``entangler="chain"``: CZ chain between blocks (the PennyLane code); ``"ring"``: CZ ring after
    every block, the last included (the TorchQuantum code and the paper). ``readout`` as in
    :func:`add_readout` (the published circuit: ``"z"``).
    """
    c = Circuit(n_qubits, n_inputs=3 * n_qubits)
    w = c.add_weights("weights", DataReuploading.shape(n_blocks, n_qubits))
    ring = entangler == "ring"
    c.add(DataReuploading(c.inputs, w, pattern=entangler, gate="CZ", entangle_last=ring))
    return add_readout(c, readout)


def _diana_edge_gates(c: Circuit, depth: int) -> None:
    n = c.n_qubits
    x = c.inputs
    for i in range(n):
        c.ry(x[i], i)
    for _ in range(depth):
        c.add(Entangler("ring", "CNOT"))
    for i in range(n):
        c.ry(0.5 * x[i], i)
        c.rz(0.5 * x[(i + 1) % n], i)


def diana_edge(n_qubits: int = 4, depth: int = 1) -> Circuit:
    """CIFAR-100 study's fixed "edge" feature map: RY(v_i); CNOT ring × depth; RY(v_i/2), RZ(v_{i+1}/2)."""
    c = Circuit(n_qubits, n_inputs=n_qubits)
    _diana_edge_gates(c, depth)
    return c.expval_z()


def diana_texture(n_qubits: int = 4) -> Circuit:
    """CIFAR-100 study's fixed "texture" feature map: H, RX(v_i); CNOT star from wire 0; RY(0.7 v_i); CZ chain."""
    c = Circuit(n_qubits, n_inputs=n_qubits)
    for i in range(n_qubits):
        c.h(i)
        c.rx(c.inputs[i], i)
    c.add(Entangler("star", "CNOT"))
    for i in range(n_qubits):
        c.ry(0.7 * c.inputs[i], i)
    c.add(Entangler("chain", "CZ"))
    return c.expval_z()


def diana_qhead(n_qubits: int = 4, n_layers: int = 2) -> Circuit:
    """CIFAR-100 study's quantum head: AngleEmbedding (RX) + StronglyEntanglingLayers (L, n, 3)."""
    return strongly_entangling(n_qubits, n_layers)


def strongly_entangling(n_qubits: int = 12, n_layers: int = 4, rotation: str = "X") -> Circuit:
    """AngleEmbedding(rotation) then StronglyEntanglingLayers(n_layers): the benchmark's wide circuit."""
    c = Circuit(n_qubits, n_inputs=n_qubits)
    c.add(AngleEmbedding(c.inputs, rotation=rotation))
    c.add(StronglyEntanglingLayers(c.add_weights("weights", StronglyEntanglingLayers.shape(n_layers, n_qubits))))
    return c.expval_z()


RECIPES = {
    "rezk_qnn": rezk_qnn,
    "hcqdl_crx_ring": hcqdl_crx_ring,
    "hcqdl_figure2": hcqdl_figure2,
    "hcqdl_code_qnode": hcqdl_code_qnode,
    "sqdr_reupload": sqdr_reupload,
    "diana_edge": diana_edge,
    "diana_texture": diana_texture,
    "diana_qhead": diana_qhead,
    "strongly_entangling": strongly_entangling,
}

"""Wire-order conventions between hqnn and the toolchains it talks to, written once.

hqnn: wire 0 is the most significant bit of a basis-state index (``|q0 q1 ... q_{n-1}>``), as in
PennyLane. OpenQASM and Qiskit: hqnn wire ``w`` is qubit ``q[w]`` (the same index), and the classical
bit ``c[w]`` holds its measurement. Qiskit orders basis states little-endian (qubit 0 is the least
significant bit, bitstrings print ``c[n-1] ... c[0]``), so a Qiskit statevector or counts key is the
hqnn one with the bit order reversed: use :func:`state_from_qiskit` and :func:`bitstring_from_qiskit`.
PennyLane: hqnn wire ``i`` is the i-th wire label of the device (or of the tape when the device
declares none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "qasm_qubit",
    "qiskit_qubit",
    "pennylane_wire",
    "pennylane_wire_map",
    "state_from_qiskit",
    "bitstring_from_qiskit",
]


def qasm_qubit(wire: int) -> int:
    """The OpenQASM qubit index ``q[i]`` (and classical bit ``c[i]``) of hqnn wire ``wire``."""
    return int(wire)


def qiskit_qubit(wire: int) -> int:
    """The Qiskit qubit index of hqnn wire ``wire`` (the same as in OpenQASM, so imports agree)."""
    return qasm_qubit(wire)


def pennylane_wire(wire: int) -> int:
    """The PennyLane wire label that :func:`hqnn.interop.pennylane.to_pennylane` uses for hqnn ``wire``."""
    return int(wire)


def pennylane_wire_map(labels: Sequence) -> dict:
    """Map PennyLane wire labels (device order) to hqnn wires ``0..n-1``.

    Example:
        >>> pennylane_wire_map(["a", "b"])
        {'a': 0, 'b': 1}
    """
    return {label: i for i, label in enumerate(labels)}


def state_from_qiskit(amplitudes, n_qubits: int) -> np.ndarray:
    """A Qiskit (little-endian) statevector ``(2**n,)`` in hqnn's order (wire 0 most significant).

    Reversing the bit order is an axis reversal of the ``(2,) * n`` view. The map is its own inverse,
    so the same function converts an hqnn state into Qiskit's order.
    """
    amplitudes = np.asarray(amplitudes)
    return amplitudes.reshape((2,) * n_qubits).transpose(tuple(range(n_qubits))[::-1]).reshape(-1)


def bitstring_from_qiskit(key: str) -> str:
    """A Qiskit counts key (``c[n-1] ... c[0]``, spaces between registers dropped) as hqnn's
    bitstring (wire 0 first)."""
    return key.replace(" ", "")[::-1]

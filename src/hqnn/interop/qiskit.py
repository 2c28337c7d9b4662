"""Qiskit export: a circuit as a ``qiskit.QuantumCircuit`` (the optional extra ``qiskit``).

Qubit i is hqnn wire i (:mod:`hqnn.interop.conventions`); remember that Qiskit's statevectors and
counts are little-endian (use :func:`~hqnn.interop.conventions.state_from_qiskit`). Unbound inputs and
weights become ``ParameterVector("x", n_inputs)`` and ``ParameterVector("w", n_weights)``.
"""

from __future__ import annotations

from hqnn.exceptions import require
from hqnn.interop._lowering import angle_value, bind, lower, measured_wires
from hqnn.interop.conventions import qiskit_qubit
from hqnn.sim.circuit import INPUT, WEIGHT, Circuit

__all__ = ["to_qiskit"]


def to_qiskit(circuit: Circuit, weights=None, inputs=None, *, measure: bool = False):
    """The circuit as a Qiskit ``QuantumCircuit``.

    Args:
        circuit: the circuit.
        weights: ``(n_weights,)`` values to bind (None: Qiskit parameters ``w[j]``).
        inputs: ``(n_inputs,)`` one sample's inputs (None: Qiskit parameters ``x[i]``).
        measure: append measurements of the wires the outputs read into a classical register.

    Returns:
        ``qiskit.QuantumCircuit`` on ``n_qubits`` qubits.

    Raises:
        MissingDependencyError: Qiskit is not installed.
        ShapeError: weights or inputs of the wrong size.
        UnsupportedError: a QubitUnitary on several wires.

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> to_qiskit(rezk_qnn(), [0.0] * 8, [0.0] * 4).num_qubits
        4
    """
    qiskit = require("qiskit", "qiskit")
    from qiskit.circuit import ParameterVector

    weights, inputs = bind(circuit, weights, inputs)
    symbols = {INPUT: ParameterVector("x", circuit.n_inputs), WEIGHT: ParameterVector("w", circuit.n_weights)}
    qc = qiskit.QuantumCircuit(circuit.n_qubits, name="hqnn")
    for op in lower(circuit):
        angles = []
        for a in op.params:
            value = angle_value(a, weights, inputs)
            angles.append(a.scale * symbols[a.source][a.index] if value is None else value)
        getattr(qc, str(op.spec.qiskit))(*angles, *op.qubits)
    if measure:
        qc.add_register(qiskit.ClassicalRegister(circuit.n_qubits, "c"))
        for w in measured_wires(circuit):
            qc.measure(qiskit_qubit(w), qiskit_qubit(w))
    return qc

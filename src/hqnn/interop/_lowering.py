"""Lower an hqnn circuit to the gate vocabulary shared by OpenQASM and Qiskit.

The vocabulary is the gates with an OpenQASM name in the gate table (:data:`hqnn.sim.gates.GATES`:
``stdgates.inc`` names plus rxx, ryy, rzz); each carries its Qiskit name too. A gate without one is
exported as its factors (Rot = rz·ry·rz, CRot = crz·cry·crz: a controlled product is the product of
the controlled factors), a one-qubit QubitUnitary as u3 from its ZYZ angles (up to a global phase).
Wires are translated with :func:`~hqnn.interop.conventions.qasm_qubit`.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import numpy as np
import torch

from hqnn.exceptions import ShapeError, UnsupportedError
from hqnn.interop.conventions import qasm_qubit
from hqnn.sim.circuit import CONST, INPUT, Angle, Circuit, Op
from hqnn.sim.gates import GATES, GateSpec

__all__ = ["NativeOp", "angle_value", "bind", "lower", "measured_wires", "zyz_angles"]


@dataclass(frozen=True)
class NativeOp:
    """A gate of the shared vocabulary: its table row, target qubits and its angles (hqnn Angles)."""

    spec: GateSpec
    qubits: tuple[int, ...]
    params: tuple[Angle, ...] = ()

    @property
    def name(self) -> str:
        """The OpenQASM name."""
        return str(self.spec.qasm)


def zyz_angles(matrix) -> tuple[float, float, float]:
    """``(θ, φ, λ)`` with ``matrix = e^{iα} U3(θ, φ, λ)`` for a 2x2 unitary.

    Example:
        >>> [round(a, 6) for a in zyz_angles([[0, -1], [1, 0]])]  # RY(pi)
        [3.141593, 0.0, 0.0]
    """
    (a, b), (c, d) = np.asarray(matrix, dtype=complex)
    theta = 2 * math.atan2(abs(c), abs(a))
    alpha = cmath.phase(a) if abs(a) > 1e-12 else cmath.phase(-b)
    phi = cmath.phase(c) - alpha if abs(c) > 1e-12 else 0.0
    lam = cmath.phase(d) - alpha - phi if abs(d) > 1e-12 else cmath.phase(-b) - alpha
    return theta, phi, lam


def _lower_op(op: Op) -> list[NativeOp]:
    qubits = tuple(qasm_qubit(w) for w in op.wires)
    if op.matrix is not None:
        if len(op.wires) != 1:
            raise UnsupportedError(f"QubitUnitary on {len(op.wires)} wires {op.wires}: only one-qubit unitaries "
                                   "can be exported (as u3)")
        return [NativeOp(GATES["U3"], qubits, tuple(Angle(CONST, -1, a) for a in zyz_angles(op.matrix.numpy())))]
    spec = GATES[op.name]
    if spec.qasm is None and spec.factors:
        return [native for name, k in spec.factors for native in _lower_op(Op(name, op.wires, (op.params[k],)))]
    if spec.qasm is None or spec.qiskit is None:
        raise UnsupportedError(f"gate {op.name} has no OpenQASM/Qiskit translation")
    return [NativeOp(spec, qubits, op.params)]


def lower(circuit: Circuit) -> list[NativeOp]:
    """The circuit's gates in the shared vocabulary, in time order."""
    return [native for op in circuit.ops for native in _lower_op(op)]


def _as_vector(values, size: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.shape != (size,):
        raise ShapeError(f"{what} must have {size} values for this circuit; got shape {np.shape(values)}")
    return vector


def bind(circuit: Circuit, weights=None, inputs=None):
    """Validated float64 vectors ``(weights (n_weights,) or None, inputs (n_inputs,) or None)``.

    Raises:
        ShapeError: the wrong number of weights or inputs (one sample's inputs only).
    """
    return (_as_vector(weights, circuit.n_weights, "weights"), _as_vector(inputs, circuit.n_inputs, "inputs"))


def angle_value(angle: Angle, weights: np.ndarray | None, inputs: np.ndarray | None) -> float | None:
    """The angle's value, or None when it reads an unbound input or weight."""
    if angle.source == CONST:
        return angle.scale
    values = inputs if angle.source == INPUT else weights
    return None if values is None else angle.scale * float(values[angle.index])


def measured_wires(circuit: Circuit) -> list[int]:
    """The wires the circuit's outputs read (all of them for a state), sorted: what an export measures."""
    if any(m.kind == "state" for m in circuit.measurements):
        return list(range(circuit.n_qubits))
    return sorted({w for m in circuit.measurements for w in m.wires})

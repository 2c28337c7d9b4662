"""A slow, obviously correct dense reference simulator: the oracle of the simulator tests.

Every gate is written from its textbook definition (PennyLane's conventions) as a small numpy
matrix, lifted to the full register as a ``(2**n, 2**n)`` matrix with Kronecker products, and
multiplied into the state vector of one sample. Wire 0 is the most significant bit. Nothing here
imports ``hqnn.sim.gates``: the reference must stay independent of the code it checks.

Example:
    >>> from hqnn.sim import Circuit
    >>> c = Circuit(1).rx(math.pi, 0).expval_z()
    >>> float(evaluate(c, [], [])[0])
    -1.0
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np

I2 = np.eye(2, dtype=np.complex128)
X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
Y = np.array([[0, -1j], [1j, 0]], dtype=np.complex128)
Z = np.array([[1, 0], [0, -1]], dtype=np.complex128)
H = np.array([[1, 1], [1, -1]], dtype=np.complex128) / math.sqrt(2)
S = np.diag([1, 1j]).astype(np.complex128)
T = np.diag([1, np.exp(1j * math.pi / 4)]).astype(np.complex128)
SX = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=np.complex128)  # sqrt(X)
PAULIS = {"I": I2, "X": X, "Y": Y, "Z": Z}


def kron(*factors: np.ndarray) -> np.ndarray:
    """Kronecker product of the factors, the first one being the most significant."""
    return reduce(np.kron, factors)


def exp_pauli(theta: float, pauli: np.ndarray) -> np.ndarray:
    """exp(-i theta P / 2) = cos(theta/2) I - i sin(theta/2) P, for P with P^2 = I."""
    return math.cos(theta / 2) * np.eye(len(pauli)) - 1j * math.sin(theta / 2) * pauli


def rx(theta):
    return exp_pauli(theta, X)


def ry(theta):
    return exp_pauli(theta, Y)


def rz(theta):
    return exp_pauli(theta, Z)


def phase_shift(phi):
    return np.diag([1, np.exp(1j * phi)])


def rot(phi, theta, omega):
    return rz(omega) @ ry(theta) @ rz(phi)


def u3(theta, phi, delta):
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -np.exp(1j * delta) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + delta)) * c]])


def controlled(u: np.ndarray) -> np.ndarray:
    """|0><0| (x) I + |1><1| (x) U: the control is the first (most significant) wire."""
    p0, p1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    return kron(p0, np.eye(len(u))) + kron(p1, u)


def swap() -> np.ndarray:
    """SWAP = (I + XX + YY + ZZ) / 2."""
    return (kron(I2, I2) + kron(X, X) + kron(Y, Y) + kron(Z, Z)) / 2


# name -> (number of angles, matrix function of the angles)
DEFINITIONS = {
    "Identity": (0, lambda: I2),
    "Hadamard": (0, lambda: H),
    "PauliX": (0, lambda: X),
    "PauliY": (0, lambda: Y),
    "PauliZ": (0, lambda: Z),
    "S": (0, lambda: S),
    "T": (0, lambda: T),
    "SX": (0, lambda: SX),
    "CNOT": (0, lambda: controlled(X)),
    "CZ": (0, lambda: controlled(Z)),
    "CY": (0, lambda: controlled(Y)),
    "SWAP": (0, swap),
    "Toffoli": (0, lambda: controlled(controlled(X))),
    "RX": (1, rx),
    "RY": (1, ry),
    "RZ": (1, rz),
    "PhaseShift": (1, phase_shift),
    "Rot": (3, rot),
    "U3": (3, u3),
    "CRX": (1, lambda t: controlled(rx(t))),
    "CRY": (1, lambda t: controlled(ry(t))),
    "CRZ": (1, lambda t: controlled(rz(t))),
    "CRot": (3, lambda a, b, c: controlled(rot(a, b, c))),
    "IsingXX": (1, lambda t: exp_pauli(t, kron(X, X))),
    "IsingYY": (1, lambda t: exp_pauli(t, kron(Y, Y))),
    "IsingZZ": (1, lambda t: exp_pauli(t, kron(Z, Z))),
}


def gate(name: str, *angles: float) -> np.ndarray:
    """The ``(2**k, 2**k)`` matrix of gate ``name`` at the given angles."""
    n_params, fn = DEFINITIONS[name]
    assert len(angles) == n_params, (name, angles)
    return np.asarray(fn(*[float(a) for a in angles]), dtype=np.complex128)


def embed(matrix: np.ndarray, wires, n_qubits: int) -> np.ndarray:
    """Lift a k-qubit matrix on ``wires`` (in the matrix's order) to the full ``(2**n, 2**n)`` register.

    With the gate's wires moved to the front, the operator is U (x) I_rest. So
    U_full[i, j] = (U (x) I_rest)[s(i), s(j)], where s(i) re-reads the bits of basis index i in the
    order (gate wires in the matrix's order, then the other wires in increasing order).
    """
    order = list(wires) + [w for w in range(n_qubits) if w not in wires]
    s = [int("".join(str((i >> (n_qubits - 1 - w)) & 1) for w in order), 2) for i in range(2**n_qubits)]
    return kron(matrix, np.eye(2 ** (n_qubits - len(wires))))[np.ix_(s, s)]


def angle_value(angle, inputs, weights) -> float:
    """The value of a ``hqnn.sim.Angle`` for one sample."""
    if angle.source == "input":
        return angle.scale * float(inputs[angle.index])
    if angle.source == "weight":
        return angle.scale * float(weights[angle.index])
    assert angle.source == "const", angle
    return angle.scale


def final_state(circuit, inputs, weights) -> np.ndarray:
    """The state ``(2**n,)`` after the circuit's gates, from ``|0...0>``."""
    n = circuit.n_qubits
    state = np.zeros(2**n, dtype=np.complex128)
    state[0] = 1
    for op in circuit.ops:
        if op.name == "QubitUnitary":
            matrix = np.asarray(op.matrix.detach().cpu().numpy(), dtype=np.complex128)
        else:
            matrix = gate(op.name, *(angle_value(a, inputs, weights) for a in op.params))
        state = embed(matrix, op.wires, n) @ state
    return state


def pauli_word(paulis, n_qubits: int) -> np.ndarray:
    """The full matrix of a Pauli word given as ((letter, wire), ...)."""
    factors = [I2] * n_qubits
    for letter, wire in paulis:
        factors[wire] = PAULIS[letter]
    return kron(*factors)


def marginal(state: np.ndarray, wires, n_qubits: int) -> np.ndarray:
    """Probabilities of the basis states of ``wires`` (first wire most significant): ``(2**k,)``."""
    out = np.zeros(2 ** len(wires))
    for index, amplitude in enumerate(state):
        bits = [(index >> (n_qubits - 1 - w)) & 1 for w in wires]
        out[int("".join(map(str, bits)) or "0", 2)] += abs(amplitude) ** 2
    return out


def evaluate(circuit, inputs, weights) -> np.ndarray:
    """The circuit's measurements for one sample: ``(n_outputs,)`` real, or ``(2**n,)`` complex for state."""
    n = circuit.n_qubits
    state = final_state(circuit, inputs, weights)
    parts = []
    for m in circuit.measurements:
        if m.kind == "state":
            return state
        if m.kind == "expval":
            parts.append([np.vdot(state, pauli_word(m.paulis, n) @ state).real])
        elif m.kind == "probs":
            parts.append(marginal(state, m.wires, n))
        else:
            raise AssertionError(f"unknown measurement {m.kind!r}")
    return np.concatenate(parts) if parts else np.zeros(0)


def evaluate_batch(circuit, inputs, weights) -> np.ndarray:
    """:func:`evaluate` on each row of ``inputs (B, n_inputs)``: ``(B, n_outputs)``."""
    inputs = np.asarray(inputs, dtype=np.float64)
    assert inputs.ndim == 2 and inputs.shape[1] == circuit.n_inputs, inputs.shape
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    return np.stack([evaluate(circuit, row, weights) for row in inputs])


def random_unitary(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random ``(dim, dim)`` unitary (QR of a complex Gaussian matrix, phases fixed)."""
    z = (rng.standard_normal((dim, dim)) + 1j * rng.standard_normal((dim, dim))) / math.sqrt(2)
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def random_state(n_qubits: int, rng: np.random.Generator) -> np.ndarray:
    """A random normalised state ``(2**n,)``."""
    psi = rng.standard_normal(2**n_qubits) + 1j * rng.standard_normal(2**n_qubits)
    return psi / np.linalg.norm(psi)

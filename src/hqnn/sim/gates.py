"""Every gate's facts in one table (:data:`GATES`), and its matrix batched over the angles.

A :class:`GateSpec` row says all that the simulator, the gradient rules and the exporters need to
know about a gate: wires, angles, matrix, generator, class, and its OpenQASM and Qiskit names (its
``name`` is PennyLane's). A new gate is one row; see "Adding a gate" in docs/simulator.md.

Every parametrised gate takes its angles as real tensors of any (common, broadcastable) shape
``(...)`` and returns a complex matrix of shape ``(..., 2**k, 2**k)``: a batch of angles gives a
batch of matrices, a scalar angle one shared matrix. Wire order within a gate is the order given
(control first for controlled gates); the first wire is the most significant bit.

Conventions (as in PennyLane): RX(θ) = exp(-iθX/2), RY(θ) = exp(-iθY/2), RZ(θ) = exp(-iθZ/2),
Rot(φ, θ, ω) = RZ(ω)·RY(θ)·RZ(φ), U3(θ, φ, δ) = [[c, -e^{iδ}s], [e^{iφ}s, e^{i(φ+δ)}c]] with
c = cos(θ/2), s = sin(θ/2), PhaseShift(φ) = diag(1, e^{iφ}), IsingXX(φ) = exp(-iφ X⊗X/2).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hqnn.exceptions import GateError

__all__ = ["GateKind", "GateSpec", "GATES", "gate_spec", "gate_matrix", "complex_dtype_for", "rotation_parts"]


def complex_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype matching a real (or complex) dtype: float64 -> complex128, else complex64."""
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def rotation_parts(generator: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(C, A, S, k)`` with ``exp(-iθG/2) = C + cos(kθ) A + sin(kθ) S`` for a generator whose nonzero
    eigenvalues are ±2k (one frequency k): A = G²/(2k)² projects off G's kernel, C = I - A, S = -iG/2k."""
    k = float(np.abs(np.linalg.eigvalsh(generator)).max()) / 2
    a = (generator @ generator / (2 * k) ** 2).astype(np.complex128)
    return np.eye(len(a)) - a, a, -0.5j * generator / k, k


def _from_generator(generator: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    """``θ -> exp(-iθG/2)`` from :func:`rotation_parts`."""
    *parts, k = rotation_parts(generator)
    has_kernel = bool(np.abs(parts[0]).max() > 0)
    constants: dict[tuple, list[torch.Tensor]] = {}  # per (dtype, device): built once, not on every call

    def matrix(theta: torch.Tensor) -> torch.Tensor:
        key = (theta.dtype, theta.device)
        if key not in constants:
            dtype = complex_dtype_for(theta.dtype)
            constants[key] = [torch.from_numpy(m).to(device=theta.device, dtype=dtype) for m in parts]
        p0, p1, s = constants[key]
        t = (k * theta)[..., None, None]
        out = torch.cos(t) * p1 + torch.sin(t) * s
        return out + p0 if has_kernel else out

    return matrix


def _product(factors: tuple[tuple[str, int], ...]) -> Callable[..., torch.Tensor]:
    """``(*angles) -> (..., d, d)``: the product of one-angle gates, each reading ``angles[k]``, in time order."""

    def matrix(*angles: torch.Tensor) -> torch.Tensor:
        out = GATES[factors[0][0]].matrix(angles[factors[0][1]])
        for name, k in factors[1:]:
            out = GATES[name].matrix(angles[k]) @ out
        return out

    return matrix


def _fixed(table: np.ndarray) -> Callable[..., torch.Tensor]:
    matrix_128 = torch.from_numpy(table.astype(np.complex128))

    def matrix(*, dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
        return matrix_128.to(device=device, dtype=dtype)

    return matrix


class GateKind(enum.Enum):
    """The shape of a gate's matrix, which picks its fast path in every backend."""

    DIAGONAL = "diagonal"
    PERMUTATION = "permutation"  # a fixed basis permutation
    GENERAL = "general"


@dataclass(frozen=True)
class GateSpec:
    """One gate: everything every backend and adapter needs to know about it.

    Attributes:
        name: canonical name, PennyLane's (``qml.<name>``).
        method: the :class:`~hqnn.sim.Circuit` method that appends it (angles first, wires last).
        n_wires: number of wires it acts on.
        n_params: number of real angles.
        matrix: parametrised gates: ``matrix(*angles) -> (..., d, d)``; fixed gates:
            ``matrix(dtype=, device=) -> (d, d)``.
        kind: diagonal, permutation or general.
        real: the matrix is real for real angles (keeps a real state real).
        generator: one-angle gates: the Hermitian ``(d, d)`` G with ``matrix(θ) = exp(-iθG/2)``,
            read by the parameter-shift rule and the adjoint method.
        factors: several-angle gates: the one-angle gates they are a product of, in time order,
            each with the index of the angle it takes (Rot = RZ(ω)·RY(θ)·RZ(φ)).
        qasm: OpenQASM 3 name (``stdgates.inc``, or defined by the exporter); None: exported as its factors.
        qiskit: ``QuantumCircuit`` method name; None: exported as its factors.
    """

    name: str
    method: str
    n_wires: int
    n_params: int
    matrix: Callable[..., torch.Tensor]
    kind: GateKind = GateKind.GENERAL
    real: bool = False
    generator: np.ndarray | None = None
    factors: tuple[tuple[str, int], ...] = ()
    qasm: str | None = None
    qiskit: str | None = None

    @property
    def diagonal(self) -> bool:
        return self.kind is GateKind.DIAGONAL

    @property
    def permutation(self) -> bool:
        return self.kind is GateKind.PERMUTATION

    def shift_rule(self, k: int = 0) -> str | None:
        """The parameter-shift rule of angle ``k`` from its generator's frequencies (half its eigenvalue
        gaps): "two-term" for one, "four-term" (Wierichs et al. 2022) for (1/2, 1), else None."""
        generator = GATES[self.factors[k][0]].generator if self.factors else self.generator
        if generator is None or not 0 <= k < self.n_params:
            raise GateError(f"{self.name} has no angle {k}")
        eig = np.linalg.eigvalsh(generator)
        freqs = sorted({round(abs(a - b) / 2, 9) for a in eig for b in eig if abs(a - b) > 1e-9})
        return "two-term" if len(freqs) == 1 else "four-term" if freqs == [0.5, 1.0] else None


_SQ2 = 1 / math.sqrt(2)
_I, _X, _Y, _Z = np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
_P1 = np.diag([0.0, 1.0])  # |1><1|: the control projector
_FIXED = {  # name: (method, matrix, OpenQASM / Qiskit name)
    "Identity": ("identity", _I, "id"),
    "Hadamard": ("h", np.array([[_SQ2, _SQ2], [_SQ2, -_SQ2]]), "h"),
    "PauliX": ("x", _X, "x"),
    "PauliY": ("y", _Y, "y"),
    "PauliZ": ("z", _Z, "z"),
    "S": ("s", np.diag([1, 1j]), "s"),
    "T": ("t", np.diag([1, complex(_SQ2, _SQ2)]), "t"),
    "SX": ("sx", np.array([[0.5 + 0.5j, 0.5 - 0.5j], [0.5 - 0.5j, 0.5 + 0.5j]]), "sx"),
    "CNOT": ("cnot", np.eye(4)[[0, 1, 3, 2]], "cx"),
    "CZ": ("cz", np.diag([1, 1, 1, -1]), "cz"),
    "CY": ("cy", np.block([[np.eye(2), np.zeros((2, 2))], [np.zeros((2, 2)), _Y]]), "cy"),
    "SWAP": ("swap", np.eye(4)[[0, 2, 1, 3]], "swap"),
    "Toffoli": ("toffoli", np.eye(8)[[0, 1, 2, 3, 4, 5, 7, 6]], "ccx"),
}


def _fixed_spec(name: str, method: str, m: np.ndarray, qasm: str) -> GateSpec:
    kind = GateKind.DIAGONAL if np.allclose(m, np.diag(np.diag(m))) else \
        GateKind.PERMUTATION if set(np.unique(m)) <= {0, 1} else GateKind.GENERAL
    return GateSpec(name, method, len(m).bit_length() - 1, 0, _fixed(m), kind, not np.iscomplex(m).any(),
                    qasm=qasm, qiskit=qasm)


def _one_angle(name: str, method: str, generator: np.ndarray, qasm: str, real: bool = False) -> GateSpec:
    kind = GateKind.DIAGONAL if np.allclose(generator, np.diag(np.diag(generator))) else GateKind.GENERAL
    return GateSpec(name, method, len(generator).bit_length() - 1, 1, _from_generator(generator), kind, real,
                    generator, qasm=qasm, qiskit=qasm)


def _several_angles(name: str, method: str, n_wires: int, factors: tuple[tuple[str, int], ...],
                    qasm: str | None = None, qiskit: str | None = None) -> GateSpec:
    return GateSpec(name, method, n_wires, len(factors), _product(factors), factors=factors, qasm=qasm, qiskit=qiskit)


GATES: dict[str, GateSpec] = {spec.name: spec for spec in [
    *(_fixed_spec(name, *row) for name, row in _FIXED.items()),
    _one_angle("RX", "rx", _X, "rx"),
    _one_angle("RY", "ry", _Y, "ry", real=True),
    _one_angle("RZ", "rz", _Z, "rz"),
    _one_angle("PhaseShift", "phase_shift", -2 * _P1, "p"),
    _one_angle("CRX", "crx", np.kron(_P1, _X), "crx"),
    _one_angle("CRY", "cry", np.kron(_P1, _Y), "cry", real=True),
    _one_angle("CRZ", "crz", np.kron(_P1, _Z), "crz"),
    _one_angle("IsingXX", "isingxx", np.kron(_X, _X), "rxx"),
    _one_angle("IsingYY", "isingyy", np.kron(_Y, _Y), "ryy"),
    _one_angle("IsingZZ", "isingzz", np.kron(_Z, _Z), "rzz"),
    _several_angles("Rot", "rot", 1, (("RZ", 0), ("RY", 1), ("RZ", 2))),
    _several_angles("U3", "u3", 1, (("PhaseShift", 2), ("RY", 0), ("PhaseShift", 1)), qasm="u3", qiskit="u"),
    _several_angles("CRot", "crot", 2, (("CRZ", 0), ("CRY", 1), ("CRZ", 2))),
]}

# Lower-case names and method names are accepted wherever a gate name is.
_ALIASES = {alias: spec.name for spec in GATES.values() for alias in (spec.name.lower(), spec.method)}
_ALIASES.update({"i": "Identity", "phase": "PhaseShift", "cx": "CNOT", "ccx": "Toffoli"})


def gate_spec(name: str) -> GateSpec:
    """Look up a gate by its PennyLane name or an alias (case-insensitive).

    Raises:
        GateError: for an unknown name, listing the valid ones.
    """
    spec = GATES.get(name) or GATES.get(_ALIASES.get(name.lower(), ""))
    if spec is None:
        raise GateError(f"unknown gate {name!r}; valid gates: {', '.join(sorted(GATES))}")
    return spec


def gate_matrix(name: str, *angles: torch.Tensor, dtype=torch.complex64, device=None) -> torch.Tensor:
    """The matrix of a gate: ``(..., 2**k, 2**k)`` for angles of shape ``(...)``.

    Example:
        >>> gate_matrix("RY", torch.tensor(math.pi)).real.round().tolist()
        [[0.0, -1.0], [1.0, 0.0]]
    """
    spec = gate_spec(name)
    if len(angles) != spec.n_params:
        raise GateError(f"{spec.name} takes {spec.n_params} angle(s); got {len(angles)}")
    if spec.n_params == 0:
        return spec.matrix(dtype=dtype, device=device)
    return spec.matrix(*angles)

"""Gate matrices, PennyLane's conventions, batched over the angles.

Every parametrised gate takes its angles as real tensors of any (common, broadcastable) shape
``(...)`` and returns a complex matrix of shape ``(..., 2**k, 2**k)``: a batch of angles gives a
batch of matrices, a scalar angle one shared matrix. Wire order within a gate is the order given
(control first for controlled gates); the first wire is the most significant bit.

Conventions (as in PennyLane): RX(θ) = exp(-iθX/2), RY(θ) = exp(-iθY/2), RZ(θ) = exp(-iθZ/2),
Rot(φ, θ, ω) = RZ(ω)·RY(θ)·RZ(φ), U3(θ, φ, δ) = [[c, -e^{iδ}s], [e^{iφ}s, e^{i(φ+δ)}c]] with
c = cos(θ/2), s = sin(θ/2), PhaseShift(φ) = diag(1, e^{iφ}), IsingXX(φ) = exp(-iφ X⊗X/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from hqnn.exceptions import GateError

__all__ = ["GateSpec", "GATES", "gate_spec", "gate_matrix", "controlled", "complex_dtype_for"]


def complex_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype matching a real (or complex) dtype: float64 -> complex128, else complex64."""
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def _mat(rows_re, rows_im) -> torch.Tensor:
    """Stack nested lists of equally shaped real tensors into a complex (..., d, d) matrix."""
    re = torch.stack([torch.stack(r, dim=-1) for r in rows_re], dim=-2)
    im = torch.stack([torch.stack(r, dim=-1) for r in rows_im], dim=-2)
    return torch.complex(re, im)


def _half(theta):
    return torch.cos(theta / 2), torch.sin(theta / 2)


def _rx(theta):
    c, s = _half(theta)
    z = torch.zeros_like(c)
    return _mat([[c, z], [z, c]], [[z, -s], [-s, z]])


def _ry(theta):
    c, s = _half(theta)
    z = torch.zeros_like(c)
    return _mat([[c, -s], [s, c]], [[z, z], [z, z]])


def _rz(theta):
    c, s = _half(theta)
    z = torch.zeros_like(c)
    return _mat([[c, z], [z, c]], [[-s, z], [z, s]])


def _phase_shift(phi):
    o, z = torch.ones_like(phi), torch.zeros_like(phi)
    return _mat([[o, z], [z, torch.cos(phi)]], [[z, z], [z, torch.sin(phi)]])


def _rot(phi, theta, omega):
    phi, theta, omega = torch.broadcast_tensors(phi, theta, omega)
    c, s = _half(theta)
    p, m = (phi + omega) / 2, (phi - omega) / 2
    return _mat(
        [[torch.cos(p) * c, -torch.cos(m) * s], [torch.cos(m) * s, torch.cos(p) * c]],
        [[-torch.sin(p) * c, -torch.sin(m) * s], [-torch.sin(m) * s, torch.sin(p) * c]],
    )


def _u3(theta, phi, delta):
    theta, phi, delta = torch.broadcast_tensors(theta, phi, delta)
    c, s = _half(theta)
    z = torch.zeros_like(c)
    return _mat(
        [[c, -torch.cos(delta) * s], [torch.cos(phi) * s, torch.cos(phi + delta) * c]],
        [[z, -torch.sin(delta) * s], [torch.sin(phi) * s, torch.sin(phi + delta) * c]],
    )


def _ising(pauli: torch.Tensor):
    """exp(-iφ P⊗P/2) = cos(φ/2) I - i sin(φ/2) P⊗P for a fixed 4x4 P⊗P."""

    def matrix(phi):
        c, s = _half(phi)
        pp = pauli.to(device=phi.device, dtype=complex_dtype_for(phi.dtype))
        eye = torch.eye(4, dtype=pp.dtype, device=phi.device)
        return c[..., None, None] * eye - 1j * s[..., None, None] * pp

    return matrix


def controlled(u: torch.Tensor) -> torch.Tensor:
    """Controlled version of a (..., d, d) matrix: blockdiag(I_d, U), control is the first wire."""
    d = u.shape[-1]
    out = torch.zeros(*u.shape[:-2], 2 * d, 2 * d, dtype=u.dtype, device=u.device)
    idx = torch.arange(d, device=u.device)
    out[..., idx, idx] = 1
    out[..., d:, d:] = u
    return out


_SQ2 = 1 / math.sqrt(2)
_FIXED = {
    "Identity": [[1, 0], [0, 1]],
    "Hadamard": [[_SQ2, _SQ2], [_SQ2, -_SQ2]],
    "PauliX": [[0, 1], [1, 0]],
    "PauliY": [[0, -1j], [1j, 0]],
    "PauliZ": [[1, 0], [0, -1]],
    "S": [[1, 0], [0, 1j]],
    "T": [[1, 0], [0, complex(_SQ2, _SQ2)]],
    "SX": [[0.5 + 0.5j, 0.5 - 0.5j], [0.5 - 0.5j, 0.5 + 0.5j]],
    "CNOT": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]],
    "CZ": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -1]],
    "CY": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, -1j], [0, 0, 1j, 0]],
    "SWAP": [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]],
}
_TOFFOLI = torch.eye(8, dtype=torch.complex128)[[0, 1, 2, 3, 4, 5, 7, 6]].tolist()
_FIXED["Toffoli"] = _TOFFOLI


def _fixed(name: str) -> Callable[[], torch.Tensor]:
    table = torch.tensor(_FIXED[name], dtype=torch.complex128)

    def matrix(*, dtype=torch.complex64, device=None):
        return table.to(device=device, dtype=dtype)

    return matrix


@dataclass(frozen=True)
class GateSpec:
    """What the simulator needs to know about a gate.

    Attributes:
        name: canonical (PennyLane) name.
        n_wires: number of wires it acts on (None for QubitUnitary: any).
        n_params: number of real angles.
        matrix: parametrised gates: ``matrix(*angles) -> (..., d, d)``; fixed gates:
            ``matrix(dtype=, device=) -> (d, d)``.
        real: the matrix is real for real angles (keeps a real state real).
        diagonal: the matrix is diagonal.
        permutation: the matrix is a permutation (a fixed gate only).
    """

    name: str
    n_wires: int | None
    n_params: int
    matrix: Callable[..., torch.Tensor]
    real: bool = False
    diagonal: bool = False
    permutation: bool = False


def _specs() -> dict[str, GateSpec]:
    s = {}
    for name in _FIXED:
        nw = {2: 1, 4: 2, 8: 3}[len(_FIXED[name])]
        t = torch.tensor(_FIXED[name], dtype=torch.complex128)
        is_real = bool((t.imag == 0).all())
        is_diag = bool((t == torch.diag(torch.diagonal(t))).all())
        is_perm = bool(((t == 0) | (t == 1)).all()) and bool((t.abs().sum(0) == 1).all())
        s[name] = GateSpec(name, nw, 0, _fixed(name), is_real, is_diag, is_perm)
    s["RX"] = GateSpec("RX", 1, 1, _rx)
    s["RY"] = GateSpec("RY", 1, 1, _ry, real=True)
    s["RZ"] = GateSpec("RZ", 1, 1, _rz, diagonal=True)
    s["PhaseShift"] = GateSpec("PhaseShift", 1, 1, _phase_shift, diagonal=True)
    s["Rot"] = GateSpec("Rot", 1, 3, _rot)
    s["U3"] = GateSpec("U3", 1, 3, _u3)
    s["CRX"] = GateSpec("CRX", 2, 1, lambda t: controlled(_rx(t)))
    s["CRY"] = GateSpec("CRY", 2, 1, lambda t: controlled(_ry(t)), real=True)
    s["CRZ"] = GateSpec("CRZ", 2, 1, lambda t: controlled(_rz(t)), diagonal=True)
    s["CRot"] = GateSpec("CRot", 2, 3, lambda a, b, c: controlled(_rot(a, b, c)))
    xx = torch.kron(torch.tensor(_FIXED["PauliX"]), torch.tensor(_FIXED["PauliX"])).to(torch.complex128)
    yy = torch.kron(torch.tensor(_FIXED["PauliY"]), torch.tensor(_FIXED["PauliY"]))
    zz = torch.kron(torch.tensor(_FIXED["PauliZ"]), torch.tensor(_FIXED["PauliZ"])).to(torch.complex128)
    s["IsingXX"] = GateSpec("IsingXX", 2, 1, _ising(xx))
    s["IsingYY"] = GateSpec("IsingYY", 2, 1, _ising(yy))
    s["IsingZZ"] = GateSpec("IsingZZ", 2, 1, _ising(zz), diagonal=True)
    return s


GATES: dict[str, GateSpec] = _specs()

# Lower-case and short aliases accepted wherever a gate name is.
_ALIASES = {name.lower(): name for name in GATES}
_ALIASES.update({"h": "Hadamard", "x": "PauliX", "y": "PauliY", "z": "PauliZ", "i": "Identity",
                 "cx": "CNOT", "phase": "PhaseShift", "ccx": "Toffoli", "toffoli": "Toffoli"})


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

"""Lower every gate to three primitive kinds the engine fuses: local, permutation, diagonal.

* local: a single-qubit matrix ``C + cos(k·θ)·A + sin(k·θ)·S`` (θ an Angle, or none for fixed gates);
* permutation: a fixed basis permutation on some wires (CNOT, SWAP, Toffoli);
* diagonal: a phase ``exp(i(θ·a(bits) + c(bits)))`` on some wires (CZ, CRZ, IsingZZ).

Every decomposition is exact, global phase included (so ``state()`` matches PennyLane):
Rot = RZ·RY·RZ, U3(θ,φ,δ) = PhaseShift(φ)·RY(θ)·PhaseShift(δ), CRX = H_t·CRZ·H_t,
CRY = S_t·H_t·CRZ·H_t·S†_t, CRot = CRZ(ω)·CRY(θ)·CRZ(φ), CY = S_t·CNOT·S†_t,
IsingXX = (H⊗H)·ZZ·(H⊗H), IsingYY = (SH⊗SH)·ZZ·(HS†⊗HS†). Multi-qubit QubitUnitary stays dense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hqnn.sim.circuit import CONST, Angle, Op
from hqnn.sim.gates import GATES

__all__ = ["Prim", "lower_op", "perm_table", "PERMUTATIONS", "ROTATIONS", "FIXED_1Q", "S_DAGGER"]

_I = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.diag([1, -1]).astype(complex)
_ZERO = np.zeros((2, 2), dtype=complex)

# name -> (C, A, S, k): matrix(θ) = C + cos(kθ) A + sin(kθ) S
ROTATIONS = {
    "RX": (_ZERO, _I, -1j * _X, 0.5),
    "RY": (_ZERO, _I, -1j * _Y, 0.5),
    "RZ": (_ZERO, _I, -1j * _Z, 0.5),
    "PhaseShift": (np.diag([1, 0]).astype(complex), np.diag([0, 1]).astype(complex),
                   np.diag([0, 1j]).astype(complex), 1.0),
}
FIXED_1Q = {name: GATES[name].matrix(dtype=torch.complex128).numpy()
             for name in ("Identity", "Hadamard", "PauliX", "PauliY", "PauliZ", "S", "T", "SX")}
S_DAGGER = FIXED_1Q["S"].conj().T
_H = FIXED_1Q["Hadamard"]


@dataclass(frozen=True)
class Prim:
    """One primitive. ``kind`` is "local", "perm", "diag" or "dense".

    local: ``wires=(w,)``, ``coeffs=(C, A, S, k)`` numpy, ``angle``;
    perm: ``table`` = for each output index of the gate, the input index it takes;
    diag: ``coeffs=(a, c)`` per local basis index (length 2**k) and ``angle``;
    dense: ``op`` is the original op.
    """

    kind: str
    wires: tuple[int, ...]
    angle: Angle | None = None
    coeffs: tuple = ()
    table: tuple[int, ...] = ()
    op: Op | None = None


def _local(wire: int, name: str, angle: Angle) -> Prim:
    return Prim("local", (wire,), angle, ROTATIONS[name])


def _fixed(wire: int, matrix: np.ndarray) -> Prim:
    return Prim("local", (wire,), None, (matrix, _ZERO, _ZERO, 0.0))


def _crz(control: int, target: int, angle: Angle) -> Prim:
    # diag(1, 1, e^{-iθ/2}, e^{iθ/2}): phase θ·a with a = bit_c·(bit_t - 1/2)
    return Prim("diag", (control, target), angle, (np.array([0, 0, -0.5, 0.5]), np.zeros(4)))


def _cry(c: int, t: int, angle: Angle) -> list[Prim]:
    s = FIXED_1Q["S"]
    return [_fixed(t, S_DAGGER), _fixed(t, _H), _crz(c, t, angle), _fixed(t, _H), _fixed(t, s)]


PERMUTATIONS = ("CNOT", "SWAP", "Toffoli")


def perm_table(name: str) -> tuple[int, ...]:
    """For each output index of a permutation gate, the input index it takes."""
    matrix = GATES[name].matrix(dtype=torch.complex128).real.numpy()
    return tuple(int(i) for i in matrix.argmax(axis=1))


def lower_op(op: Op) -> list[Prim]:
    """The primitives of one op, in application order."""
    name, w, p = op.name, op.wires, op.params
    if name in ROTATIONS:
        return [_local(w[0], name, p[0])]
    if name in FIXED_1Q:
        return [_fixed(w[0], FIXED_1Q[name])]
    if name == "Rot":
        return [_local(w[0], "RZ", p[0]), _local(w[0], "RY", p[1]), _local(w[0], "RZ", p[2])]
    if name == "U3":
        return [_local(w[0], "PhaseShift", p[2]), _local(w[0], "RY", p[0]), _local(w[0], "PhaseShift", p[1])]
    if name in PERMUTATIONS:
        return [Prim("perm", w, table=perm_table(name))]
    if name == "CZ":
        return [Prim("diag", w, None, (np.zeros(4), np.array([0, 0, 0, math.pi])))]
    if name == "CY":
        return [_fixed(w[1], S_DAGGER), *lower_op(Op("CNOT", w)), _fixed(w[1], FIXED_1Q["S"])]
    if name == "CRZ":
        return [_crz(w[0], w[1], p[0])]
    if name == "CRX":
        return [_fixed(w[1], _H), _crz(w[0], w[1], p[0]), _fixed(w[1], _H)]
    if name == "CRY":
        return _cry(w[0], w[1], p[0])
    if name == "CRot":
        return [_crz(w[0], w[1], p[0]), *_cry(w[0], w[1], p[1]), _crz(w[0], w[1], p[2])]
    if name == "IsingZZ":
        return [Prim("diag", w, p[0], (np.array([-0.5, 0.5, 0.5, -0.5]), np.zeros(4)))]
    if name in ("IsingXX", "IsingYY"):
        zz = lower_op(Op("IsingZZ", w, p))
        pre = [_fixed(q, S_DAGGER) for q in w] if name == "IsingYY" else []
        post = [_fixed(q, FIXED_1Q["S"]) for q in w] if name == "IsingYY" else []
        return pre + [_fixed(q, _H) for q in w] + zz + [_fixed(q, _H) for q in w] + post
    if name == "QubitUnitary" and len(w) == 1:
        return [_fixed(w[0], op.matrix.numpy())]
    return [Prim("dense", w, op=op)]


CONST_ZERO = Angle(CONST, -1, 0.0)

"""Lower every gate to three primitive kinds the engine fuses: local, permutation, diagonal.

* local: a single-qubit matrix ``C + cos(k·θ)·A + sin(k·θ)·S`` (θ an Angle, or none for fixed gates);
* permutation: a fixed basis permutation on some wires (CNOT, SWAP, Toffoli);
* diagonal: a phase ``exp(i(θ·a(bits) + c(bits)))`` on some wires (CZ, CRZ, IsingZZ).

Everything is read from the gate table (:data:`hqnn.sim.gates.GATES`): one-angle gates lower by
their generator and class, Rot, U3 and CRot as the product of their factors. Every decomposition is
exact, global phase included (so ``state()`` matches PennyLane), and the few basis changes are below:
CRX = H_t·CRZ·H_t, CRY = S_t·H_t·CRZ·H_t·S†_t, CY = S_t·CNOT·S†_t, IsingXX = CNOT·RX_0·CNOT,
IsingYY = (S⊗S)·XX·(S†⊗S†). A gate with no such lowering (and a multi-qubit QubitUnitary) stays dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hqnn.sim.circuit import Angle, Op
from hqnn.sim.gates import GATES, GateKind, rotation_parts

__all__ = ["Prim", "lower_op", "perm_table", "FIXED_1Q", "CNOT_TABLE"]

_ZERO = np.zeros((2, 2), dtype=complex)


# name -> (C, A, S, k): matrix(θ) = C + cos(kθ) A + sin(kθ) S
_ROTATIONS = {s.name: rotation_parts(s.generator) for s in GATES.values() if s.n_wires == 1 and s.generator is not None}
FIXED_1Q = {s.name: s.matrix(dtype=torch.complex128).numpy()
            for s in GATES.values() if s.n_wires == 1 and not s.n_params}
_S_DAGGER = FIXED_1Q["S"].conj().T
_H = FIXED_1Q["Hadamard"]
# Gates lowered as a basis change B on some of their wires around a core gate:
# name -> (core, wire positions, B's factors in time order); the core is followed by B† (factors reversed).
_CONJUGATED = {
    "CRX": ("CRZ", (1,), (_H,)),
    "CRY": ("CRZ", (1,), (_S_DAGGER, _H)),
    "CY": ("CNOT", (1,), (_S_DAGGER,)),
    "IsingYY": ("IsingXX", (0, 1), (_S_DAGGER,)),
}


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


def _fixed(wire: int, matrix: np.ndarray) -> Prim:
    return Prim("local", (wire,), None, (matrix, _ZERO, _ZERO, 0.0))


def perm_table(name: str) -> tuple[int, ...]:
    """For each output index of a permutation gate, the input index it takes."""
    matrix = GATES[name].matrix(dtype=torch.complex128).real.numpy()
    return tuple(int(i) for i in matrix.argmax(axis=1))


CNOT_TABLE = perm_table("CNOT")


def lower_op(op: Op) -> list[Prim]:
    """The primitives of one op, in application order."""
    w, p = op.wires, op.params
    if op.matrix is not None:
        return [_fixed(w[0], op.matrix.numpy())] if len(w) == 1 else [Prim("dense", w, op=op)]
    spec = GATES[op.name]
    if spec.factors:
        return [prim for name, k in spec.factors for prim in lower_op(Op(name, w, (p[k],)))]
    if op.name in _CONJUGATED:
        core, positions, basis = _CONJUGATED[op.name]
        before = [_fixed(w[i], m) for m in basis for i in positions]
        after = [_fixed(w[i], m.conj().T) for m in reversed(basis) for i in positions]
        return before + lower_op(Op(core, w, p)) + after
    if op.name == "IsingXX":  # exp(-iθ/2 X⊗X): conjugating X⊗I by CNOT gives X⊗X
        return [Prim("perm", w, table=CNOT_TABLE), *lower_op(Op("RX", w[:1], p)), Prim("perm", w, table=CNOT_TABLE)]
    if spec.n_wires == 1:
        return [Prim("local", w, p[0], _ROTATIONS[op.name]) if p else _fixed(w[0], FIXED_1Q[op.name])]
    if spec.kind is GateKind.PERMUTATION:
        return [Prim("perm", w, table=perm_table(op.name))]
    if spec.kind is GateKind.DIAGONAL:  # phase θ·a + c: a = -diag(G)/2 (exp(-iθG/2)), c = the fixed phases
        if spec.generator is not None:
            return [Prim("diag", w, p[0], (-np.diag(spec.generator).real / 2, np.zeros(2**len(w))))]
        phases = np.angle(np.diag(spec.matrix(dtype=torch.complex128).numpy()))
        return [Prim("diag", w, None, (np.zeros(2**len(w)), phases))]
    if not p:  # a fixed gate runs as its constant matrix
        return [Prim("dense", w, op=Op("QubitUnitary", w, (), spec.matrix(dtype=torch.complex128)))]
    return [Prim("dense", w, op=op)]


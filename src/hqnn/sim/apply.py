"""Apply gates to batched statevectors, and evaluate a circuit's angles and gate matrices.

The state is ``(B, 2**n)`` (batch-major, contiguous); viewed as ``(B, 2, ..., 2)`` wire ``w`` is
axis ``w + 1`` and wire 0 is the most significant bit of the basis index. Every simulator (the
gate-by-gate plan, density matrices, trajectories, the gradient methods) reads angles through
:func:`angle_value` and matrices through :func:`op_matrix`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from hqnn.exceptions import ValueRangeError
from hqnn.sim.circuit import CONST, INPUT, Angle, Op
from hqnn.sim.gates import gate_spec

__all__ = ["apply_matrix", "apply_diagonal", "apply_permutation", "wire_permutation", "angle_value", "op_angles",
           "op_matrix", "run_gates", "check_finite_angles"]


def apply_matrix(state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """Apply a k-qubit matrix to ``wires`` of a batched state.

    Args:
        state: ``(B, 2**n)`` complex (or real, with a real matrix).
        matrix: ``(2**k, 2**k)`` shared by the batch, or ``(B, 2**k, 2**k)`` one per sample.
        wires: the k target wires, in the matrix's order (first = most significant).
        n_qubits: n.

    Returns:
        ``(B, 2**n)``: the new state.
    """
    batch, k = state.shape[0], len(wires)
    axes = [w + 1 for w in wires]
    tail = list(range(n_qubits + 1 - k, n_qubits + 1))
    psi = state.reshape((batch,) + (2,) * n_qubits).movedim(axes, tail)
    moved_shape = psi.shape
    psi = psi.reshape(batch, -1, 2**k)  # (B, rest, 2**k)
    psi = psi @ matrix.transpose(-1, -2)
    return psi.reshape(moved_shape).movedim(tail, axes).reshape(batch, -1)


def apply_diagonal(state: torch.Tensor, diagonal: torch.Tensor) -> torch.Tensor:
    """Multiply by a diagonal given over the full register: ``(2**n,)`` or ``(B, 2**n)``."""
    return state * diagonal


def wire_permutation(matrix_perm: list[int], wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """Full-register basis permutation of a k-qubit permutation gate.

    Args:
        matrix_perm: for each output basis index j of the gate, the input index it takes
            (``out[j] = in[matrix_perm[j]]``).
        wires: the gate's wires.
        n_qubits: n.

    Returns:
        ``(2**n,)`` long tensor ``p`` such that ``new_state = state[:, p]``.
    """
    dim = 2**n_qubits
    idx = torch.arange(dim)
    shifts = [n_qubits - 1 - w for w in wires]
    local = torch.zeros(dim, dtype=torch.long)
    for s in shifts:
        local = local * 2 + ((idx >> s) & 1)
    src_local = torch.tensor(matrix_perm)[local]
    src = idx.clone()
    for pos, s in enumerate(shifts):
        bit = (src_local >> (len(wires) - 1 - pos)) & 1
        src = (src & ~(1 << s)) | (bit << s)
    return src


def apply_permutation(state: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Permute basis amplitudes: ``new[:, j] = state[:, perm[j]]`` (a CNOT/SWAP network in one gather)."""
    return state[:, perm]


def check_finite_angles(inputs: torch.Tensor, weights: torch.Tensor) -> None:
    """Raise ValueRangeError when ``inputs`` or ``weights`` hold NaN or infinite values."""
    for name, t in (("inputs", inputs), ("weights", weights)):
        # one reduction: NaN and infinities propagate into the sum
        if t.numel() and not math.isfinite(float(t.detach().sum())):
            raise ValueRangeError(f"{name} contain NaN or infinite values; angles must be finite")


_TRANSFORMS = {"sigmoid": torch.sigmoid}


def angle_value(angles: Angle | Sequence[Angle], inputs: torch.Tensor, weights: torch.Tensor,
                uniform: torch.Tensor | None = None) -> torch.Tensor:
    """The value of an angle or strength, or of G angles read alike (one source, transform and choices).

    One Angle gives ``()`` when shared by the batch, ``(B,)`` per sample; a sequence gives ``(G,)`` or
    ``(B, G)``. ``uniform (B,)`` in [0, 1) picks the offset of ``random_offset`` angles (r = floor(u * choices)).
    """
    single = isinstance(angles, Angle)
    group = (angles,) if isinstance(angles, Angle) else tuple(angles)
    first = group[0]
    scales = [a.scale for a in group]
    scale = scales[0] if single or len(set(scales)) == 1 else \
        torch.tensor(scales, dtype=weights.dtype, device=weights.device)
    if first.source == CONST:
        return torch.tensor(scales[0] if single else scales, dtype=weights.dtype, device=weights.device)
    index = first.index if single else [a.index for a in group]
    if first.source == INPUT and first.choices > 1:
        if uniform is None:
            raise ValueRangeError("random_offset angles need uniform numbers u (B,) in [0, 1); got None")
        offset = (uniform * first.choices).long().clamp_max(first.choices - 1)  # (B,)
        at = torch.as_tensor(index, device=inputs.device).reshape(1, -1) + offset[:, None]  # (B, G)
        raw = inputs.gather(1, at)
        raw = raw[:, 0] if single else raw
    else:
        raw = inputs[:, index] if first.source == INPUT else weights[index]  # (B,) or (B, G); () or (G,)
    if first.transform is not None:
        raw = _TRANSFORMS[first.transform](raw)
    return raw * scale


def op_angles(op: Op, inputs: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    """The op's angles: ``()`` tensors when shared by the batch, ``(B,)`` when read from the inputs."""
    return [angle_value(a, inputs, weights) for a in op.params]


def op_matrix(op: Op, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The op's matrix: ``(d, d)`` shared or ``(B, d, d)`` per sample, in complex ``dtype``."""
    if op.matrix is not None:
        return op.matrix.to(device=inputs.device, dtype=dtype)
    spec = gate_spec(op.name)
    if spec.n_params == 0:
        return spec.matrix(dtype=dtype, device=inputs.device)
    return spec.matrix(*op_angles(op, inputs, weights)).to(dtype)


def run_gates(state: torch.Tensor, ops: Iterable[Op], inputs: torch.Tensor, weights: torch.Tensor,
              n_qubits: int) -> torch.Tensor:
    """Apply ``ops`` one by one to ``state (B, 2**n)``."""
    for op in ops:
        state = apply_matrix(state, op_matrix(op, inputs, weights, state.dtype), op.wires, n_qubits)
    return state

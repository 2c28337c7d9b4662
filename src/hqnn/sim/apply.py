"""Apply gates to batched statevectors.

The state is ``(B, 2**n)`` (batch-major, contiguous); viewed as ``(B, 2, ..., 2)`` wire ``w`` is
axis ``w + 1`` and wire 0 is the most significant bit of the basis index.
"""

from __future__ import annotations

import torch

__all__ = ["apply_matrix", "apply_diagonal", "apply_permutation", "wire_permutation"]


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

"""Measurements on batched statevectors: Pauli-word expectations, marginal probabilities, the state.

All functions take the state as ``(B, 2**n)`` and return real tensors ``(B, ...)``.
"""

from __future__ import annotations

import math

import torch

from hqnn.sim.apply import apply_matrix
from hqnn.sim.gates import complex_dtype_for

__all__ = ["probabilities", "marginal_probabilities", "pauli_signs", "expvals", "measure", "basis_rotation"]

# Rotations U with U P U^dagger = Z, applied before reading Z signs: X -> H, Y -> H S^dagger.
_S2 = 1 / math.sqrt(2)
_ROTATIONS = {
    "X": [[_S2, _S2], [_S2, -_S2]],
    "Y": [[_S2, -1j * _S2], [_S2, 1j * _S2]],
}


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """``|psi|^2``: ``(B, 2**n)`` real."""
    return state.real**2 + state.imag**2 if state.is_complex() else state**2


def marginal_probabilities(probs: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """Marginal of ``probs (B, 2**n)`` on ``wires`` (in the given order): ``(B, 2**k)``."""
    batch = probs.shape[0]
    p = probs.reshape((batch,) + (2,) * n_qubits)
    others = [a + 1 for a in range(n_qubits) if a not in wires]
    if others:
        p = p.sum(dim=others)
    kept = sorted(wires)
    p = p.permute([0] + [kept.index(w) + 1 for w in wires])
    return p.reshape(batch, -1)


def pauli_signs(words: list[tuple[int, ...]], n_qubits: int, dtype, device) -> torch.Tensor:
    """Sign matrix ``(2**n, len(words))``: column j is prod over wires of word j of (1 - 2 bit_w)."""
    idx = torch.arange(2**n_qubits, device=device)
    cols = []
    for wires in words:
        parity = torch.zeros_like(idx)
        for w in wires:
            parity ^= (idx >> (n_qubits - 1 - w)) & 1
        cols.append(1 - 2 * parity)
    return torch.stack(cols, dim=1).to(dtype)


def basis_rotation(state: torch.Tensor, paulis: tuple[tuple[str, int], ...], n_qubits: int) -> torch.Tensor:
    """Rotate X and Y factors of a Pauli word into Z so that the word becomes diagonal."""
    for letter, wire in paulis:
        if letter in _ROTATIONS:
            rot = torch.tensor(_ROTATIONS[letter], dtype=complex_dtype_for(state.dtype), device=state.device)
            if not state.is_complex():
                state = state.to(rot.dtype)
            state = apply_matrix(state, rot, (wire,), n_qubits)
    return state


def expvals(state: torch.Tensor, words: list[tuple[tuple[str, int], ...]], n_qubits: int) -> torch.Tensor:
    """Expectation values of Pauli words (each a tuple of (letter, wire)): ``(B, len(words))``."""
    real_dtype = state.real.dtype if state.is_complex() else state.dtype
    out: dict[int, torch.Tensor] = {}
    groups: dict[tuple, list[int]] = {}
    for j, word in enumerate(words):
        groups.setdefault(tuple((p, w) for p, w in word if p != "Z"), []).append(j)
    for rotation, members in groups.items():
        probs = probabilities(basis_rotation(state, rotation, n_qubits))
        signs = pauli_signs([tuple(w for _, w in words[j]) for j in members], n_qubits, real_dtype, state.device)
        values = probs @ signs  # (B, len(members))
        for col, j in enumerate(members):
            out[j] = values[:, col]
    return torch.stack([out[j] for j in range(len(words))], dim=1)


def measure(state: torch.Tensor, measurements, n_qubits: int) -> torch.Tensor:
    """Evaluate a circuit's measurements on its final state, concatenated: ``(B, n_outputs)``.

    A lone ``state`` measurement returns the complex state itself.
    """
    if len(measurements) == 1 and measurements[0].kind == "state":
        return state
    words = [m.paulis for m in measurements if m.kind == "expval"]
    values = iter(expvals(state, words, n_qubits).unbind(1) if words else ())
    parts, probs = [], None
    for m in measurements:
        if m.kind == "expval":
            parts.append(next(values)[:, None])
        else:
            probs = probabilities(state) if probs is None else probs
            parts.append(marginal_probabilities(probs, m.wires, n_qubits))
    return torch.cat(parts, dim=1)

"""The "pergate-torch" baseline: a plain per-gate batched PyTorch simulator, TorchQuantum's dynamic mode.

Deliberately straightforward, as the common per-gate libraries do it: the state is ``(B, 2, ..., 2)``
complex64; every gate builds its matrix, expands it over the batch even when it is shared
(``mat.expand(B, d, d)``), permutes its target axes to the front, reshapes to ``(B, 2**k, rest)``,
multiplies with ``bmm``, and reshapes and permutes back. CNOT and CZ are dense 4x4 ``bmm``s.
⟨Z_w⟩ sums ``|psi|**2`` over the other axes. It reads any :class:`hqnn.sim.Circuit` whose
measurements are single-wire ⟨Z⟩ (all the benchmark circuits).
"""

from __future__ import annotations

import torch
from torch import nn

from hqnn.exceptions import ShapeError, UnsupportedError
from hqnn.sim.circuit import Circuit
from hqnn.sim.execute import op_matrix

__all__ = ["PerGateLayer", "apply_gate_bmm"]


def apply_gate_bmm(state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...]) -> torch.Tensor:
    """Apply a ``(d, d)`` or ``(B, d, d)`` matrix to ``state (B, 2, ..., 2)`` on ``wires`` with one ``bmm``."""
    batch, n = state.shape[0], state.dim() - 1
    d = 2 ** len(wires)
    axes = [w + 1 for w in wires]
    perm = [0] + axes + [a for a in range(1, n + 1) if a not in axes]
    psi = state.permute(perm).reshape(batch, d, -1)  # (B, 2**k, rest)
    psi = matrix.expand(batch, d, d).bmm(psi)
    inverse = [perm.index(a) for a in range(n + 1)]
    return psi.view([batch] + [2] * n).permute(inverse)


class PerGateLayer(nn.Module):
    """A circuit simulated gate by gate (the baseline); maps ``(B, n_inputs) -> (B, n_outputs)``.

    Args:
        circuit: a circuit measuring only single-wire ⟨Z⟩.

    Raises:
        UnsupportedError: another kind of measurement.
    """

    def __init__(self, circuit: Circuit):
        super().__init__()
        for m in circuit.measurements:
            if m.kind != "expval" or len(m.paulis) != 1 or m.paulis[0][0] != "Z":
                raise UnsupportedError(f"the per-gate baseline measures single-wire <Z> only; got {m}")
        self.circuit = circuit
        self.weights = nn.Parameter(torch.zeros(circuit.n_weights))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.circuit.n_qubits
        if x.dim() != 2 or x.shape[1] != self.circuit.n_inputs:
            raise ShapeError(f"inputs must have shape (B, {self.circuit.n_inputs}); got {tuple(x.shape)}")
        batch = x.shape[0]
        state = torch.zeros((batch,) + (2,) * n, dtype=torch.complex64, device=x.device)
        state[(slice(None),) + (0,) * n] = 1
        weights = self.weights.to(x.device)
        for op in self.circuit.ops:
            state = apply_gate_bmm(state, op_matrix(op, x, weights, torch.complex64), op.wires)
        probs = state.real**2 + state.imag**2  # (B, 2, ..., 2)
        outs = []
        for m in self.circuit.measurements:
            axis = m.wires[0] + 1
            p = probs.sum(dim=[a for a in range(1, n + 1) if a != axis])  # (B, 2)
            outs.append(p[:, 0] - p[:, 1])
        return torch.stack(outs, dim=1)  # (B, n_out)

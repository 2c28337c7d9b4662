"""Monte Carlo trajectories: noisy circuits on statevectors, for registers too large for ρ.

Each sample is repeated ``n_trajectories`` times; at every channel each trajectory takes Kraus
branch k with probability ‖K_k ψ‖² (drawn from a seedable ``torch.Generator``) and is renormalised.
The mean over trajectories is an unbiased estimate of the density-matrix result, with memory
B·T·2**n instead of B·4**n. Gradients flow through the sampled branches (pathwise); they are
unbiased for mixed-unitary channels with constant strengths (bit/phase flip, depolarizing) and
biased where branch probabilities depend on the parameters (damping) — use the density matrix there.
"""

from __future__ import annotations

import torch

from hqnn.exceptions import ShapeError
from hqnn.sim.apply import apply_matrix
from hqnn.sim.channels import channel_spec, kraus_from_superop
from hqnn.sim.circuit import Circuit
from hqnn.sim.density import combine_measurements, needs_uniform, readout_table
from hqnn.sim.execute import angle_value, op_matrix, prepare_arguments
from hqnn.sim.measure import expvals, probabilities
from hqnn.sim.state import zero_state

__all__ = ["run_trajectories"]


def _kraus(op, inputs, weights, uniform, dtype) -> torch.Tensor:
    """Kraus operators ``(m, d, d)`` shared or ``(B, m, d, d)`` per sample."""
    if op.matrix is not None:
        return op.matrix.to(device=inputs.device, dtype=dtype)
    values = [angle_value(a, inputs, weights, uniform) for a in op.params]
    superop = channel_spec(op.name).superop(*values)
    return kraus_from_superop(superop.to(torch.complex128)).to(dtype)


def _branch(state, kraus, wires, n_qubits, generator) -> torch.Tensor:
    """Apply one sampled Kraus branch per trajectory and renormalise: ``(B, 2**n)``."""
    batch = state.shape[0]
    branches = torch.stack([apply_matrix(state, kraus[..., k, :, :], wires, n_qubits)
                            for k in range(kraus.shape[-3])], dim=1)  # (B, m, D)
    weights = probabilities(branches).sum(dim=-1)  # (B, m)
    pick = torch.multinomial(weights.detach().to(torch.float64).cpu(), 1, generator=generator)[:, 0].to(state.device)
    rows = torch.arange(batch, device=state.device)
    return branches[rows, pick] / weights[rows, pick].sqrt()[:, None]


def run_trajectories(circuit: Circuit, inputs=None, weights=None, *, n_trajectories: int = 100,
                     generator: torch.Generator | None = None, dtype=None, return_stderr: bool = False):
    """Estimate a noisy circuit's measurements by averaging ``n_trajectories`` pure-state trajectories.

    Args:
        circuit: a circuit with channels and/or readout errors (a clean one works too).
        inputs: ``(B, n_inputs)``; weights: ``(n_weights,)``.
        n_trajectories: trajectories per sample (T).
        generator: a CPU ``torch.Generator`` for reproducible branch (and random-strength) draws.
        dtype: force the precision.
        return_stderr: also return the standard error of the mean ``(B, n_outputs)``.

    Returns:
        ``(B, n_outputs)`` mean (and its standard error when asked).

    Raises:
        ShapeError: a ``state()`` measurement (a mixed state has no statevector), or n_trajectories < 1.

    Example:
        >>> c = Circuit(1); c.h(0); c.depolarizing(0.1, 0); c.expval("X0")
        >>> g = torch.Generator().manual_seed(0)
        >>> run_trajectories(c, n_trajectories=1000, generator=g).shape
        torch.Size([1, 1])
    """
    if any(m.kind == "state" for m in circuit.measurements):
        raise ShapeError("trajectories estimate expvals and probs; a state() measurement is not supported")
    if int(n_trajectories) < 1:
        raise ShapeError(f"n_trajectories must be >= 1; got {n_trajectories}")
    inputs, weights, cdtype, device, batch = prepare_arguments(circuit, inputs, weights, dtype)
    n, t = circuit.n_qubits, int(n_trajectories)
    inputs = inputs.repeat_interleave(t, dim=0)  # (B*T, n_in)
    uniform = torch.rand(batch * t, generator=generator, dtype=inputs.dtype).to(device) \
        if needs_uniform(circuit) else None
    state = zero_state(n, batch * t, cdtype, device)
    for op in circuit.ops:
        if op.kind == "gate":
            state = apply_matrix(state, op_matrix(op, inputs, weights, cdtype), op.wires, n)
        elif op.kind == "channel":
            state = _branch(state, _kraus(op, inputs, weights, uniform, cdtype), op.wires, n, generator)
    out = combine_measurements(circuit.measurements, readout_table([op for op in circuit.ops if op.kind == "readout"]),
                               lambda words: expvals(state, words, n), lambda: probabilities(state), n)
    out = out.reshape(batch, t, -1)  # (B, T, n_out)
    mean = out.mean(dim=1)
    if not return_stderr:
        return mean
    stderr = out.std(dim=1) / t**0.5 if t > 1 else torch.full_like(mean, float("inf"))
    return mean, stderr

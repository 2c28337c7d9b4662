"""The density-matrix plan's fast paths (wire-stacked superoperators, entries-only reads) against a plain
op-by-op density-matrix simulation kept here: outputs and gradients in float64."""

import copy

import pytest
import torch

from hqnn.sim import Circuit
from hqnn.sim.channels import channel_spec
from hqnn.sim.density import DensityPlan
from hqnn.sim.execute import angle_value, op_matrix
from hqnn.sim.gates import complex_dtype_for
from hqnn.templates.noisy_recipes import sqdr_reupload_noisy

PAULI = {
    "X": torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
    "Y": torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128),
    "Z": torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128),
}


def _apply(rho, matrix, wires, n, side):
    """``matrix`` (on ``wires``) applied to ρ's row indices (side 0) or column indices (side 1)."""
    k = len(wires)
    axes = [side * n + w for w in wires]
    tensor = rho.reshape((2,) * (2 * n))
    m = matrix.reshape((2,) * (2 * k))
    out = torch.tensordot(m, tensor, dims=(list(range(k, 2 * k)), axes))  # new axes first
    return out.movedim(list(range(k)), axes).reshape(rho.shape)


def reference_run(circuit, inputs, weights, uniform):
    """One sample at a time, one op at a time: ρ -> U ρ U† for gates; for a single-wire channel
    ρ'[(i, j)] = Σ S[(i, j), (k, l)] ρ[(k, l)] on the wire's (row, column) pair; then Tr(P ρ) and
    diag(ρ) marginals. Channel superoperators come from :mod:`hqnn.sim.channels` (checked against
    PennyLane in test_noise.py)."""
    n = circuit.n_qubits
    dim = 2**n
    outs = []
    for b in range(inputs.shape[0]):
        x, u = inputs[b:b + 1], uniform[b:b + 1]
        rho = torch.zeros(dim, dim, dtype=torch.complex128)
        rho[0, 0] = 1
        for op in circuit.ops:
            if op.kind == "gate":
                m = op_matrix(op, x, weights, torch.complex128).reshape(2 ** len(op.wires), -1)
                rho = _apply(_apply(rho, m, op.wires, n, 0), m.conj(), op.wires, n, 1)
            else:
                (w,) = op.wires
                values = [angle_value(a, x, weights, u).reshape(()) for a in op.params]
                s = channel_spec(op.name).superop(*values).to(torch.complex128).reshape(2, 2, 2, 2)
                tensor = rho.reshape((2,) * (2 * n))
                out = torch.tensordot(s, tensor, dims=([2, 3], [w, n + w]))
                rho = out.movedim([0, 1], [w, n + w]).reshape(dim, dim)
        parts = []
        for m in circuit.measurements:
            if m.kind == "expval":
                p = torch.eye(dim, dtype=torch.complex128)
                for letter, w in m.paulis:
                    p = _apply(p, PAULI[letter], (w,), n, 0)
                parts.append(torch.trace(p @ rho).real.reshape(1))
            else:
                probs = torch.diagonal(rho).real.reshape((2,) * n)
                rest = [w for w in range(n) if w not in m.wires]
                marg = probs.sum(dim=rest) if rest else probs
                order = sorted(m.wires)
                parts.append(marg.permute([order.index(w) for w in m.wires]).reshape(-1))
        outs.append(torch.cat(parts))
    return torch.stack(outs)


def _tails_circuit():
    """Leading single-wire runs of two structures, then diagonal and permutation runs, then tails."""
    c = Circuit(4, n_inputs=4)
    w = c.add_weights("w", (6,))
    for i in range(3):
        c.rx(c.inputs[i], i).ry(w[i], i).bit_flip(0.05, i)
    c.rot(c.inputs[3], w[3], 0.3, 3).amplitude_damping(c.inputs[0].sigmoid(), 3)
    c.cz(0, 1).crz(w[4], 1, 2).cnot(2, 3).swap(0, 3).cz(2, 3)
    c.rx(w[5], 0).depolarizing(0.1, 1).phase_damping(0.2, 2)
    return c.expval("Z0").expval("X1 Y2").expval("Z0 Z3").expval("Y3")


def _probs_circuit():
    c = Circuit(3, n_inputs=3)
    w = c.add_weights("w", (2,))
    for i in range(3):
        c.ry(c.inputs[i], i).depolarizing(0.05, i)
    c.cnot(0, 1).crz(w[0], 1, 2).isingzz(w[1], 0, 2)
    return c.probs([2, 0]).expval("X2")


def _local_between_circuit():
    c = Circuit(3, n_inputs=3)
    w = c.add_weights("w", (3,))
    for i in range(3):
        c.ry(c.inputs[i], i).amplitude_damping(0.1, i)
    c.cnot(0, 1).rx(w[0], 1).bit_flip(0.1, 1).crx(w[1], 1, 2).ry(w[2], 0)
    return c.expval("Z0").expval("Z1 X2").probs([1])


@pytest.mark.parametrize("build, entries_only", [
    (lambda: sqdr_reupload_noisy(4, 2, damping_index="random"), True),
    (_tails_circuit, True),
    (_probs_circuit, True),
    (_local_between_circuit, False),
])
def test_density_plan_matches_op_by_op_simulation_with_gradients(build, entries_only):
    circuit = build()
    plan = DensityPlan(circuit)
    assert plan.entries_only is entries_only
    gen = torch.Generator().manual_seed(7)
    x = (torch.rand(3, circuit.n_inputs, generator=gen, dtype=torch.float64) * 3 - 1).requires_grad_()
    w = (torch.rand(circuit.n_weights, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    u = torch.rand(3, generator=gen, dtype=torch.float64)
    upstream = torch.randn(3, circuit.n_outputs, generator=gen, dtype=torch.float64)
    ours = plan.execute(x, w, complex_dtype_for(x.dtype), uniform=u)
    theirs = reference_run(circuit, x, w, u)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    grads_ours = torch.autograd.grad((ours * upstream).sum(), (x, w))
    grads_theirs = torch.autograd.grad((theirs * upstream).sum(), (x, w))
    for a, b in zip(grads_ours, grads_theirs):
        assert b.abs().max() > 1e-3  # the gradient is not trivially zero
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_entries_only_path_agrees_with_the_formed_density_matrix_at_nine_qubits():
    # SQDR's noisy circuit up to its last CZ, measured in Z: product state, one diagonal run, no tails
    full = sqdr_reupload_noisy(9, 2, damping_index=1)
    circuit = copy.copy(full)
    circuit.ops = list(full.ops[: max(k for k, op in enumerate(full.ops) if len(op.wires) > 1) + 1])
    circuit.measurements = list(full.measurements)
    plan = DensityPlan(circuit)
    assert plan.entries_only
    x, w = torch.rand(4, 27, dtype=torch.float64), torch.rand(circuit.n_weights, dtype=torch.float64) * 6
    rho = plan.density_matrix(x, w, torch.complex128)  # (4, 512, 512), formed in full
    diag = torch.diagonal(rho, dim1=1, dim2=2).real.reshape(4, *(2,) * 9)
    z = torch.tensor([1.0, -1.0], dtype=torch.float64)
    expected = torch.stack([(diag.movedim(1 + q, -1) * z).sum(dim=tuple(range(1, 10))) for q in range(9)], dim=1)
    torch.testing.assert_close(plan.execute(x, w, torch.complex128), expected, rtol=0, atol=1e-12)
    single = plan.execute(x.float(), w.float(), torch.complex64)
    torch.testing.assert_close(single, expected.float(), rtol=0, atol=2e-6)

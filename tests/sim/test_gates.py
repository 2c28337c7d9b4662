"""Every gate of ``hqnn.sim.GATES`` against the dense reference: matrix, unitarity, batching, action."""

import math

import numpy as np
import pytest
import torch

from hqnn.sim import GATES, apply_diagonal, apply_matrix, apply_permutation, gate_matrix, gate_spec
from hqnn.sim.apply import wire_permutation
from reference import DEFINITIONS, embed, gate, random_state, random_unitary

ALL_GATES = sorted(GATES)
PARAMETRISED = [name for name in ALL_GATES if GATES[name].n_params]
DTYPES = [(torch.float32, torch.complex64, 1e-5), (torch.float64, torch.complex128, 1e-12)]


def _hqnn_matrix(name: str, angles, real_dtype: torch.dtype) -> torch.Tensor:
    """gate_matrix at ``angles`` (a list of floats or arrays), in the complex dtype matching ``real_dtype``."""
    cdtype = torch.complex128 if real_dtype == torch.float64 else torch.complex64
    tensors = [torch.as_tensor(a, dtype=real_dtype) for a in angles]
    return gate_matrix(name, *tensors, dtype=cdtype)


def _random_angles(name: str, rng: np.random.Generator, size=None) -> list:
    return [rng.uniform(-2 * math.pi, 2 * math.pi, size) for _ in range(GATES[name].n_params)]


def test_reference_covers_every_gate():
    assert set(DEFINITIONS) == set(GATES)


@pytest.mark.parametrize("name", ALL_GATES)
@pytest.mark.parametrize("real_dtype,cdtype,tol", DTYPES, ids=["complex64", "complex128"])
def test_matrix_matches_reference(name, real_dtype, cdtype, tol, rng):
    for _ in range(5):
        angles = _random_angles(name, rng)
        m = _hqnn_matrix(name, angles, real_dtype)
        assert m.dtype == cdtype
        d = 2 ** GATES[name].n_wires
        assert m.shape == (d, d)
        np.testing.assert_allclose(m.numpy(), gate(name, *angles), atol=tol, rtol=0)


@pytest.mark.parametrize("name", ALL_GATES)
def test_matrix_is_unitary(name, rng):
    m = _hqnn_matrix(name, _random_angles(name, rng), torch.float64)
    eye = torch.eye(m.shape[-1], dtype=m.dtype)
    torch.testing.assert_close(m @ m.conj().T, eye, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ALL_GATES)
def test_spec_flags_are_true(name, rng):
    """The real / diagonal / permutation flags the fast paths rely on hold for the matrix."""
    spec = GATES[name]
    m = _hqnn_matrix(name, _random_angles(name, rng), torch.float64)
    if spec.real:
        assert torch.all(m.imag == 0)
    if spec.diagonal:
        assert torch.all(m == torch.diag(torch.diagonal(m)))
    if spec.permutation:
        assert torch.all((m == 0) | (m == 1)) and torch.all(m.abs().sum(0) == 1)


@pytest.mark.parametrize("name", PARAMETRISED)
@pytest.mark.parametrize("real_dtype,cdtype,tol", DTYPES, ids=["complex64", "complex128"])
def test_batched_angles_give_batched_matrices(name, real_dtype, cdtype, tol, rng):
    batch = 5
    angles = _random_angles(name, rng, size=batch)
    m = _hqnn_matrix(name, angles, real_dtype)
    d = 2 ** GATES[name].n_wires
    assert m.shape == (batch, d, d) and m.dtype == cdtype
    for b in range(batch):
        single = _hqnn_matrix(name, [a[b] for a in angles], real_dtype)
        torch.testing.assert_close(m[b], single, atol=tol, rtol=0)
        np.testing.assert_allclose(m[b].numpy(), gate(name, *[a[b] for a in angles]), atol=tol, rtol=0)


@pytest.mark.parametrize("name", [n for n in PARAMETRISED if GATES[n].n_params > 1])
def test_mixed_batched_and_shared_angles_broadcast(name, rng):
    """A (B,) input angle next to scalar weight angles, as op_angles produces them."""
    batch = 4
    angles = _random_angles(name, rng)
    angles[1] = rng.uniform(-3, 3, batch)
    m = _hqnn_matrix(name, angles, torch.float64)
    assert m.shape[0] == batch
    for b in range(batch):
        expected = gate(name, angles[0], angles[1][b], *angles[2:])
        np.testing.assert_allclose(m[b].numpy(), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ALL_GATES + ["QubitUnitary1", "QubitUnitary2", "QubitUnitary3"])
@pytest.mark.parametrize("cdtype,tol", [(torch.complex64, 1e-5), (torch.complex128, 1e-12)], ids=["c64", "c128"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["shared", "per_sample"])
def test_apply_matrix_on_random_states(name, cdtype, tol, per_sample, rng):
    """apply_matrix on random wires of random registers equals the dense embedded matrix times the state."""
    batch = 3
    for _ in range(4):
        k = int(name[-1]) if name.startswith("QubitUnitary") else GATES[name].n_wires
        n = int(rng.integers(k, 6))
        wires = tuple(int(w) for w in rng.permutation(n)[:k])

        def draw():
            if name.startswith("QubitUnitary"):
                return random_unitary(2**k, rng)
            return gate(name, *_random_angles(name, rng))

        mats = [draw() for _ in range(batch)] if per_sample else [draw()] * batch
        states = np.stack([random_state(n, rng) for _ in range(batch)])
        matrix = torch.tensor(np.stack(mats) if per_sample else mats[0], dtype=cdtype)
        out = apply_matrix(torch.tensor(states, dtype=cdtype), matrix, wires, n)
        assert out.shape == (batch, 2**n) and out.dtype == cdtype
        expected = np.stack([embed(mats[b], wires, n) @ states[b] for b in range(batch)])
        np.testing.assert_allclose(out.numpy(), expected, atol=tol, rtol=0)


@pytest.mark.parametrize("name", [n for n in ALL_GATES if GATES[n].permutation])
def test_wire_permutation_matches_dense(name, rng):
    k = GATES[name].n_wires
    table = gate(name)
    matrix_perm = [int(np.argmax(np.abs(row))) for row in table]  # out[j] = in[perm[j]]
    for _ in range(4):
        n = int(rng.integers(k, 6))
        wires = tuple(int(w) for w in rng.permutation(n)[:k])
        states = np.stack([random_state(n, rng) for _ in range(2)])
        perm = wire_permutation(matrix_perm, wires, n)
        out = apply_permutation(torch.tensor(states), perm)
        expected = states @ embed(table, wires, n).T
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-14, rtol=0)


@pytest.mark.parametrize("name", [n for n in ALL_GATES if GATES[n].diagonal])
def test_apply_diagonal_matches_dense(name, rng):
    k = GATES[name].n_wires
    n = 4
    wires = tuple(int(w) for w in rng.permutation(n)[:k])
    full = embed(gate(name, *_random_angles(name, rng)), wires, n)
    states = np.stack([random_state(n, rng) for _ in range(2)])
    out = apply_diagonal(torch.tensor(states), torch.tensor(np.diagonal(full).copy()))
    np.testing.assert_allclose(out.numpy(), states @ full.T, atol=1e-14, rtol=0)


def test_real_state_stays_real_with_real_gates(rng):
    state = torch.tensor(np.abs(random_state(3, rng)))
    m = gate_matrix("RY", torch.tensor(0.7, dtype=torch.float64)).real
    out = apply_matrix(state[None], m, (1,), 3)
    assert not out.is_complex()
    np.testing.assert_allclose(out[0].numpy(), embed(gate("RY", 0.7), (1,), 3).real @ state.numpy(), atol=1e-14)


@pytest.mark.parametrize("alias,name", [("cx", "CNOT"), ("h", "Hadamard"), ("rx", "RX"), ("ccx", "Toffoli"),
                                        ("phase", "PhaseShift"), ("isingzz", "IsingZZ"), ("x", "PauliX")])
def test_aliases_resolve(alias, name):
    assert gate_spec(alias).name == name

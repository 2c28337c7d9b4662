"""The oracle itself, checked on hand-computed cases and against a second, independent formulation."""

import math

import numpy as np
import pytest

from hqnn.sim import Circuit
from reference import I2, X, Z, embed, evaluate, gate, kron, random_unitary


def embed_by_outer_products(matrix, wires, n_qubits):
    """U = sum_{a, b} U[a, b] (x)_q F_q with F_q = |a_j><b_j| on the j-th gate wire q and I elsewhere."""
    k = len(wires)
    full = np.zeros((2**n_qubits, 2**n_qubits), dtype=complex)
    for a in range(2**k):
        for b in range(2**k):
            factors = [I2] * n_qubits
            for j, wire in enumerate(wires):
                outer = np.zeros((2, 2))
                outer[(a >> (k - 1 - j)) & 1, (b >> (k - 1 - j)) & 1] = 1
                factors[wire] = outer
            full += matrix[a, b] * kron(*factors)
    return full


def test_hand_computed_matrices():
    cnot = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    np.testing.assert_allclose(gate("CNOT"), cnot)
    np.testing.assert_allclose(embed(gate("CNOT"), (1, 0), 2), [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0],
                                                                 [0, 1, 0, 0]])
    np.testing.assert_allclose(embed(X, (0,), 2), kron(X, I2))  # wire 0 is the most significant bit
    np.testing.assert_allclose(gate("RX", math.pi), -1j * X, atol=1e-15)
    np.testing.assert_allclose(gate("Rot", 0.3, 0, -0.3), np.eye(2), atol=1e-15)
    np.testing.assert_allclose(gate("IsingZZ", math.pi), -1j * kron(Z, Z), atol=1e-15)
    np.testing.assert_allclose(gate("SX") @ gate("SX"), X, atol=1e-15)
    np.testing.assert_allclose(gate("T") @ gate("T"), gate("S"), atol=1e-15)
    np.testing.assert_allclose(gate("U3", 0.4, 0, 0), gate("RY", 0.4), atol=1e-15)


@pytest.mark.parametrize("wires", [(0,), (2,), (3, 1), (0, 3), (2, 0, 1), (1, 3, 0)])
def test_embed_agrees_with_outer_product_formula(wires, rng):
    u = random_unitary(2 ** len(wires), rng)
    np.testing.assert_allclose(embed(u, wires, 4), embed_by_outer_products(u, wires, 4), atol=1e-14)


def test_evaluate_bell_state():
    c = Circuit(2).h(0).cnot(0, 1).expval("Z0 Z1").expval("X0 X1").expval("Z1").probs((1, 0))
    np.testing.assert_allclose(evaluate(c, [], []), [1, 1, 0, 0.5, 0, 0, 0.5], atol=1e-15)
    np.testing.assert_allclose(evaluate(Circuit(2).h(0).cnot(0, 1).state(), [], []),
                               [2**-0.5, 0, 0, 2**-0.5], atol=1e-15)

"""Measurements (Pauli words, marginal probabilities, the state) against the dense reference."""

import itertools

import numpy as np
import pytest
import torch

from hqnn.sim import Circuit, expvals, marginal_probabilities, measure, probabilities, run
from hqnn.sim.circuit import Measurement, parse_pauli_word
from reference import evaluate_batch, marginal, pauli_word, random_state, random_unitary

N = 4
WORDS = ["Z0", "Z0 Z3", "X1 Y2", "Y0 X1 Z2 X3", "X0@Z1", "Z2 I1", "Y3", "X0 X1 X2 X3", "z1 y0"]


def _scrambling_circuit(n: int, rng: np.random.Generator) -> Circuit:
    """A circuit preparing a generic entangled state: random unitaries on overlapping wire pairs."""
    c = Circuit(n, n_inputs=1)
    c.ry(c.inputs[0], 0)
    for a, b in [(0, 1), (2, 3), (1, 2), (3, 0), (0, 2)]:
        if max(a, b) < n:
            c.unitary(random_unitary(4, rng), (a, b))
    return c


@pytest.mark.parametrize("word", WORDS)
def test_parse_pauli_word(word):
    terms = parse_pauli_word(word)
    letters = word.replace("@", " ").split()
    assert terms == tuple((t[0].upper(), int(t[1:])) for t in letters if t[0].upper() != "I")


@pytest.mark.parametrize("method", ["auto", "engine", "gates"])
def test_pauli_words_match_reference(method, rng):
    c = _scrambling_circuit(N, rng)
    for word in WORDS:
        c.expval(word)
    c.expval_z()
    x = torch.tensor([[0.3], [-1.1], [2.0]], dtype=torch.float64)
    out = run(c, x, method=method)
    assert out.shape == (3, len(WORDS) + N)
    np.testing.assert_allclose(out.numpy(), evaluate_batch(c, x.numpy(), []), atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", ["auto", "engine", "gates"])
@pytest.mark.parametrize("wires", [(0,), (3,), (2, 0), (3, 1, 0), (1, 3, 0, 2), (0, 1, 2, 3), (3, 2, 1, 0)])
def test_probs_of_subsets_in_given_order(wires, method, rng):
    c = _scrambling_circuit(N, rng).probs(wires)
    x = torch.tensor([[0.4], [1.3]], dtype=torch.float64)
    out = run(c, x, method=method)
    assert out.shape == (2, 2 ** len(wires))
    np.testing.assert_allclose(out.numpy(), evaluate_batch(c, x.numpy(), []), atol=1e-12, rtol=0)
    torch.testing.assert_close(out.sum(1), torch.ones(2, dtype=torch.float64))


def test_probs_order_is_significant():
    """probs((1, 0)) after X on wire 0 puts the weight on |01> (wire 1 first), not |10>."""
    c = Circuit(2).x(0).probs((1, 0))
    torch.testing.assert_close(run(c)[0], torch.tensor([0.0, 1.0, 0.0, 0.0]))


@pytest.mark.parametrize("method", ["auto", "engine", "gates"])
def test_state_matches_reference(method, rng):
    c = _scrambling_circuit(N, rng).state()
    x = torch.tensor([[0.2], [-0.7]], dtype=torch.float64)
    out = run(c, x, method=method)
    assert out.shape == (2, 2**N) and out.dtype == torch.complex128
    np.testing.assert_allclose(out.numpy(), evaluate_batch(c, x.numpy(), []), atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", ["auto", "engine", "gates"])
def test_mixed_measurements_keep_their_order(method, rng):
    c = _scrambling_circuit(N, rng)
    c.expval("X1 Y2").probs((2, 0)).expval("Z3").probs((1,)).expval("Y0 Z1")
    x = torch.tensor([[0.9]], dtype=torch.float64)
    out = run(c, x, method=method)
    assert out.shape == (1, c.n_outputs) == (1, 1 + 4 + 1 + 2 + 1)
    np.testing.assert_allclose(out.numpy(), evaluate_batch(c, x.numpy(), []), atol=1e-12, rtol=0)


@pytest.mark.parametrize("cdtype,tol", [(torch.complex64, 1e-5), (torch.complex128, 1e-12)])
def test_measure_functions_on_random_states(cdtype, tol, rng):
    n = 5
    states = np.stack([random_state(n, rng) for _ in range(3)])
    psi = torch.tensor(states, dtype=cdtype)
    probs = probabilities(psi)
    np.testing.assert_allclose(probs.numpy(), np.abs(states) ** 2, atol=tol)
    for k in (1, 2, 3):
        for wires in itertools.islice(itertools.permutations(range(n), k), 0, None, 7):
            got = marginal_probabilities(probs, wires, n)
            expected = np.stack([marginal(s, wires, n) for s in states])
            np.testing.assert_allclose(got.numpy(), expected, atol=tol)
    words = [parse_pauli_word(w) for w in ("Z0 Z4", "X1 Y2", "Y4 X0 Z2", "X3")]
    got = expvals(psi, words, n)
    expected = np.array([[np.vdot(s, pauli_word(w, n) @ s).real for w in words] for s in states])
    np.testing.assert_allclose(got.numpy(), expected, atol=tol)
    assert got.dtype == (torch.float32 if cdtype == torch.complex64 else torch.float64)


def test_measure_on_real_state(rng):
    """A real state (from real gates only) gives the same expectations as its complex copy."""
    n = 3
    state = torch.tensor(rng.standard_normal((2, 2**n)))
    state = state / state.norm(dim=1, keepdim=True)
    ms = [Measurement("expval", (0, 2), (("X", 0), ("Y", 2))), Measurement("expval", (1,), (("Z", 1),)),
          Measurement("probs", (2, 1))]
    torch.testing.assert_close(measure(state, ms, n), measure(state.to(torch.complex128), ms, n))

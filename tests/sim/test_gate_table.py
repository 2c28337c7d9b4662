"""The gate table (hqnn.sim.gates.GATES) against independent oracles, and Circuit's methods against it."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest
import scipy.linalg
import torch

from hqnn.sim import Circuit, run
from hqnn.sim.gates import GATES, GateKind, GateSpec, gate_matrix
from reference import embed, kron, ry

ONE_ANGLE = [name for name, spec in GATES.items() if spec.generator is not None]
# OpenQASM 3's stdgates.inc, plus the gates hqnn's exporter defines itself
QASM_NAMES = {"p", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "cx", "cy", "cz", "cp",
              "crx", "cry", "crz", "ch", "swap", "ccx", "cswap", "cu", "CX", "phase", "cphase", "id", "u1", "u2",
              "u3", "rxx", "ryy", "rzz"}


def _matrix(name: str, angles) -> np.ndarray:
    return gate_matrix(name, *(torch.tensor(a, dtype=torch.float64) for a in angles), dtype=torch.complex128).numpy()


@pytest.mark.parametrize("name", ONE_ANGLE)
def test_generator_gives_the_matrix(name):
    """matrix(θ) = exp(-iθG/2), checked with scipy's matrix exponential."""
    g = GATES[name].generator
    for theta in (0.0, 0.37, -2.9):
        np.testing.assert_allclose(_matrix(name, [theta]), scipy.linalg.expm(-0.5j * theta * g), atol=1e-12)


@pytest.mark.parametrize("name", [n for n, s in GATES.items() if s.factors])
def test_factors_multiply_to_the_matrix(name, rng):
    angles = rng.uniform(-np.pi, np.pi, GATES[name].n_params)
    product = np.eye(2 ** GATES[name].n_wires)
    for factor, k in GATES[name].factors:
        product = _matrix(factor, [angles[k]]) @ product
    np.testing.assert_allclose(product, _matrix(name, angles), atol=1e-12)


@pytest.mark.parametrize("name", ONE_ANGLE)
def test_shift_rule_gives_the_derivative(name, rng):
    """The rule the table names reproduces d<ψ|U†OU|ψ>/dθ from central finite differences."""
    d = 2 ** GATES[name].n_wires
    psi = rng.normal(size=d) + 1j * rng.normal(size=d)
    psi /= np.linalg.norm(psi)
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    obs = a + a.conj().T

    def f(theta):
        phi = _matrix(name, [theta]) @ psi
        return float(np.real(phi.conj() @ obs @ phi))

    theta, h = 0.41, 1e-6
    expected = (f(theta + h) - f(theta - h)) / (2 * h)
    rule = GATES[name].shift_rule()
    if rule == "two-term":
        got = (f(theta + math.pi / 2) - f(theta - math.pi / 2)) / 2
    else:
        assert rule == "four-term"
        c_plus, c_minus = (math.sqrt(2) + 1) / (4 * math.sqrt(2)), (math.sqrt(2) - 1) / (4 * math.sqrt(2))
        got = (c_plus * (f(theta + math.pi / 2) - f(theta - math.pi / 2))
               - c_minus * (f(theta + 3 * math.pi / 2) - f(theta - 3 * math.pi / 2)))
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", list(GATES))
def test_kind_and_names(name, rng):
    spec = GATES[name]
    m = _matrix(name, rng.uniform(-np.pi, np.pi, spec.n_params))
    assert m.shape == (2**spec.n_wires,) * 2
    is_diagonal = np.allclose(m, np.diag(np.diag(m)))
    is_permutation = spec.n_params == 0 and set(np.unique(m)) <= {0, 1} and np.allclose(np.abs(m).sum(0), 1)
    assert spec.kind is (GateKind.DIAGONAL if is_diagonal else GateKind.PERMUTATION if is_permutation
                         else GateKind.GENERAL)
    assert (spec.qasm is None) == (spec.qiskit is None) == (spec.qasm is None and bool(spec.factors))
    assert spec.qasm is None or spec.qasm in QASM_NAMES


def test_qiskit_names_are_quantumcircuit_methods():
    qiskit = pytest.importorskip("qiskit")
    for spec in GATES.values():
        assert spec.qiskit is None or callable(getattr(qiskit.QuantumCircuit, spec.qiskit, None)), spec.name


def _gate_methods() -> dict[str, str]:
    """Circuit's methods that append one gate through ``_add``: method name -> the gate name it adds."""
    out = {}
    for attr, fn in inspect.getmembers(Circuit, inspect.isfunction):
        found = re.findall(r'self\._add\("(\w+)"', inspect.getsource(fn))
        if found and attr not in ("gate", "_add"):
            out[attr] = found[0]
    return out


def test_every_gate_has_its_circuit_method_and_back():
    methods = _gate_methods()
    assert {spec.method for spec in GATES.values()} <= set(methods)
    for attr, name in methods.items():
        spec = GATES[name]  # every method adds a gate of the table ...
        assert getattr(Circuit, attr) is getattr(Circuit, spec.method)  # ... and is its method (or an alias)
    for spec in GATES.values():
        n_args = len(inspect.signature(getattr(Circuit, spec.method)).parameters) - 1
        assert n_args == spec.n_params + spec.n_wires, spec.name
        c = Circuit(spec.n_wires + 1, n_inputs=spec.n_params)
        wires = tuple(range(1, spec.n_wires + 1))
        getattr(c, spec.method)(*c.inputs, *wires)
        assert [(op.name, op.wires, len(op.params)) for op in c.ops] == [(spec.name, wires, spec.n_params)]


def test_a_new_gate_is_one_row(monkeypatch, rng):
    """A controlled Hadamard added as one row runs on every method and matches the dense matrix."""
    s2 = 1 / math.sqrt(2)
    ch = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, s2, s2], [0, 0, s2, -s2]])
    monkeypatch.setitem(GATES, "CH", GateSpec("CH", "ch", 2, 0, lambda dtype=torch.complex64, device=None:
                                              torch.tensor(ch, dtype=dtype, device=device), real=True,
                                              qasm="ch", qiskit="ch"))
    c = Circuit(3, n_inputs=3)
    for i in range(3):
        c.ry(c.inputs[i], i)
    c.gate("CH", (2, 0))
    c.state()
    x = torch.tensor(rng.uniform(-np.pi, np.pi, (2, 3)))
    expected = embed(ch, (2, 0), 3) @ kron(*(ry(a) for a in x[0].numpy()))[:, 0]
    for method in ("auto", "engine", "gates"):
        np.testing.assert_allclose(run(c, x, method=method)[0].numpy(), expected, atol=1e-12)

"""OpenQASM 2/3 and Qiskit export, checked by parsing and simulating the output with Qiskit."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from hqnn.exceptions import ConfigError, ShapeError, UnsupportedError
from hqnn.interop import conventions, to_qasm
from hqnn.interop._lowering import zyz_angles
from hqnn.sim import Circuit, Measurement, gate_matrix, run
from hqnn.templates.recipes import RECIPES

TOL = 1e-8


def _random_values(circuit, seed=0):
    gen = torch.Generator().manual_seed(seed)
    weights = torch.rand(circuit.n_weights, dtype=torch.float64, generator=gen) * 2 * math.pi
    inputs = torch.rand(circuit.n_inputs, dtype=torch.float64, generator=gen) * 2 - 1
    return weights, inputs


def _hqnn_state(circuit, weights, inputs) -> np.ndarray:
    state_circuit = copy.copy(circuit)
    state_circuit.measurements = [Measurement("state")]
    return run(state_circuit, inputs[None], weights)[0].numpy()


def _assert_same_state(qiskit_circuit, circuit, weights, inputs):
    """The Qiskit circuit's statevector is hqnn's (up to a global phase), after the wire-order map."""
    from qiskit.quantum_info import Statevector

    qc = qiskit_circuit.remove_final_measurements(inplace=False)
    ours = _hqnn_state(circuit, weights, inputs)
    theirs = conventions.state_from_qiskit(Statevector(qc).data, circuit.n_qubits)
    overlap = np.vdot(theirs, ours)
    assert abs(abs(overlap) - 1) < TOL
    np.testing.assert_allclose(theirs * overlap / abs(overlap), ours, atol=TOL)
    # and the per-qubit <Z_i> read the Qiskit way
    z = [1 - 2 * Statevector(qc).probabilities([conventions.qiskit_qubit(w)])[1] for w in range(circuit.n_qubits)]
    expected = run(_with_z_outputs(circuit), inputs[None], weights)[0].numpy()
    np.testing.assert_allclose(z, expected, atol=TOL)


def _with_z_outputs(circuit):
    """A copy of the circuit measuring <Z_i> on every wire."""
    z = copy.copy(circuit)
    z.measurements = []
    return z.expval_z()


def _recipe(name):
    return RECIPES[name](4, 2) if name == "strongly_entangling" else RECIPES[name]()


def _all_gates_circuit() -> Circuit:
    c = Circuit(3, n_inputs=2)
    w = c.add_weights("w", (8,))
    x = c.inputs
    c.h(0).x(1).y(2).z(0).s(1).t(2).sx(0).gate("Identity", 1)
    c.rx(0.5 * x[0], 0).ry(w[0], 1).rz(-x[1], 2).phase_shift(w[1], 0).u3(w[2], x[0], 0.3, 1)
    c.rot(w[3], 2.0 * x[1], w[4], 2).cnot(0, 1).cz(1, 2).cy(2, 0).swap(0, 2)
    c.crx(w[5], 0, 1).cry(x[0], 1, 2).crz(w[6], 2, 0).crot(w[7], x[1], 0.7, 1, 0)
    c.isingxx(x[0], 0, 1).isingyy(w[0], 1, 2).isingzz(-0.4, 2, 0).toffoli(0, 1, 2)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))
    c.unitary(q, [1])
    return c.expval_z().expval("X0 Y2").probs([2, 0])


CASES = sorted(RECIPES) + ["all_gates"]


def _case(name):
    return _all_gates_circuit() if name == "all_gates" else _recipe(name)


@pytest.mark.parametrize("name", CASES)
def test_qasm3_parses_with_openqasm3(name):
    openqasm3 = pytest.importorskip("openqasm3", reason="the openqasm3 parser is not installed "
                                    "(pip install 'openqasm3[parser]')")
    circuit = _case(name)
    weights, inputs = _random_values(circuit)
    program = openqasm3.parse(to_qasm(circuit, weights, inputs, version=3))
    assert len(program.statements) > circuit.n_qubits
    openqasm3.parse(to_qasm(circuit, version=3))  # unbound inputs and weights as `input float[64]`


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("name", CASES)
def test_qasm_imported_by_qiskit_matches_hqnn(name, version):
    qiskit = pytest.importorskip("qiskit", reason="Qiskit is not installed (pip install 'hqnn[qiskit]')")
    if version == 3:
        pytest.importorskip("qiskit_qasm3_import", reason="qiskit-qasm3-import is not installed")
    circuit = _case(name)
    weights, inputs = _random_values(circuit, seed=len(name))
    text = to_qasm(circuit, weights, inputs, version=version)
    imported = qiskit.qasm2.loads(text) if version == 2 else qiskit.qasm3.loads(text)
    _assert_same_state(imported, circuit, weights, inputs)


@pytest.mark.parametrize("name", ["rezk_qnn", "all_gates"])
def test_qasm3_unbound_parameters_import_and_bind(name):
    qiskit = pytest.importorskip("qiskit", reason="Qiskit is not installed")
    pytest.importorskip("qiskit_qasm3_import", reason="qiskit-qasm3-import is not installed")
    circuit = _case(name)
    weights, inputs = _random_values(circuit, seed=5)
    text = to_qasm(circuit, weights=weights, version=3)
    assert "input float[64] x_0;" in text and "w_0" not in text
    imported = qiskit.qasm3.loads(text)
    bound = imported.assign_parameters({p: float(inputs[int(p.name[2:])]) for p in imported.parameters})
    _assert_same_state(bound, circuit, weights, inputs)


@pytest.mark.parametrize("name", CASES)
def test_to_qiskit_bound_and_parametric(name):
    pytest.importorskip("qiskit", reason="Qiskit is not installed")
    from hqnn.interop.qiskit import to_qiskit

    circuit = _case(name)
    weights, inputs = _random_values(circuit, seed=7)
    _assert_same_state(to_qiskit(circuit, weights, inputs), circuit, weights, inputs)
    parametric = to_qiskit(circuit)
    values = {p: float((inputs if p.name.startswith("x") else weights)[p.index]) for p in parametric.parameters}
    _assert_same_state(parametric.assign_parameters(values), circuit, weights, inputs)
    measured = to_qiskit(circuit, weights, inputs, measure=True)
    assert measured.num_clbits == circuit.n_qubits


def test_qasm_text_details():
    from hqnn.templates.recipes import hcqdl_code_qnode

    text = to_qasm(hcqdl_code_qnode(), [0.3, 0.4, 0.5, 0.6], [0.1, 0.2], version=2)
    assert text.startswith('OPENQASM 2.0;\ninclude "qelib1.inc";')
    assert "rx(0.1) q[0];" in text and "rz(0.3) q[0];\nry(0.4) q[0];\nrz(0.5) q[0];" in text
    assert "measure q[1] -> c[1];" in text and "<Z0>" in text
    text3 = to_qasm(hcqdl_code_qnode(), [0.3, 0.4, 0.5, 0.6], [1e-5, 0.2])
    assert "rx(1.0e-05) q[0];" in text3 and "c[0] = measure q[0];" in text3


def test_qasm_errors():
    circuit = RECIPES["rezk_qnn"]()
    with pytest.raises(UnsupportedError, match="OpenQASM 2 has no free parameters"):
        to_qasm(circuit, weights=torch.zeros(8), version=2)
    with pytest.raises(ConfigError, match="version"):
        to_qasm(circuit, version=4)
    with pytest.raises(ShapeError, match="8 values"):
        to_qasm(circuit, weights=torch.zeros(7))
    c = Circuit(2).unitary(np.eye(4), [0, 1])
    with pytest.raises(UnsupportedError, match="QubitUnitary"):
        to_qasm(c.expval_z())


def test_zyz_angles_reproduce_random_unitaries():
    rng = np.random.default_rng(0)
    samples = [np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))[0] for _ in range(20)]
    samples += [np.array([[0, 1], [1, 0]]), np.eye(2), np.diag([1, 1j]), np.array([[0, 1j], [1j, 0]])]
    for u in samples:
        angles = [torch.tensor(a, dtype=torch.float64) for a in zyz_angles(u)]
        v = gate_matrix("U3", *angles).numpy()
        phase = np.vdot(v.ravel(), u.ravel())
        np.testing.assert_allclose(v * phase / abs(phase), u, atol=1e-10)


def test_conventions_reverse_bit_order():
    state = np.zeros(8)
    state[0b100] = 1  # hqnn: wire 0 is |1>
    qiskit_state = conventions.state_from_qiskit(state, 3)  # self-inverse
    assert qiskit_state[0b001] == 1  # Qiskit: qubit 0 is the least significant bit
    assert conventions.bitstring_from_qiskit("001") == "100"
    assert conventions.pennylane_wire_map(["a", "b"]) == {"a": 0, "b": 1}
    assert [conventions.qasm_qubit(w) for w in range(3)] == [conventions.qiskit_qubit(w) for w in range(3)] == [0, 1, 2]


def test_conventions_match_qiskit_sampling():
    pytest.importorskip("qiskit", reason="Qiskit is not installed")
    from qiskit.quantum_info import Statevector

    from hqnn.interop.qiskit import to_qiskit

    c = Circuit(3).x(0).expval_z()  # hqnn basis state |100>, index 4
    counts = Statevector(to_qiskit(c)).probabilities_dict()
    assert {conventions.bitstring_from_qiskit(k) for k, p in counts.items() if p > 0.5} == {"100"}

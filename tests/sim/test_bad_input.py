"""Bad input raises the specific hqnn exception, and its message says what was expected and what was given."""

import math

import numpy as np
import pytest
import torch

from hqnn.exceptions import ConfigError, GateError, HQNNError, ShapeError, ValueRangeError, WireError
from hqnn.sim import Circuit, gate_matrix, run
from hqnn.templates import recipes


@pytest.fixture
def circuit() -> Circuit:
    return recipes.rezk_qnn()  # 4 qubits, 4 inputs, 8 weights


def test_all_errors_are_hqnn_errors():
    for exc in (ShapeError, WireError, GateError, ValueRangeError, ConfigError):
        assert issubclass(exc, HQNNError)


@pytest.mark.parametrize("shape,given", [((2, 3), r"\(2, 3\)"), ((2, 5), r"\(2, 5\)"), ((4,), r"\(4,\)"),
                                         ((1, 2, 4), r"\(1, 2, 4\)")])
def test_wrong_input_width(circuit, shape, given):
    with pytest.raises(ShapeError, match=rf"inputs must have shape \(batch, 4\).*got {given}"):
        run(circuit, torch.zeros(shape), torch.zeros(8))


def test_missing_or_complex_inputs(circuit):
    with pytest.raises(ShapeError, match=r"reads 4 inputs; got inputs=None"):
        run(circuit, None, torch.zeros(8))
    with pytest.raises(ShapeError, match=r"real angles; got dtype torch.complex64"):
        run(circuit, torch.zeros(1, 4, dtype=torch.complex64), torch.zeros(8))


@pytest.mark.parametrize("shape,given", [((7,), r"\(7,\)"), ((2, 4), r"\(2, 4\)"), ((9,), r"\(9,\)")])
def test_wrong_weight_shape(circuit, shape, given):
    with pytest.raises(ShapeError, match=rf"weights must have shape \(8,\); got {given}"):
        run(circuit, torch.zeros(1, 4), torch.zeros(shape))


def test_missing_weights(circuit):
    with pytest.raises(ShapeError, match=r"has 8 weights; got weights=None"):
        run(circuit, torch.zeros(1, 4))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_inputs_and_weights(circuit, bad):
    x, w = torch.zeros(2, 4), torch.zeros(8)
    x[1, 2] = bad
    with pytest.raises(ValueRangeError, match=r"inputs contain NaN or infinite values"):
        run(circuit, x, w)
    w[5] = bad
    with pytest.raises(ValueRangeError, match=r"weights contain NaN or infinite values"):
        run(circuit, torch.zeros(2, 4), w)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float64("nan")])
def test_non_finite_constant_angle(bad):
    with pytest.raises(GateError, match=r"constant angles must be finite; got (nan|inf)"):
        Circuit(1).rx(bad, 0)


@pytest.mark.parametrize("call,message", [
    (lambda c: c.rx(0.1, 4), r"RX: wire 4 is out of range for a 4-qubit circuit \(valid: 0\.\.3\)"),
    (lambda c: c.cnot(0, -1), r"CNOT: wire -1 is out of range.*0\.\.3"),
    (lambda c: c.toffoli(0, 1, 7), r"Toffoli: wire 7 is out of range"),
    (lambda c: c.expval_z([0, 5]), r"expval_z: wire 5 is out of range"),
    (lambda c: c.expval("Z0 X9"), r"wire 9 is out of range"),
    (lambda c: c.probs([4]), r"probs: wire 4 is out of range"),
    (lambda c: c.unitary(np.eye(2), [4]), r"QubitUnitary: wire 4 is out of range"),
])
def test_wire_out_of_range(call, message):
    with pytest.raises(WireError, match=message):
        call(Circuit(4))


@pytest.mark.parametrize("call,message", [
    (lambda c: c.cnot(1, 1), r"CNOT: wires must be distinct; got \(1, 1\)"),
    (lambda c: c.crx(0.2, 2, 2), r"CRX: wires must be distinct; got \(2, 2\)"),
    (lambda c: c.toffoli(0, 1, 0), r"Toffoli: wires must be distinct; got \(0, 1, 0\)"),
    (lambda c: c.probs([1, 1]), r"probs: wires must be distinct; got \(1, 1\)"),
    (lambda c: c.unitary(np.eye(4), [3, 3]), r"QubitUnitary: wires must be distinct"),
    (lambda c: c.expval("Z1 X1"), r"each wire at most once; got 'Z1 X1'"),
])
def test_repeated_wires(call, message):
    with pytest.raises(WireError, match=message):
        call(Circuit(4))


def test_wrong_number_of_wires():
    with pytest.raises(WireError, match=r"CNOT acts on 2 wire\(s\); got wires \(0, 1, 2\)"):
        Circuit(4).gate("CNOT", (0, 1, 2))
    with pytest.raises(WireError, match=r"RX acts on 1 wire\(s\); got wires \(0, 1\)"):
        Circuit(4).gate("RX", (0, 1), 0.3)


@pytest.mark.parametrize("name", ["FOO", "CCNOT2", "rxx", ""])
def test_unknown_gate_name(name):
    with pytest.raises(GateError, match=rf"unknown gate '{name}'; valid gates: .*CNOT.*RX"):
        Circuit(2).gate(name, 0)
    with pytest.raises(GateError, match=rf"unknown gate '{name}'"):
        gate_matrix(name)


@pytest.mark.parametrize("name,wires,angles,message", [
    ("RX", 0, (), r"RX takes 1 angle\(s\); got 0"),
    ("RX", 0, (0.1, 0.2), r"RX takes 1 angle\(s\); got 2"),
    ("Rot", 0, (0.1, 0.2), r"Rot takes 3 angle\(s\); got 2"),
    ("CNOT", (0, 1), (0.3,), r"CNOT takes 0 angle\(s\); got 1"),
    ("U3", 1, (1.0,), r"U3 takes 3 angle\(s\); got 1"),
])
def test_wrong_number_of_angles(name, wires, angles, message):
    with pytest.raises(GateError, match=message):
        Circuit(2).gate(name, wires, *angles)


def test_wrong_number_of_angles_in_methods_and_gate_matrix():
    with pytest.raises(TypeError, match=r"rot\(\) missing 2 required positional arguments: 'omega' and 'wire'"):
        Circuit(2).rot(0.1, 0)  # typed methods: Python names the missing arguments (and type checkers see them)
    with pytest.raises(GateError, match=r"Rot takes 3 angle\(s\); got 1"):
        Circuit(2).gate("Rot", 0, 0.1)
    with pytest.raises(GateError, match=r"CRX takes 1 angle\(s\); got 2"):
        gate_matrix("CRX", torch.tensor(0.1), torch.tensor(0.2))


def test_bad_angle_values():
    c = Circuit(2, n_inputs=2)
    with pytest.raises(GateError, match=r"an angle must be a number.*got 'pi'"):
        c.rx("pi", 0)
    with pytest.raises(ShapeError, match=r"index 2 is out of range for inputs of shape \(2,\)"):
        c.inputs[2]
    other = Circuit(2, n_inputs=5)
    with pytest.raises(ShapeError, match=r"RY: input 4 is out of range; the circuit reads 2 inputs"):
        c.ry(other.inputs[4], 0)
    w = Circuit(2).add_weights("w", (3,))
    with pytest.raises(ShapeError, match=r"RZ: weight 2 does not belong to this circuit \(0 weights\)"):
        c.rz(w[2], 1)


def test_non_unitary_qubit_unitary():
    with pytest.raises(GateError, match=r"QubitUnitary: the matrix is not unitary"):
        Circuit(2).unitary([[1, 0], [0, 2]], [0])
    with pytest.raises(GateError, match=r"not unitary"):
        Circuit(2).unitary(np.ones((4, 4)) / 2, [0, 1])
    with pytest.raises(ShapeError, match=r"QubitUnitary on 2 wire\(s\) needs a \(4, 4\) matrix; got \(2, 2\)"):
        Circuit(2).unitary(np.eye(2), [0, 1])


@pytest.mark.parametrize("word", ["Q3", "Z", "X1 Q0", "3Z", "Zx"])
def test_bad_pauli_word(word):
    with pytest.raises(GateError, match=rf"letters X, Y, Z or I each followed by a wire.*got '{word}'"):
        Circuit(4).expval(word)


def test_bad_circuit_and_weights_declarations():
    with pytest.raises(WireError, match=r"n_qubits must be >= 1; got 0"):
        Circuit(0)
    with pytest.raises(ShapeError, match=r"n_inputs must be >= 0; got -1"):
        Circuit(2, n_inputs=-1)
    c = Circuit(2)
    c.add_weights("w", (2, 3))
    with pytest.raises(ShapeError, match=r"'w' are already declared with shape \(2, 3\)"):
        c.add_weights("w", 4)
    with pytest.raises(ShapeError, match=r"non-negative; got \(2, -1\)"):
        c.add_weights("v", (2, -1))


def test_state_must_be_the_only_measurement():
    with pytest.raises(ShapeError, match=r"state\(\) must be the circuit's only measurement"):
        Circuit(2).expval_z().state()
    with pytest.raises(ShapeError, match=r"only measurement"):
        Circuit(2).state().probs([0])


def test_unknown_method(circuit):
    with pytest.raises(ConfigError, match=r"unknown simulation method 'fast'; valid: auto, native, engine, gates"):
        run(circuit, torch.zeros(1, 4), torch.zeros(8), method="fast")


def test_errors_leave_the_circuit_unchanged():
    c = Circuit(2).h(0)
    for bad in (lambda: c.cnot(0, 2), lambda: c.gate("FOO", 0), lambda: c.rx(math.nan, 0)):
        with pytest.raises(HQNNError):
            bad()
    assert [op.name for op in c.ops] == ["Hadamard"]

"""The drop-in TorchLayer on what QML image models written in PennyLane use, against PennyLane itself.

Each case builds ``hqnn.interop.pennylane.TorchLayer`` and ``qml.qnn.TorchLayer`` with the same
arguments (no ``n_inputs``: the width comes from the first call) and the same float64 weights, and
compares values and gradients (inputs and weights) to 1e-8. PennyLane runs one sample at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hqnn.exceptions import ShapeError, UnsupportedError

qml = pytest.importorskip("pennylane", reason="PennyLane is not installed (pip install 'hqnn[pennylane]')")
from hqnn.interop.pennylane import TorchLayer  # noqa: E402

TOL = 1e-8


def _qnode(n_wires, device="default.qubit"):
    return lambda func: qml.qnode(qml.device(device, wires=n_wires), interface="torch")(func)


def _z(n):
    return [qml.expval(qml.PauliZ(i)) for i in range(n)]


def _compare(qnode, shapes, x, seed=0, low=0.0, high=2 * np.pi):
    """Values and gradients of both layers on ``x (B, n)``; returns hqnn's layer."""
    gen = torch.Generator().manual_seed(seed)
    init = {name: low + (high - low) * torch.rand(shape if isinstance(shape, tuple) else (shape,),
                                                   dtype=torch.float64, generator=gen)
            for name, shape in shapes.items()}
    ours = TorchLayer(qnode, shapes, init_method=init or None).double()
    theirs = qml.qnn.TorchLayer(qnode, shapes, init_method=init or None).double()
    theirs.load_state_dict(ours.state_dict())
    results = []
    for layer, per_sample in ((ours, False), (theirs, True)):
        xs = x.clone().requires_grad_(True)
        out = torch.stack([layer(row) for row in xs]) if per_sample else layer(xs)
        grads = torch.autograd.grad(out.sum() + (out**2).sum(), [xs, *layer.parameters()])
        results.append((out.detach(), grads))
    (out_a, grads_a), (out_b, grads_b) = results
    assert out_a.shape == out_b.shape
    torch.testing.assert_close(out_a, out_b, atol=TOL, rtol=0)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)
    return ours


def _x(batch, width, seed=1, low=-1.0, high=1.0):
    gen = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(batch, width, dtype=torch.float64, generator=gen)


# ---- templates -------------------------------------------------------------------------------------
@_qnode(3)
def amplitude_normalize(inputs, weights):
    qml.AmplitudeEmbedding(inputs, wires=range(3), normalize=True)
    qml.StronglyEntanglingLayers(weights, wires=range(3))
    return [*_z(3), qml.probs(wires=[2, 0])]


@_qnode(3)
def amplitude_pad(inputs, weights):
    qml.AmplitudeEmbedding(inputs, wires=range(3), pad_with=0.0)
    qml.BasicEntanglerLayers(weights, wires=range(3))
    return _z(3)


@_qnode(3)
def amplitude_subset(inputs, weights):
    qml.RX(weights[0], wires=0)
    qml.AmplitudeEmbedding(inputs, wires=[2, 1], normalize=True, pad_with=0.5)
    qml.CNOT(wires=[0, 2])
    qml.RY(weights[1], wires=1)
    return [qml.expval(qml.PauliZ(0) @ qml.PauliX(1)), qml.expval(qml.PauliY(2))]


@_qnode(3)
def iqp(inputs, weights):
    qml.IQPEmbedding(inputs, wires=range(3), n_repeats=2)
    qml.BasicEntanglerLayers(weights, wires=range(3), rotation=qml.RY)
    return _z(3)


@_qnode(3)
def iqp_pattern(inputs):
    qml.IQPEmbedding(inputs, wires=range(3), pattern=[[0, 2], [1, 0]])
    return [qml.expval(qml.PauliX(i)) for i in range(3)]


@_qnode(3)
def qaoa(inputs, weights):
    qml.QAOAEmbedding(inputs, weights, wires=range(3), local_field="X")
    return _z(3)


@_qnode(4)
def random_layers(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(4))
    qml.RandomLayers(weights, wires=range(4), ratio_imprim=0.5, seed=1234)
    return _z(4)


@_qnode(4)
def random_layers_default_seed(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(4), rotation="Y")
    qml.RandomLayers(weights, wires=range(4), rotations=[qml.RX, qml.RZ], imprimitive=qml.CZ)
    return _z(4)


@_qnode(3)
def two_design(inputs, init, weights):
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.SimplifiedTwoDesign(init, weights, wires=range(3))
    return _z(3)


@_qnode(4)
def basic_rz(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(4), rotation="X")
    qml.BasicEntanglerLayers(weights, wires=range(4), rotation=qml.RZ)
    return [qml.expval(qml.PauliY(i)) for i in range(4)]


@_qnode(4)
def strongly_custom(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(4))
    qml.StronglyEntanglingLayers(weights, wires=range(4), ranges=[3, 2], imprimitive=qml.CZ)
    return _z(4)


TEMPLATES = [  # (qnode, weight_shapes, inputs)
    (amplitude_normalize, {"weights": (2, 3, 3)}, _x(3, 8, low=0.0)),
    (amplitude_normalize, {"weights": (1, 3, 3)}, _x(3, 8, seed=5)),  # signed amplitudes
    (amplitude_pad, {"weights": (2, 3)}, _x(3, 5)),
    (amplitude_subset, {"weights": 2}, _x(3, 3)),
    (iqp, {"weights": (1, 3)}, _x(3, 3)),
    (iqp_pattern, {}, _x(3, 3)),
    (qaoa, {"weights": qml.QAOAEmbedding.shape(2, 3)}, _x(3, 2)),  # fewer features than wires
    (random_layers, {"weights": (2, 5)}, _x(3, 4)),
    (random_layers_default_seed, {"weights": (1, 6)}, _x(3, 4)),
    (two_design, {"init": 3, "weights": qml.SimplifiedTwoDesign.shape(2, 3)[1]}, _x(3, 3)),
    (basic_rz, {"weights": (2, 4)}, _x(3, 4)),
    (strongly_custom, {"weights": (2, 4, 3)}, _x(3, 4)),
]


@pytest.mark.parametrize("qnode, shapes, x", TEMPLATES,
                         ids=[f"{c[0].func.__name__}-{k}" for k, c in enumerate(TEMPLATES)])
def test_templates_match_pennylane(qnode, shapes, x):
    _compare(qnode, shapes, x)


def test_amplitude_embedding_unnormalised_state_and_errors():
    @_qnode(2)
    def raw(inputs):  # normalize=False: PennyLane keeps the vector as given when it has norm 1
        qml.AmplitudeEmbedding(inputs, wires=range(2))
        qml.Hadamard(wires=0)
        return [qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliX(1)), qml.probs(wires=[1])]

    x = _x(3, 4, seed=2)
    _compare(raw, {}, x / x.norm(dim=1, keepdim=True))  # gradients include the radial direction
    with pytest.raises(ValueError, match="norm"):
        TorchLayer(raw, {})(x)

    @_qnode(2)
    def late(inputs):
        qml.Hadamard(wires=1)
        qml.AmplitudeEmbedding(inputs, wires=range(2), normalize=True)
        return _z(2)

    with pytest.raises(UnsupportedError, match="AmplitudeEmbedding on wires"):
        TorchLayer(late, {})(x)


def test_input_width_is_inferred_and_cached_per_width():
    @_qnode(3)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(3))  # accepts up to 3 features, like PennyLane
        qml.StronglyEntanglingLayers(weights, wires=range(3))
        return _z(3)

    layer = _compare(circuit, {"weights": (1, 3, 3)}, _x(2, 2))
    _compare(circuit, {"weights": (1, 3, 3)}, _x(2, 3))
    layer(_x(2, 3))
    assert sorted(layer.traces) == [2, 3] and layer.circuit.n_inputs == 3
    with pytest.raises(ValueError, match="Features must be of length 3 or less"):  # PennyLane's own check
        layer(_x(2, 4))

    @_qnode(2)
    def reads_four(inputs):
        qml.RX(inputs[3], wires=0)
        return qml.expval(qml.PauliZ(0))

    with pytest.raises(ShapeError, match="reads more than the 2 inputs"):
        TorchLayer(reads_four, {})(_x(1, 2))
    assert TorchLayer(reads_four, {}, n_inputs=4).circuit.n_inputs == 4  # the optional hint traces now


# ---- observables -------------------------------------------------------------------------------------
@_qnode(3)
def observables(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.BasicEntanglerLayers(weights, wires=range(3))
    h = qml.Hamiltonian([0.5, -1.2, 0.3], [qml.PauliZ(0) @ qml.PauliZ(1), qml.PauliX(2), qml.Identity(1)])
    herm = np.array([[1.0, 0.3, 0, 0.2j], [0.3, -0.5, 0.1, 0], [0, 0.1, 0.2, 0], [-0.2j, 0, 0, 0.7]])
    return [qml.expval(h), qml.expval(qml.dot([0.7, 0.2], [qml.PauliY(0), qml.PauliZ(0) @ qml.PauliX(2)])),
            qml.expval(qml.Hermitian(herm, wires=[2, 0])), qml.expval(2.0 * qml.PauliZ(1)),
            qml.expval(qml.PauliZ(0) @ qml.PauliZ(1)), qml.probs(wires=[1, 2])]


@_qnode(2)
def single_hamiltonian(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(2), rotation="Y")
    qml.CNOT(wires=[0, 1])
    qml.RX(weights[0], wires=1)
    return qml.expval(qml.Hamiltonian([1.5, 0.5], [qml.PauliZ(0), qml.PauliX(0) @ qml.PauliY(1)]))


def test_hamiltonian_hermitian_and_pauli_sums_match_pennylane():
    layer = _compare(observables, {"weights": (2, 3)}, _x(3, 3))
    trace = layer.traces[3]
    # each Pauli word is measured once: Z0 Z1 serves the Hamiltonian and the last expval
    words = [m.paulis for m in trace.circuit.measurements if m.kind == "expval"]
    assert len(words) == len(set(words))
    assert _compare(single_hamiltonian, {"weights": 2}, _x(4, 2)).traces[2].single_expval


# ---- noise channels ----------------------------------------------------------------------------------
_KRAUS = [np.sqrt(0.8) * np.eye(2), np.sqrt(0.2) * np.array([[0, 1], [1, 0]])]


@_qnode(2, "default.mixed")
def noisy(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(2))
    qml.BitFlip(0.1, wires=0)
    qml.DepolarizingChannel(weights[0], wires=1)
    qml.CNOT(wires=[0, 1])
    qml.AmplitudeDamping(weights[1], wires=0)
    qml.PhaseFlip(0.2, wires=1)
    qml.RY(inputs[0] + weights[2], wires=1)
    qml.PhaseDamping(0.3, wires=1)
    qml.GeneralizedAmplitudeDamping(0.2, 0.3, wires=0)
    qml.ThermalRelaxationError(0.1, 100.0, 80.0, 10.0, wires=1)
    qml.QubitChannel(_KRAUS, wires=0)
    return [qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliX(1)), qml.probs(wires=[0, 1])]


def test_noise_channels_run_on_density_matrices_and_match_pennylane():
    layer = _compare(noisy, {"weights": 3}, _x(3, 2), low=0.05, high=0.4)
    assert layer.traces[2].circuit.has_noise

    @_qnode(1, "default.mixed")
    def reset(inputs):
        qml.RX(inputs[0], wires=0)
        qml.ResetError(0.1, 0.2, wires=0)
        return qml.expval(qml.PauliZ(0))

    with pytest.raises(UnsupportedError, match="ResetError"):
        TorchLayer(reset, {})(_x(1, 1))


# ---- other operations users write ------------------------------------------------------------------
@_qnode(2)
def misc_ops(inputs, weights):
    qml.BasisState(np.array([1, 0]), wires=[0, 1])
    qml.AngleEmbedding(inputs, wires=range(2))
    qml.ctrl(qml.RY(weights[0], wires=1), control=0)
    qml.DiagonalQubitUnitary(np.exp(1j * np.array([0.1, 0.2, 0.3, 0.4])), wires=[0, 1])
    qml.PauliRot(weights[1] * inputs[0], "XY", wires=[0, 1])
    return [qml.expval(qml.Projector([1, 0], wires=[0, 1])), qml.expval(qml.PauliX(0))]


@_qnode(2)
def state_out(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(2))
    qml.CRX(weights[0], wires=[0, 1])
    return qml.state()


def test_projector_ctrl_constant_preparations_and_state_match_pennylane():
    _compare(misc_ops, {"weights": 2}, _x(3, 2))
    _compare(state_out, {"weights": 2}, _x(3, 2))  # the real part, as qml.qnn.TorchLayer returns it

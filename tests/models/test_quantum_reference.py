"""The models' quantum layers reproduce the spec's PennyLane reference numbers (seed_models.md section 5)
and an independent dense simulation of the HCQDL circuits."""

import math

import numpy as np
import pytest
import torch

from hqnn.models import create_model

SQDR_INPUTS = torch.linspace(0, 1, 27)
SQDR_WEIGHTS = 0.05 * torch.arange(54.0)


def run_layer(layer, inputs, weights):
    with torch.no_grad():
        layer.weights.copy_(weights.flatten())
        return layer(inputs[None])[0]


def test_cnn_qnn_rezk_circuit():
    layer = create_model("cnn_qnn").head[1]
    out = run_layer(layer, torch.tensor([0.1, 0.2, 0.3, 0.4]), 0.1 * torch.arange(8.0) + 0.1)
    torch.testing.assert_close(out, torch.tensor([0.044039, 0.383632, -0.090252, -0.013936]), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "entangler,expected",
    [
        ("chain", [0.162388, 0.203979, 0.332539, 0.285034, 0.108530, -0.060336, -0.184346, -0.280338, -0.455552]),
        ("ring", [0.162886, 0.203979, 0.332539, 0.285034, 0.108530, -0.060336, -0.184346, -0.280338, -0.454028]),
    ],
)
def test_sqdr_reupload_circuit(entangler, expected):
    layer = create_model("sqdr_cnn", entangler=entangler).quantum
    out = run_layer(layer, SQDR_INPUTS, SQDR_WEIGHTS)
    torch.testing.assert_close(out, torch.tensor(expected), atol=1e-5, rtol=0)


def test_sqdr_noisy_circuit_with_fixed_damping_index():
    layer = create_model("sqdr_cnn", noise=True, damping_index=0).quantum
    out = run_layer(layer, SQDR_INPUTS, SQDR_WEIGHTS)
    expected = [0.572089, 0.593158, 0.658028, 0.683956, 0.657296, 0.614079, 0.589112, 0.593600, 0.619231]
    torch.testing.assert_close(out, torch.tensor(expected), atol=1e-5, rtol=0)


def test_resnet_qhead_circuit():
    layer = create_model("resnet34_qhead", depth=18, stem="small").q_head
    out = run_layer(layer, torch.tensor([0.1, -0.2, 0.3, -0.4]), 0.1 * torch.arange(24.0))
    torch.testing.assert_close(out, torch.tensor([-0.156795, -0.245745, 0.030677, -0.010243]), atol=1e-5, rtol=0)


# A dense 4-qubit oracle (wire 0 = most significant bit) for the HCQDL circuits, which have no
# PennyLane reference numbers in the spec.
I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Z = np.diag([1.0, -1.0]).astype(complex)


def rot(axis, angle):
    pauli = {"X": X, "Y": np.array([[0, -1j], [1j, 0]]), "Z": Z}[axis]
    return math.cos(angle / 2) * I2 - 1j * math.sin(angle / 2) * pauli


def on_wire(gate, wire, n=4):
    out = np.eye(1)
    for w in range(n):
        out = np.kron(out, gate if w == wire else I2)
    return out


def controlled(gate, control, target, n=4):
    p0, p1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    return on_wire(p0, control, n) + on_wire(p1, control, n) @ on_wire(gate, target, n)


def expval_z(ops, n=4):
    state = np.zeros(2**n, dtype=complex)
    state[0] = 1
    for op in ops:
        state = op @ state
    return np.array([np.real(state.conj() @ on_wire(Z, w, n) @ state) for w in range(n)])


X_IN = np.array([0.3, -0.7, 0.9, 0.1])


def test_hcqdl_crx_ring_against_dense_oracle():
    theta = np.array([0.4, 1.1, -0.6, 2.0])
    ops = [on_wire(rot("Y", X_IN[i]), i) for i in range(4)]
    ops += [controlled(rot("X", t), c, (c + 1) % 4) for t, c in zip(theta, [3, 2, 1, 0])]
    layer = create_model("hcqdl").quantum
    out = run_layer(layer, torch.tensor(X_IN, dtype=torch.float32), torch.tensor(theta, dtype=torch.float32))
    np.testing.assert_allclose(out.numpy(), expval_z(ops), atol=1e-5)


def test_hcqdl_figure2_against_dense_oracle():
    theta = np.linspace(-1.0, 1.5, 12).reshape(3, 4)
    ladder = [controlled(X, i, i + 1) for i in range(3)]
    ops = [on_wire(rot("Y", X_IN[i]), i) for i in range(4)]
    ops += [on_wire(rot("X", theta[0, i]), i) for i in range(4)] + ladder
    ops += [on_wire(rot("Y", theta[1, i]), i) for i in range(4)] + ladder
    ops += [on_wire(rot("Z", theta[2, i]), i) for i in range(4)]
    layer = create_model("hcqdl_figure2").quantum
    out = run_layer(layer, torch.tensor(X_IN, dtype=torch.float32), torch.tensor(theta, dtype=torch.float32))
    np.testing.assert_allclose(out.numpy(), expval_z(ops), atol=1e-5)

"""The simulators a user would pick instead of hqnn, as benchmark backends (``pip install 'hqnn[bench-peers]'``).

Each is built from the hqnn circuit gate for gate (``Rot`` as RZ·RY·RZ, the angles of the same inputs and
weights) and run the way its documentation recommends for batched training:

=================  ==========================================================================================
backend            what runs
=================  ==========================================================================================
tensorcircuit      TensorCircuit-NG on JAX, complex64, the default ``greedy`` contractor (its FAQ: custom
                   contractors pay off above ~14 qubits and depth 6). Forward: ``K.jit(K.vmap(f))``;
                   forward+backward: ``K.jit(K.vectorized_value_and_grad(loss, argnums=(0, 1),
                   vectorized_argnums=0))``, the docs' recipe for QML (inputs batched, weight gradients summed).
                   Each batch size is compiled on its first call; the harness records that time apart.
pyqtorch           ``pyq.QuantumCircuit`` moved to complex64 (twice as fast as its complex128 default here), run
                   once on a batched zero state, one ``Observable(Z(i))`` per output, ``DiffMode.AD``.
qiskit-ml          ``EstimatorQNN`` (its default exact estimator, parameter-shift gradients,
                   ``input_gradients=True``) inside a ``TorchConnector``.
=================  ==========================================================================================

Every module maps ``(B, n_inputs) -> (B, n_outputs)`` and holds the flat weight vector as one Parameter.
TensorCircuit's module is not a torch autograd graph: its ``sum_backward(x)`` runs the value-and-grad function
and writes the gradients into ``x.grad`` and ``weights.grad``, as ``forward(x).sum().backward()`` would.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import nn

from hqnn.exceptions import ConfigError, require
from hqnn.sim.circuit import CONST, INPUT, Angle, Circuit
from hqnn.sim.gates import GATES

__all__ = ["PEER_PACKAGES", "PyQTorchLayer", "TensorCircuitLayer", "gate_list", "qiskit_ml_layer"]

EXTRA = "bench-peers"
# backend -> the modules it imports
PEER_PACKAGES = {"tensorcircuit": ("tensorcircuit", "jax"), "pyqtorch": ("pyqtorch",),
                 "qiskit-ml": ("qiskit_machine_learning",)}
_ROTATIONS = ("RX", "RY", "RZ", "CRX", "CRY", "CRZ")
_FIXED = ("CNOT", "CZ")


def gate_list(circuit: Circuit) -> list[tuple[str, tuple[int, ...], tuple[Angle, ...]]]:
    """The circuit as ``(name, wires, angles)`` in the gates every peer has (a gate with ``factors`` in
    the gate table, such as ``Rot``, as those factors: RZ, RY, RZ).

    Raises:
        ConfigError: a gate, channel or measurement the peers are not given here.
    """
    if circuit.has_noise or any(m.kind != "expval" or len(m.paulis) != 1 or m.paulis[0][0] != "Z"
                                for m in circuit.measurements):
        raise ConfigError("the peer backends run noiseless circuits measured as <Z_i> per wire; got "
                          f"{circuit!r} with measurements {circuit.measurements}")
    gates = []
    for op in circuit.ops:
        spec = GATES.get(op.name)
        parts = [(name, (op.params[k],)) for name, k in spec.factors] if spec is not None and spec.factors \
            else [(op.name, op.params)]
        if any(name not in _ROTATIONS + _FIXED for name, _ in parts):
            raise ConfigError(f"the peer backends take the gates {', '.join(_ROTATIONS + _FIXED)} and gates made "
                              f"of them (Rot, CRot); the circuit has {op.name}")
        gates += [(name, op.wires, params) for name, params in parts]
    return gates


def _angle(a: Angle, inputs, weights):
    """``scale * inputs[i]``, ``scale * weights[i]`` or the constant, for any array type that indexes."""
    if a.source == CONST:
        return a.scale
    return a.scale * (inputs if a.source == INPUT else weights)[a.index]


def _measured_wires(circuit: Circuit) -> list[int]:
    return [m.paulis[0][1] for m in circuit.measurements]


class TensorCircuitLayer(nn.Module):
    """TensorCircuit-NG on JAX: ``forward`` is ``jit(vmap(expvals))``; ``sum_backward`` is the jitted
    ``vectorized_value_and_grad`` of the summed outputs, with respect to the inputs and the weights."""

    jit_compiles = True  # the first call at each batch size compiles: timed apart by the harness

    def __init__(self, circuit: Circuit):
        super().__init__()
        tc = require("tensorcircuit", EXTRA)
        require("jax", EXTRA)
        logging.getLogger("tensorcircuit").setLevel(logging.WARNING)  # it logs every contraction path at INFO
        K = tc.set_backend("jax")
        tc.set_dtype("complex64")
        tc.set_contractor("greedy")
        gates, wires, n_qubits = gate_list(circuit), _measured_wires(circuit), circuit.n_qubits
        self.weights = nn.Parameter(torch.zeros(circuit.n_weights))

        def expvals(x, w):  # one sample: x (n_inputs,), w (n_weights,) -> (n_outputs,)
            c = tc.Circuit(n_qubits)
            for name, on, angles in gates:
                if angles:
                    getattr(c, name.lower())(*on, theta=_angle(angles[0], x, w))
                else:
                    getattr(c, name.lower())(*on)
            return K.stack([K.real(c.expectation_ps(z=[i])) for i in wires])

        self._forward = K.jit(K.vmap(expvals, vectorized_argnums=0))
        self._value_and_grad = K.jit(K.vectorized_value_and_grad(
            lambda x, w: K.sum(expvals(x, w)), argnums=(0, 1), vectorized_argnums=0))

    def _jax_args(self, x: torch.Tensor):
        import jax.numpy as jnp

        return jnp.asarray(x.detach().cpu().numpy()), jnp.asarray(self.weights.detach().cpu().numpy())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_inputs) -> (B, n_outputs)`` float32, without an autograd graph (see :meth:`sum_backward`)."""
        import numpy as np

        return torch.from_numpy(np.array(self._forward(*self._jax_args(x))))

    def sum_backward(self, x: torch.Tensor) -> None:
        """Accumulate d(sum of outputs)/dx into ``x.grad`` and d/dweights into ``weights.grad``."""
        import numpy as np

        _, (grad_x, grad_w) = self._value_and_grad(*self._jax_args(x))
        for tensor, grad in ((x, grad_x), (self.weights, grad_w)):
            grad = torch.from_numpy(np.array(grad)).to(tensor.dtype)
            tensor.grad = grad if tensor.grad is None else tensor.grad + grad


class PyQTorchLayer(nn.Module):
    """pyqtorch: the circuit run once on a batched zero state, ``<Z_i>`` by one Observable per output."""

    def __init__(self, circuit: Circuit):
        super().__init__()
        pyq = require("pyqtorch", EXTRA)
        self._pyq, self.n_qubits = pyq, circuit.n_qubits
        self.names: dict[Angle, str] = {}  # one pyqtorch parameter per distinct input or weight angle
        ops = []
        for name, on, angles in gate_list(circuit):
            params = [a.scale if a.source == CONST else self.names.setdefault(a, f"theta_{len(self.names)}")
                      for a in angles]
            ops.append(getattr(pyq, name)(*on, *params))
        with warnings.catch_warnings():  # torch's notice that complex module buffers are a new feature
            warnings.simplefilter("ignore", UserWarning)
            self.circuit = pyq.QuantumCircuit(circuit.n_qubits, ops).to(torch.complex64)
            self.observables: Any = nn.ModuleList(pyq.Observable(pyq.Z(i)).to(torch.complex64)
                                             for i in _measured_wires(circuit))
        self.weights = nn.Parameter(torch.zeros(circuit.n_weights))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_inputs) -> (B, n_outputs)``; differentiable by PyTorch's autograd (``DiffMode.AD``)."""
        columns = x.T  # (n_inputs, B): an input angle is a batch of B values
        values = {name: _angle(a, columns, self.weights) for a, name in self.names.items()}
        state = self._pyq.zero_state(self.n_qubits, batch_size=x.shape[0], dtype=torch.complex64)
        state = self._pyq.run(self.circuit, state, values)  # (2, ..., 2, B)
        return torch.stack([o.expectation(state) for o in self.observables], dim=-1)


def qiskit_ml_layer(circuit: Circuit) -> nn.Module:
    """Qiskit Machine Learning: an ``EstimatorQNN`` of the circuit (inputs and weights as ParameterVectors,
    ``Z_i`` as SparsePauliOps) in a ``TorchConnector``, whose Parameter ``weight`` is the flat weight vector."""
    require("qiskit_machine_learning", EXTRA)
    logging.getLogger("qiskit").setLevel(logging.WARNING)  # it logs every transpiler pass at INFO
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    inputs, weights = ParameterVector("x", circuit.n_inputs), ParameterVector("w", circuit.n_weights)
    qc = QuantumCircuit(circuit.n_qubits)
    for name, on, angles in gate_list(circuit):
        method = "cx" if name == "CNOT" else name.lower()
        getattr(qc, method)(*(_angle(a, inputs, weights) for a in angles), *on)
    observables = [SparsePauliOp.from_sparse_list([("Z", [i], 1.0)], num_qubits=circuit.n_qubits)
                   for i in _measured_wires(circuit)]
    qnn = EstimatorQNN(circuit=qc, observables=observables, input_params=list(inputs),
                       weight_params=list(weights), input_gradients=True)
    return TorchConnector(qnn, initial_weights=torch.zeros(circuit.n_weights).numpy())

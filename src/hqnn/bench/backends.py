"""The simulators the benchmark compares, each built as a ``torch.nn.Module`` ``(B, n_inputs) -> (B, n_outputs)``.

=====================  ==========================================================================
backend                what runs
=====================  ==========================================================================
hqnn                   :class:`hqnn.qnn.QuantumLayer` (compiled plan, ``method="auto"``: the native
                       kernel on the CPU where it applies, else the PyTorch engine)
hqnn-engine            the same layer with ``method="engine"`` (the fused PyTorch engine, any device)
hqnn-gates             the same layer with ``method="gates"`` (hqnn's plain gate-by-gate path)
hqnn-torchlayer        ``hqnn.interop.pennylane.TorchLayer`` on the hand-written QNode (drop-in)
pennylane-default      ``qml.qnn.TorchLayer``, ``default.qubit``, ``diff_method="backprop"``
pennylane-lightning    ``qml.qnn.TorchLayer``, ``lightning.qubit``, ``diff_method="adjoint"``
pergate-torch          :class:`hqnn.bench.pergate.PerGateLayer` (TorchQuantum-style per-gate bmm)
pennylane-mixed        ``qml.qnn.TorchLayer``, ``default.mixed``, backprop, one call per sample
                       (PennyLane's channels do not take a batch of strengths)
tensorcircuit          TensorCircuit-NG on JAX, ``jit(vmap)`` and ``jit(vectorized_value_and_grad)``
pyqtorch               pyqtorch's ``QuantumCircuit``, batched, PyTorch autograd
qiskit-ml              Qiskit Machine Learning's ``EstimatorQNN`` in a ``TorchConnector``
=====================  ==========================================================================

The last three are the peers of :mod:`hqnn.bench.peers` (extra ``bench-peers``); :data:`PEERS` are the
backends hqnn is ranked against (the per-gate baseline stands in for TorchQuantum).

Every backend gets the same flat weight vector; PennyLane backends stay on the CPU.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import torch
from torch import nn

from hqnn.bench.peers import PEER_PACKAGES
from hqnn.exceptions import ConfigError, MissingDependencyError, require
from hqnn.sim.circuit import Circuit
from hqnn.templates import noisy_recipes
from hqnn.templates.recipes import RECIPES

__all__ = ["BACKENDS", "Backend", "CircuitCase", "PEERS", "PerSample", "available_backends", "flat_weight_grad",
           "make_backend"]

BACKENDS = ("hqnn", "hqnn-engine", "hqnn-gates", "hqnn-torchlayer", "pennylane-default", "pennylane-lightning",
            "pergate-torch", "pennylane-mixed", "tensorcircuit", "pyqtorch", "qiskit-ml")
PEERS = ("pennylane-default", "pennylane-lightning", "pergate-torch", "tensorcircuit", "pyqtorch", "qiskit-ml")
_PENNYLANE_DEVICES = {
    "hqnn-torchlayer": ("default.qubit", "backprop"),
    "pennylane-default": ("default.qubit", "backprop"),
    "pennylane-lightning": ("lightning.qubit", "adjoint"),
    "pennylane-mixed": ("default.mixed", "backprop"),
}


@dataclass(frozen=True)
class CircuitCase:
    """A benchmark circuit: a label and the recipe (with its arguments) that builds it."""

    name: str
    recipe: str
    args: tuple = ()

    def build(self) -> Circuit:
        recipe = RECIPES.get(self.recipe) or getattr(noisy_recipes, self.recipe, None)
        if recipe is None:
            raise ConfigError(f"unknown recipe {self.recipe!r}; valid: {', '.join(RECIPES)}, "
                              f"{', '.join(noisy_recipes.__all__)}")
        return recipe(*self.args)


class PerSample(nn.Module):
    """Calls ``layer`` on one sample at a time and stacks the outputs: ``(B, n_in) -> (B, n_out)``."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.layer(row) for row in x])

    def sum_backward(self, x: torch.Tensor) -> None:
        """``forward(x).sum().backward()`` one sample at a time (the same gradients): as a user of a
        per-sample device would run it, so that only one sample's autograd graph is alive at once."""
        for row in x:
            self.layer(row).sum().backward()


@dataclass
class Backend:
    """A backend ready to time: its name, module and the device its inputs must be on."""

    name: str
    module: nn.Module
    device: torch.device


def available_backends() -> list[str]:
    """The backends whose packages are installed here (in :data:`BACKENDS` order)."""
    out = []
    for name in BACKENDS:
        if name == "hqnn-torchlayer":
            try:
                if not hasattr(importlib.import_module("hqnn.interop.pennylane"), "TorchLayer"):
                    continue
            except ImportError:
                continue
        elif name in PEER_PACKAGES:
            if any(importlib.util.find_spec(m) is None for m in PEER_PACKAGES[name]):
                continue
        elif name.startswith("pennylane"):
            if importlib.util.find_spec("pennylane") is None:
                continue
            if name == "pennylane-lightning" and importlib.util.find_spec("pennylane_lightning") is None:
                continue
        out.append(name)
    return out


def _weight_slices(module: nn.Module, circuit: Circuit) -> list[tuple[nn.Parameter, slice]]:
    """Each parameter of ``module`` with its slice of the flat weight vector: the whole vector when the
    parameter is flat, else the circuit's weight block of the parameter's name and shape."""
    blocks = circuit.weight_slices()
    out, held = [], 0
    for pname, p in module.named_parameters():
        key = pname.rsplit(".", 1)[-1]
        if p.ndim == 1 and p.numel() == circuit.n_weights:
            sl = slice(0, circuit.n_weights)
        elif key in blocks and tuple(p.shape) == tuple(blocks[key][1]):
            sl = blocks[key][0]
        else:
            raise ConfigError(f"cannot map the benchmark weights onto parameter {pname!r} of shape "
                              f"{tuple(p.shape)}; blocks: { {k: shape for k, (_, shape) in blocks.items()} }")
        out.append((p, sl))
        held += p.numel()
    if held != circuit.n_weights:
        raise ConfigError(f"the module holds {held} weights; the circuit has {circuit.n_weights}")
    return out


def _load_weights(module: nn.Module, circuit: Circuit, flat: torch.Tensor) -> None:
    """Copy the flat weight vector ``(n_weights,)`` into ``module``'s parameters."""
    with torch.no_grad():
        for p, sl in _weight_slices(module, circuit):
            p.copy_(flat[sl].view(p.shape).to(p.dtype))


def flat_weight_grad(module: nn.Module, circuit: Circuit) -> torch.Tensor:
    """The gradients held in ``module``'s parameters as one flat float64 vector ``(n_weights,)`` (zeros where none)."""
    out = torch.zeros(circuit.n_weights, dtype=torch.float64)
    for p, sl in _weight_slices(module, circuit):
        if p.grad is not None:
            out[sl] = p.grad.detach().cpu().double().reshape(-1)
    return out


def _pennylane_layer(name: str, case: CircuitCase, circuit: Circuit) -> nn.Module:
    from hqnn.bench.pennylane_circuits import PENNYLANE_CIRCUITS

    qml = require("pennylane", "pennylane")
    if case.recipe not in PENNYLANE_CIRCUITS:
        raise ConfigError(f"no PennyLane version of recipe {case.recipe!r}; written: {', '.join(PENNYLANE_CIRCUITS)}")
    qfunc, weight_shapes = PENNYLANE_CIRCUITS[case.recipe](qml, *(case.args or (circuit.n_qubits,)))
    device_name, diff_method = _PENNYLANE_DEVICES[name]
    qnode = qml.QNode(qfunc, qml.device(device_name, wires=circuit.n_qubits), interface="torch",
                      diff_method=diff_method)
    if name == "hqnn-torchlayer":
        return importlib.import_module("hqnn.interop.pennylane").TorchLayer(qnode, weight_shapes,
                                                                            n_inputs=circuit.n_inputs)
    layer = qml.qnn.TorchLayer(qnode, weight_shapes)
    return PerSample(layer) if name == "pennylane-mixed" else layer


def make_backend(name: str, case: CircuitCase, circuit: Circuit, weights: torch.Tensor,
                 device: torch.device | str = "cpu") -> Backend:
    """Build backend ``name`` for ``circuit`` (built from ``case``) holding ``weights (n_weights,)``.

    Args:
        name: one of :data:`BACKENDS`.
        case: the circuit's recipe (PennyLane backends rebuild the circuit from it by hand).
        circuit: the hqnn circuit.
        weights: the flat weight vector every backend gets.
        device: where hqnn backends and the per-gate baseline run; PennyLane and the peers stay on the CPU.

    Raises:
        ConfigError: an unknown backend; MissingDependencyError: its package is not installed.
    """
    from hqnn.bench import peers
    from hqnn.bench.pergate import PerGateLayer
    from hqnn.qnn import QuantumLayer

    device = torch.device(device)
    module: nn.Module
    if name == "hqnn":
        module = QuantumLayer(circuit)
    elif name in ("hqnn-engine", "hqnn-gates"):
        module = QuantumLayer(circuit, method=name.split("-")[1])
    elif name == "pergate-torch":
        module = PerGateLayer(circuit)
    elif name in PEER_PACKAGES:
        for package in PEER_PACKAGES[name]:  # MissingDependencyError naming the extra when one is absent
            require(package, "bench-peers")
        module = {"tensorcircuit": peers.TensorCircuitLayer, "pyqtorch": peers.PyQTorchLayer,
                  "qiskit-ml": peers.qiskit_ml_layer}[name](circuit)
        device = torch.device("cpu")
    elif name in _PENNYLANE_DEVICES:
        if name not in available_backends():
            raise MissingDependencyError(f"backend {name!r} is not available here (its package is not installed)")
        module = _pennylane_layer(name, case, circuit)
        device = torch.device("cpu") if name != "hqnn-torchlayer" else device
    else:
        raise ConfigError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    _load_weights(module, circuit, weights)
    return Backend(name, module.to(device), device)

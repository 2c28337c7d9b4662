"""Study arms: variants of a hybrid model that isolate what its circuit contributes.

An arm is a way of building the model a study trains; all arms share the trunk, the recipe, the
split and the seeds, so their differences are the circuit's doing:

* ``hybrid``: the model as registered.
* ``twin``: the model's classical twin (a different registered model, ``<name>_classical``, with a
  ``Linear`` + tanh of the circuit's widths in its place); nothing to change here.
* ``no_entanglement``: every circuit with its entangling gates removed. Public QML benchmarks
  (Bowles, Ahmed & Schuld 2024, "Better than classical? The subtle art of benchmarking quantum
  machine learning models") found the unentangled circuit often scores as well as the entangled
  one. Parameter-free multi-qubit gates (CNOT, CZ, CY, Toffoli, a multi-qubit QubitUnitary) are
  dropped; a controlled rotation (CRX, CRY, CRZ, CRot) becomes the same rotation on its target
  wire, and an Ising coupling ``IsingXX(θ) = exp(−iθ X⊗X/2)`` becomes ``RX(θ)`` on both of its
  wires (``RY`` / ``RZ`` for YY / ZZ), so that every trainable weight still acts on the state and
  the arm has exactly the hybrid's parameters. SWAP is kept: it only relabels wires and cannot
  entangle. Noise channels and measurements are kept as they are.
* ``frozen``: the circuit's weights fixed at their initial values, the circuit a random feature
  map. The weights become a buffer instead of a Parameter, so that no optimiser sees them and no
  ``set_phase`` (two-phase models re-enable gradients per phase) can unfreeze them; they stay in
  the ``state_dict`` under the same key.

Example:
    >>> from hqnn.models import create_model
    >>> model = apply_arm(create_model("cnn_qnn", in_chans=1, img_size=16), "no_entanglement")
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.qnn import QuantumLayer
from hqnn.sim.circuit import Circuit, Op

__all__ = ["ARMS", "DEFAULT_ARMS", "apply_arm", "circuit_without_entanglement", "quantum_layers"]

log = logging.getLogger(__name__)

ARMS = ("hybrid", "twin", "no_entanglement", "frozen")
DEFAULT_ARMS = ("hybrid", "twin", "no_entanglement")

# two-wire gates with angles -> (the single-qubit gate that keeps their angles, the wires it acts on:
# "target" = the last wire, "both" = each wire)
_LOCAL_EQUIVALENT = {
    "CRX": ("RX", "target"),
    "CRY": ("RY", "target"),
    "CRZ": ("RZ", "target"),
    "CRot": ("Rot", "target"),
    "IsingXX": ("RX", "both"),
    "IsingYY": ("RY", "both"),
    "IsingZZ": ("RZ", "both"),
}
_NOT_ENTANGLING = {"SWAP"}  # multi-qubit gates that map product states to product states


def quantum_layers(model: nn.Module) -> list[tuple[str, QuantumLayer]]:
    """The model's :class:`QuantumLayer` modules with their qualified names."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, QuantumLayer)]


def _local_ops(op: Op) -> list[Op]:
    """``op`` with its entanglement removed: itself, its single-qubit equivalent(s), or nothing."""
    if op.kind != "gate" or len(op.wires) < 2 or op.name in _NOT_ENTANGLING:
        return [op]
    if op.name in _LOCAL_EQUIVALENT:
        name, where = _LOCAL_EQUIVALENT[op.name]
        wires = op.wires[-1:] if where == "target" else op.wires
        return [Op(name, (wire,), op.params) for wire in wires]
    if op.params:
        raise ConfigError(f"no_entanglement has no rule for the parametrised gate {op.name} on wires {op.wires}")
    return []


def circuit_without_entanglement(circuit: Circuit) -> tuple[Circuit, int]:
    """A copy of ``circuit`` with every entangling gate removed or made local (see the module text).

    Args:
        circuit: the circuit.

    Returns:
        The new circuit (same wires, inputs, weight blocks and measurements) and the number of
        gates removed or replaced (0: the circuit had nothing entangling).

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> circuit_without_entanglement(rezk_qnn())[1]  # the 4 CNOTs of the ring
        4
    """
    local = Circuit(circuit.n_qubits, circuit.n_inputs)
    for name, shape in circuit.weight_shapes.items():
        local.add_weights(name, shape)
    changed = 0
    for op in circuit.ops:
        replacement = _local_ops(op)
        changed += replacement != [op]
        local.ops.extend(replacement)
    local.measurements = list(circuit.measurements)
    return local, changed


def _replace_module(model: nn.Module, qualified_name: str, module: nn.Module) -> None:
    parent_name, _, child = qualified_name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def _remove_entanglement(model: nn.Module, layers: list[tuple[str, QuantumLayer]]) -> None:
    for name, layer in layers:
        circuit, changed = circuit_without_entanglement(layer.circuit)
        if not changed:
            log.info("no_entanglement: %s has no entangling gate; this arm equals hybrid there", name or "the model")
            continue
        # a fresh layer draws initial weights; keep the global RNG untouched so the arm starts from
        # the same state (and the same later draws) as the hybrid, then hand it the hybrid's weights
        with torch.random.fork_rng(devices=[]):
            local = QuantumLayer(
                circuit, init=layer.init, init_kwargs=layer.init_kwargs, method=layer.method,
                diff_method=layer.diff_method, shots=layer.shots, noise_model=layer.noise_model,
                generator=layer.generator,
            )
        local.weights = layer.weights
        _replace_module(model, name, local)
        log.info("no_entanglement: %s: %d entangling gate(s) removed or made local", name or "the model", changed)


def _freeze(layers: list[tuple[str, QuantumLayer]]) -> None:
    for _, layer in layers:
        weights = layer.weights.detach()
        del layer.weights
        layer.register_buffer("weights", weights)


def apply_arm(model: nn.Module, arm: str) -> nn.Module:
    """Turn a freshly built model into ``arm``, in place (see the module text).

    Args:
        model: the model as :func:`~hqnn.models.create_model` built it.
        arm: one of :data:`ARMS`.

    Returns:
        ``model``.

    Raises:
        ConfigError: an unknown arm; ``hybrid``, ``no_entanglement`` or ``frozen`` on a model without a
            circuit layer; ``twin`` on a model with one (the twin is the registered classical model).
    """
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; valid arms: {', '.join(ARMS)}")
    layers = quantum_layers(model)
    name = type(model).__name__
    if arm == "twin":
        if layers:
            raise ConfigError(
                f"the twin arm is the classical twin model, without a circuit; this {name} has {len(layers)} circuit "
                "layer(s): build the twin (e.g. <model>_classical) instead"
            )
        return model
    if not layers:
        raise ConfigError(
            f"the {arm} arm needs a model with a quantum circuit layer; this {name} has none (a classical model "
            "or twin): compare a hybrid model"
        )
    if arm == "no_entanglement":
        _remove_entanglement(model, layers)
    elif arm == "frozen":
        _freeze(layers)
    return model

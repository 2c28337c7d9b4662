"""Execution plans: a circuit compiled once into stages run on every batch.

This module holds the generic gate-by-gate plan and :func:`compile_circuit`, which chooses the
fastest plan that the circuit's structure allows and keeps it on the circuit object.
"""

from __future__ import annotations

from typing import Protocol

import torch

from hqnn.exceptions import ConfigError, UnsupportedError
from hqnn.sim.apply import check_finite_angles, run_gates
from hqnn.sim.circuit import Circuit
from hqnn.sim.density import DensityPlan
from hqnn.sim.engine import EnginePlan
from hqnn.sim.measure import measure
from hqnn.sim.native import NativeProgram, unavailable_reason
from hqnn.sim.state import zero_state

__all__ = ["Plan", "GatePlan", "compile_circuit", "METHODS"]

METHODS = ("auto", "native", "engine", "gates")
"""auto: the native kernel where it applies (CPU, supported gates and measurements), else the engine;
native: the kernel or an error; engine: the PyTorch fused engine; gates: one gate at a time."""


class Plan(Protocol):
    """A compiled circuit. ``execute(inputs (B, n_in), weights (n_w,), complex dtype) -> (B, n_out)``."""

    circuit: Circuit
    checks_finite: bool  # True: execute() raises ValueRangeError itself for NaN or infinite angles

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor: ...


class GatePlan:
    """One gate at a time on the full statevector: general, and the reference for the fast plans."""

    checks_finite = False

    def __init__(self, circuit: Circuit):
        self.circuit, self.n_qubits = circuit, circuit.n_qubits

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        state = zero_state(self.n_qubits, inputs.shape[0], dtype, inputs.device)
        state = run_gates(state, self.circuit.ops, inputs, weights, self.n_qubits)
        return measure(state, self.circuit.measurements, self.n_qubits)


class NativePlan:
    """The native CPU kernel (:mod:`hqnn.sim.native`); the engine where it cannot run (another device,
    or no C compiler), which with ``strict`` is an error instead, and where the engine is faster
    (a few samples on 13-14 qubits, unless ``strict``)."""

    checks_finite = True

    def __init__(self, circuit: Circuit, strict: bool):
        self.circuit = circuit
        self.program = NativeProgram(circuit)  # UnsupportedError when the circuit cannot be lowered
        self.strict = strict

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        reason = f"it runs on the CPU, got device {inputs.device}" if inputs.device.type != "cpu" else \
            unavailable_reason(inputs.dtype)
        if reason is None and (self.strict or self.program.suits(inputs.shape[0])):
            return self.program.execute(inputs, weights)
        if self.strict:
            raise UnsupportedError(f"method='native' cannot run: {reason}")
        check_finite_angles(inputs, weights)
        return self.program.engine.execute(inputs, weights, dtype)


def _build(circuit: Circuit, method: str) -> Plan:
    if circuit.has_noise:
        return DensityPlan(circuit)
    if method == "gates":
        return GatePlan(circuit)
    if method == "engine":
        return EnginePlan(circuit)
    try:
        return NativePlan(circuit, strict=method == "native")
    except UnsupportedError:
        if method == "native":
            raise
        return EnginePlan(circuit)


def compile_circuit(circuit: Circuit, method: str = "auto") -> Plan:
    """The plan for ``circuit``, built on the first call and kept on the circuit object (no global
    cache) until its ops or measurements change (by appending, or by assigning new lists).
    :class:`~hqnn.qnn.QuantumLayer` compiles at construction and holds its plan.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown simulation method {method!r}; valid: {', '.join(METHODS)}")
    remembered = circuit.__dict__.setdefault("_plans", {})  # dropped when the circuit is copied or pickled
    # holding the lists themselves (not their ids) means a replaced list can never look unchanged
    stamp = (circuit.ops, len(circuit.ops), circuit.measurements, len(circuit.measurements),
             circuit.n_inputs, circuit.n_weights)
    hit = remembered.get(method)
    if hit is not None and all(a is b if isinstance(a, list) else a == b for a, b in zip(hit[0], stamp)):
        return hit[1]
    plan = _build(circuit, method)
    remembered[method] = (stamp, plan)
    return plan

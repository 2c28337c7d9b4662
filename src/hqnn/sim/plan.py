"""Execution plans: a circuit compiled once (cached by structure) into stages run on every batch.

This module holds the plan cache and the generic gate-by-gate plan; faster stage kinds are
chosen by :func:`compile_circuit` where the circuit's structure allows them.
"""

from __future__ import annotations

import torch

from hqnn.exceptions import ConfigError
from hqnn.sim.circuit import Circuit
from hqnn.sim.measure import measure
from hqnn.sim.state import zero_state

__all__ = ["Plan", "GatePlan", "compile_circuit", "METHODS"]

METHODS = ("auto", "gates")


class Plan:
    """A compiled circuit. ``execute(inputs (B, n_in), weights (n_w,), complex dtype) -> (B, n_out)``."""

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        self.n_qubits = circuit.n_qubits

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        raise NotImplementedError


class GatePlan(Plan):
    """One gate at a time on the full statevector: general, and the reference for the fast plans."""

    def execute(self, inputs, weights, dtype):
        from hqnn.sim.execute import run_gates

        state = zero_state(self.n_qubits, inputs.shape[0], dtype, inputs.device)
        state = run_gates(state, self.circuit.ops, inputs, weights, self.n_qubits)
        return measure(state, self.circuit.measurements, self.n_qubits)


_CACHE: dict[tuple, Plan] = {}
_CACHE_SIZE = 256


class EnginePlan(Plan):
    """The fused engine (:mod:`hqnn.sim.engine`): product states, fused local layers, permutations, diagonals."""

    def __init__(self, circuit: Circuit):
        super().__init__(circuit)
        from hqnn.sim.engine import EnginePlanCore

        self.core = EnginePlanCore(circuit)

    def execute(self, inputs, weights, dtype):
        return self.core.execute(inputs, weights, dtype)


def _build(circuit: Circuit, method: str) -> Plan:
    if circuit.has_noise:
        from hqnn.sim.density import DensityPlan

        return DensityPlan(circuit)
    return GatePlan(circuit) if method == "gates" else EnginePlan(circuit)


def compile_circuit(circuit: Circuit, method: str = "auto") -> Plan:
    """The plan for ``circuit``, built once per structure and method and then reused."""
    if method not in METHODS:
        raise ConfigError(f"unknown simulation method {method!r}; valid: {', '.join(METHODS)}")
    key = (circuit.structure_key(), method)
    plan = _CACHE.get(key)
    if plan is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        plan = _CACHE[key] = _build(circuit, method)
    return plan

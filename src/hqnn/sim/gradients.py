"""Gradient methods: backprop, adjoint, parameter-shift and finite differences, through torch autograd.

Every method but backprop works on the circuit *lifted* to per-sample angles: each non-constant
gate angle or channel strength becomes a column of θ ``(B, P)`` computed (differentiably) from the
inputs and weights, and a custom ``torch.autograd.Function`` maps θ to the outputs. Its backward
gives dL/dθ, and autograd carries it on to the inputs and weights, so every method works inside any
torch model.

* "adjoint": statevector forward keeping only the final state; the backward sweeps the gates in
  reverse applying U† to the state and to λ = H_eff ψ (O(1) stored states). Noise-free, exact shots.
* "parameter-shift": [f(θ+π/2) - f(θ-π/2)]/2 for single-frequency gates (RX, RY, RZ, PhaseShift, Rot,
  U3, IsingXX/YY/ZZ: each angle enters through one exp(-iθG/2) with G² = I, up to a global phase);
  the four-term rule with shifts π/2 and 3π/2 for CRX, CRY, CRZ, CRot (Wierichs et al. 2022). Works
  with noise (density matrices) and shots; channel strengths use central differences.
* "finite-diff": central differences (step h) on every column.
"""

from __future__ import annotations

import copy
import math

import torch

from hqnn.exceptions import ConfigError, UnsupportedError
from hqnn.sim.apply import apply_matrix
from hqnn.sim.circuit import CONST, INPUT, Angle, Circuit, Op
from hqnn.sim.density import DensityPlan, needs_uniform
from hqnn.sim.execute import angle_value, op_matrix, prepare_arguments
from hqnn.sim.gates import GATES, complex_dtype_for
from hqnn.sim.measure import measure
from hqnn.sim.plan import compile_circuit
from hqnn.sim.shots import sample_measurements
from hqnn.sim.state import zero_state

__all__ = ["DIFF_METHODS", "LiftedCircuit", "execute", "lift"]

DIFF_METHODS = ("backprop", "adjoint", "parameter-shift", "finite-diff")

_C_PLUS, _C_MINUS = (math.sqrt(2) + 1) / (4 * math.sqrt(2)), (math.sqrt(2) - 1) / (4 * math.sqrt(2))
_HALF_PI = math.pi / 2


def lift(circuit: Circuit) -> tuple[Circuit, list[Angle], list[str]]:
    """The circuit with every non-constant angle read from its own input column.

    Returns:
        ``(lifted circuit with P inputs and no weights, the P original angles, each column's rule:
        "two-term", "four-term" or "finite-diff")``.

    Raises:
        UnsupportedError: a trainable angle on a gate without a shift rule.
    """
    lifted = copy.copy(circuit)
    lifted.ops, lifted.weight_shapes, lifted.n_weights = [], {}, 0
    columns: list[Angle] = []
    rules: list[str] = []
    for op in circuit.ops:
        params = []
        for k, a in enumerate(op.params):
            if a.source == CONST or op.kind == "readout":
                params.append(a)
                continue
            rule = "finite-diff" if op.kind == "channel" else GATES[op.name].shift_rule(k) if op.name in GATES else None
            if rule is None:
                raise UnsupportedError(f"no shift rule for a trainable {op.name}")
            rules.append(rule)
            params.append(Angle(INPUT, len(columns)))
            columns.append(a)
        lifted.ops.append(Op(op.name, op.wires, tuple(params), op.matrix, op.kind))
    lifted.n_inputs = len(columns)
    return lifted, columns, rules


_LIFTED: dict[tuple, tuple[Circuit, list[Angle], list[str]]] = {}


def _lifted(circuit: Circuit):
    key = circuit.structure_key()
    if key not in _LIFTED:
        if len(_LIFTED) >= 64:
            _LIFTED.pop(next(iter(_LIFTED)))
        _LIFTED[key] = lift(circuit)
    return _LIFTED[key]


class LiftedCircuit:
    """A circuit compiled for "adjoint", "parameter-shift" or "finite-diff": validated and lifted
    once, then :meth:`execute` runs any batch (what :class:`hqnn.qnn.QuantumLayer` calls).

    Raises:
        UnsupportedError: a state() measurement, adjoint with noise, or a trainable angle without a shift rule.
    """

    def __init__(self, circuit: Circuit, diff_method: str, shots: int | None = None,
                 generator: torch.Generator | None = None, step: float | None = None):
        if any(m.kind == "state" for m in circuit.measurements):
            raise UnsupportedError(f"diff_method {diff_method!r} needs expval or probs measurements, not state()")
        if diff_method == "adjoint" and circuit.has_noise:
            raise UnsupportedError("the adjoint method is for noise-free circuits; use 'parameter-shift' or 'backprop'")
        self.lifted, self.columns, rules = _lifted(circuit)
        self.rules = ["finite-diff"] * len(rules) if diff_method == "finite-diff" else rules
        self.plan = compile_circuit(self.lifted)
        self.uniform = needs_uniform(circuit)
        self.function = _Adjoint if diff_method == "adjoint" else _Shift
        self.shots, self.generator, self.step = shots, generator, step

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(B, n_out)`` from ``inputs (B, n_in)`` and ``weights (n_w,)`` of one real dtype."""
        batch = inputs.shape[0]
        uniform = torch.rand(batch, generator=self.generator, dtype=inputs.dtype).to(inputs.device) \
            if self.uniform else None
        theta = torch.stack([angle_value(a, inputs, weights, uniform).expand(batch) for a in self.columns], dim=1) \
            if self.columns else inputs.new_zeros(batch, 0)  # (B, P)
        return self.function.apply(theta, self)[0]

    def evaluate(self, theta: torch.Tensor) -> torch.Tensor:
        out = self.plan.execute(theta, theta.new_zeros(0), complex_dtype_for(theta.dtype))
        if self.shots:
            out = sample_measurements(out, self.lifted.measurements, self.shots, self.generator)
        return out


def _shift_terms(rule: str, step: float) -> list[tuple[float, float]]:
    if rule == "two-term":
        return [(_HALF_PI, 0.5), (-_HALF_PI, -0.5)]
    if rule == "four-term":
        return [(_HALF_PI, _C_PLUS), (-_HALF_PI, -_C_PLUS), (3 * _HALF_PI, -_C_MINUS), (-3 * _HALF_PI, _C_MINUS)]
    return [(step, 0.5 / step), (-step, -0.5 / step)]


def _fold_vmap(function, in_dims, theta, lifted):
    """The vmap rule of both functions: rows are independent circuits, so a vmapped dimension of θ
    folds into the batch (one batched run, and no in-place gate building under vmap)."""
    theta = theta.movedim(in_dims[0], 0)  # (V, B, P)
    outs = function.apply(theta.flatten(0, 1), lifted)
    return tuple(o.unflatten(0, theta.shape[:2]) if o.numel() else o.expand(theta.shape[0], *o.shape)
                 for o in outs), (0, 0)


class _Shift(torch.autograd.Function):
    """θ (B, P) -> (outputs (B, n_out), nothing); backward by shifted evaluations, one batched call per column.
    (Forward/setup_context style with a vmap rule: torch.compile and torch.func trace it.)"""

    @staticmethod
    def vmap(info, in_dims, theta, lifted):
        return _fold_vmap(_Shift, in_dims, theta, lifted)

    @staticmethod
    def forward(theta, lifted):
        with torch.no_grad():
            return lifted.evaluate(theta), theta.new_zeros(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        theta, ctx.lifted = inputs
        ctx.save_for_backward(theta)

    @staticmethod
    def backward(ctx, grad_out, _grad_nothing):
        (theta,) = ctx.saved_tensors
        lifted, (batch, width) = ctx.lifted, theta.shape
        step = lifted.step or (1e-6 if theta.dtype == torch.float64 else 1e-3)
        columns = []
        with torch.no_grad():
            for p, rule in enumerate(lifted.rules):
                terms = _shift_terms(rule, step)
                shifts = torch.zeros(len(terms), 1, width, dtype=theta.dtype, device=theta.device)
                shifts[:, 0, p] = torch.tensor([s for s, _ in terms], dtype=theta.dtype)
                values = lifted.evaluate((theta + shifts).reshape(-1, width)).reshape(len(terms), batch, -1)
                coefs = torch.tensor([c for _, c in terms], dtype=values.dtype, device=values.device)
                columns.append((grad_out * torch.einsum("s,sbo->bo", coefs, values)).sum(dim=1))  # (B,)
        return torch.stack(columns, dim=1) if columns else torch.zeros_like(theta), None


def _wire_view(state: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """``(B, 2**n) -> (B, rest, 2**k)`` with ``wires`` as the last axis (as apply_matrix moves them)."""
    batch = state.shape[0]
    psi = state.reshape((batch,) + (2,) * n_qubits).movedim([w + 1 for w in wires],
                                                            list(range(n_qubits + 1 - len(wires), n_qubits + 1)))
    return psi.reshape(batch, -1, 2 ** len(wires))


class _Adjoint(torch.autograd.Function):
    """θ (B, P) -> (outputs, final state); backward un-computes the state gate by gate. (torch.func,
    not torch.autograd, inside backward, so that torch.func transforms nest through it.)"""

    @staticmethod
    def vmap(info, in_dims, theta, lifted):
        return _fold_vmap(_Adjoint, in_dims, theta, lifted)

    @staticmethod
    def forward(theta, lifted):
        circuit, empty = lifted.lifted, theta.new_zeros(0)
        dtype = complex_dtype_for(theta.dtype)
        with torch.no_grad():
            state = zero_state(circuit.n_qubits, theta.shape[0], dtype, theta.device)
            for op in circuit.ops:
                state = apply_matrix(state, op_matrix(op, theta, empty, dtype), op.wires, circuit.n_qubits)
            return measure(state, circuit.measurements, circuit.n_qubits), state

    @staticmethod
    def setup_context(ctx, inputs, output):
        theta, ctx.lifted = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(theta, output[1])

    @staticmethod
    def backward(ctx, grad_out, _grad_state):
        theta, state = ctx.saved_tensors
        circuit, n, empty = ctx.lifted.lifted, ctx.lifted.lifted.n_qubits, theta.new_zeros(0)
        # PyTorch's gradient of a real L w.r.t. complex ψ is 2 ∂L/∂ψ*, i.e. 2 H_eff ψ.
        lam = torch.func.vjp(lambda psi: measure(psi, circuit.measurements, n), state)[1](grad_out)[0] / 2
        # the trainable gates' matrices once, with their pullback: they also undo the gates below
        trainable = [i for i, op in enumerate(circuit.ops) if any(a.source == INPUT for a in op.params)]
        mats, pullback = torch.func.vjp(
            lambda th: [op_matrix(circuit.ops[i], th, empty, state.dtype) for i in trainable], theta)
        by_op, psi, overlaps = dict(zip(trainable, mats)), state, {}
        for i in reversed(range(len(circuit.ops))):
            op = circuit.ops[i]
            u = by_op[i] if i in by_op else op_matrix(op, theta, empty, state.dtype)
            dagger = u.conj().transpose(-1, -2)
            psi = apply_matrix(psi, dagger, op.wires, n)
            if i in by_op:
                overlaps[i] = _wire_view(lam, op.wires, n).conj().transpose(1, 2) @ _wire_view(psi, op.wires, n)
            lam = apply_matrix(lam, dagger, op.wires, n)
        # dL/dθ is twice the gradient of Σ Re Σ g ⊙ U(θ), whose gradient for U is conj(g)
        return 2 * pullback([overlaps[i].conj() for i in trainable])[0], None


def execute(circuit: Circuit, inputs=None, weights=None, *, diff_method: str = "backprop", shots: int | None = None,
            generator: torch.Generator | None = None, dtype=None, step: float | None = None) -> torch.Tensor:
    """Run a circuit (clean or noisy) with a chosen gradient method and optional finite shots.

    Args:
        circuit: the circuit; with channels it runs on density matrices.
        inputs: ``(B, n_inputs)``; weights: ``(n_weights,)``.
        diff_method: "backprop", "adjoint", "parameter-shift" or "finite-diff".
        shots: samples per measurement (None: exact). Needs a method other than backprop/adjoint.
        generator: a CPU torch.Generator for shots and random channel strengths.
        dtype: force the precision.
        step: finite-difference step (default 1e-6 in float64, 1e-3 in float32).

    Returns:
        ``(B, n_outputs)``.

    Raises:
        ConfigError: unknown method, or shots with backprop/adjoint.
        UnsupportedError: adjoint with noise or a state() measurement.
    """
    if diff_method not in DIFF_METHODS:
        raise ConfigError(f"unknown diff_method {diff_method!r}; valid: {', '.join(DIFF_METHODS)}")
    if shots is not None and diff_method in ("backprop", "adjoint"):
        raise ConfigError(f"shots={shots} needs diff_method 'parameter-shift' or 'finite-diff'; got {diff_method!r}")
    inputs, weights, cdtype, device, batch = prepare_arguments(circuit, inputs, weights, dtype)
    if diff_method == "backprop":
        plan = compile_circuit(circuit)
        if isinstance(plan, DensityPlan):  # a noisy circuit: random channel strengths draw from generator
            return plan.execute(inputs, weights, cdtype, generator=generator)
        return plan.execute(inputs, weights, cdtype)
    return LiftedCircuit(circuit, diff_method, shots, generator, step).execute(inputs, weights, cdtype)

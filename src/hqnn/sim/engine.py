"""The fused execution engine: stages of local layers, permutations and diagonals.

Gates are lowered to primitives (:mod:`hqnn.sim.prims`) and scheduled into as few stages as the
circuit's commutation structure allows: every primitive joins the earliest stage of its kind that
comes after the last stage touching its wires (diagonals commute with each other). Each stage
compiles to one frozen step (ProductStep, LocalStep, PermStep, PhaseStep or DenseStep). Then:

* all single-qubit primitives of the circuit get their 2x2 matrices from one vectorised
  ``C + cos(kθ)·A + sin(kθ)·S`` (one for shared angles, one for per-sample angles); each wire's
  primitives within a stage multiply into one 2x2;
* the first local stage acting on ``|0...0>`` builds the product state directly (a Kronecker
  product of per-wire 2-vectors) instead of applying n gates;
* a later local stage applies Kronecker blocks of up to MAX_CHUNK consecutive wires, one matmul
  each (shared by the batch, or batched per sample);
* a permutation stage (any CNOT/SWAP/Toffoli network) is one gather;
* a diagonal stage (CZ, CRZ, IsingZZ, ...) is one phase vector ``exp(i(θ·A + c))``, one multiply;
* diagonal stages just before Z-basis measurements are dropped (they cannot change them);
* ⟨Z⟩ words come from ``|ψ|²`` with one matmul by a precomputed sign matrix.

The matrices are built with autograd (small tensors); the evolution of the ``(B, 2**n)`` state and
its backward pass are one autograd node (:class:`_Evolve`) whose backward sweeps the stages in
reverse, undoing each (ψ_prev = U†ψ) instead of storing it: memory stays at a few states whatever
the depth. The measurement is ordinary autograd ops on the final state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from hqnn.exceptions import UnsupportedError
from hqnn.sim.apply import apply_matrix, wire_permutation
from hqnn.sim.circuit import CONST, INPUT, Circuit
from hqnn.sim.measure import measure, pauli_signs
from hqnn.sim.prims import Prim, lower_op
from hqnn.sim.state import zero_state

__all__ = ["Stage", "schedule", "EnginePlan", "apply_function", "RotationGroup", "ProductStep", "LocalStep",
           "PermStep", "PhaseStep", "DenseStep", "Step"]


@dataclass
class Stage:
    kind: str  # "local", "perm", "diag", "dense"
    prims: list[Prim] = field(default_factory=list)
    wires: set[int] = field(default_factory=set)

    def add(self, prim: Prim) -> None:
        self.prims.append(prim)
        self.wires.update(prim.wires)


def schedule(prims: list[Prim]) -> list[Stage]:
    """Group primitives into stages, moving each as early as commutation allows (see module doc)."""
    stages: list[Stage] = []
    for p in prims:
        wires = set(p.wires)
        last = -1
        for i in range(len(stages) - 1, -1, -1):
            if stages[i].wires & wires and not (p.kind == "diag" and stages[i].kind == "diag"):
                last = i
                break
        target = None
        if p.kind != "dense":
            target = next((i for i in range(max(last, 0), len(stages)) if stages[i].kind == p.kind), None)
        if target is None:
            stages.append(Stage(p.kind))
            target = len(stages) - 1
        stages[target].add(p)
    return stages


def _expand_local(pattern: np.ndarray, wires: tuple[int, ...], n: int) -> np.ndarray:
    """A function of the bits on ``wires`` (length 2**k, wires[0] most significant) over all 2**n indices."""
    idx = np.arange(2**n)
    local = np.zeros(2**n, dtype=np.int64)
    for w in wires:
        local = local * 2 + ((idx >> (n - 1 - w)) & 1)
    return np.asarray(pattern)[local]


@dataclass(frozen=True, slots=True)
class RotationGroup:
    """Single-qubit primitives of several stages: matrix j is ``C[j] + cos(θ)·A[j] + sin(θ)·S[j]``
    with ``θ = table[..., slots[j]] * factor[j]``."""
    C: torch.Tensor
    A: torch.Tensor
    S: torch.Tensor
    slots: torch.Tensor
    factor: torch.Tensor


@dataclass(frozen=True, slots=True)
class _WireStep:
    """A local stage: rows ``span`` of its group's matrices (per-sample angles or shared), multiplied
    per touched wire: ``positions[d]`` picks each wire's d-th row (one past the rows: identity);
    ``direct``: one row per wire, already in wire order."""
    per_sample: bool
    span: tuple[int, int]
    wires: tuple[int, ...]
    positions: tuple[torch.Tensor, ...]
    direct: bool


@dataclass(frozen=True, slots=True)
class ProductStep(_WireStep):
    """The first stage when local: it acts on ``|0...0>``, so it builds the product state directly."""


@dataclass(frozen=True, slots=True)
class LocalStep(_WireStep):
    """A later local stage: one Kronecker block per chunk ``(first index into wires, end index, first wire)``."""
    chunks: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class PermStep:
    """A permutation stage: ``state[:, perm]``, undone by ``state[:, inverse]``."""
    perm: torch.Tensor
    inverse: torch.Tensor


@dataclass(frozen=True, slots=True)
class PhaseStep:
    """A diagonal stage: ``state * exp(i((table[..., slots] * factor) @ A + c))``."""
    per_sample: bool
    A: torch.Tensor
    c: torch.Tensor
    slots: torch.Tensor
    factor: torch.Tensor


@dataclass(frozen=True, slots=True)
class DenseStep:
    """Multi-qubit matrices (QubitUnitary) applied one by one: ``matrices[j]`` on ``wires[j]``."""
    matrices: tuple[torch.Tensor, ...]
    wires: tuple[tuple[int, ...], ...]


Step = ProductStep | LocalStep | PermStep | PhaseStep | DenseStep


def _cast_fields(obj: Any, cast: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """A copy of the frozen ``obj`` with ``cast`` applied to its tensors (also those in tuples)."""
    def conv(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return cast(v)
        return tuple(cast(t) for t in v) if isinstance(v, tuple) and v and isinstance(v[0], torch.Tensor) else v
    return replace(obj, **{f.name: conv(getattr(obj, f.name)) for f in fields(obj)})


class EnginePlan:
    """The fused engine's plan: compile-time tables for one circuit; :meth:`execute` runs a batch through them."""

    checks_finite = False

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        n = self.n_qubits = circuit.n_qubits
        self.n_inputs, self.n_weights = circuit.n_inputs, circuit.n_weights
        self.measurements = circuit.measurements
        prims = [p for op in circuit.ops for p in lower_op(op)]
        stages = schedule(prims)
        self.z_only = bool(self.measurements) and all(m.kind == "probs" or (
            m.kind == "expval" and all(letter == "Z" for letter, _ in m.paulis)) for m in self.measurements)
        self.z_words_only = self.z_only and all(m.kind == "expval" for m in self.measurements)
        while self.z_only and stages and stages[-1].kind == "diag":
            stages.pop()
        consts = sorted({p.angle.scale for p in prims if p.angle is not None and p.angle.source == CONST} | {0.0})
        self.consts = torch.tensor(consts, dtype=torch.float64)
        self._const_index = {v: i for i, v in enumerate(consts)}
        rows: dict[bool, list[Prim]] = {False: [], True: []}  # each group's primitives, filled by _compile_stage
        self.steps: list[Step] = [self._compile_stage(s, i == 0, rows) for i, s in enumerate(stages)]
        self.groups = {ps: self._rotation_group(members, not ps) for ps, members in rows.items() if members}
        self.uses_inputs = True in self.groups or any(isinstance(s, PhaseStep) and s.per_sample for s in self.steps)
        words = [tuple(w for _, w in m.paulis) for m in self.measurements if m.kind == "expval"]
        self.signs = pauli_signs(words, n, torch.float64, "cpu") if self.z_words_only else None
        self._device_cache: dict = {}

    # -- compile -----------------------------------------------------------------------------------
    def _angle_slot(self, angle, shared: bool) -> int:
        """Column of the angle table: [inputs | weights | consts] (per sample) or [weights | consts]."""
        offset = 0 if shared else self.n_inputs
        if angle is None:
            return offset + self.n_weights + self._const_index[0.0]
        if angle.source == INPUT:
            return angle.index
        if angle.source == CONST:
            return offset + self.n_weights + self._const_index[angle.scale]
        return offset + angle.index

    def _compile_stage(self, stage: Stage, first: bool, rows: dict[bool, list[Prim]]) -> Step:
        """One stage's step; a local stage's primitives join the end of their group's ``rows``."""
        n = self.n_qubits
        per_sample = any(p.angle is not None and p.angle.source == INPUT for p in stage.prims)
        shared = not per_sample
        if stage.kind == "local":
            span = (len(rows[per_sample]), len(rows[per_sample]) + len(stage.prims))
            rows[per_sample].extend(stage.prims)
            wires = sorted(stage.wires)
            per_wire = {w: [i for i, p in enumerate(stage.prims) if p.wires[0] == w] for w in wires}
            depth = max(len(v) for v in per_wire.values())
            identity = len(stage.prims)  # index of an identity matrix appended at run time
            positions = tuple(torch.tensor([per_wire[w][d] if d < len(per_wire[w]) else identity for w in wires])
                              for d in range(depth))
            direct = depth == 1 and positions[0].tolist() == list(range(len(stage.prims)))
            if first:  # acting on |0...0>: build a product state
                return ProductStep(per_sample, span, tuple(wires), positions, direct)
            # per-sample blocks are (B, d, d): keep d*d <= 2**n so that they cost no more than a state
            chunks = _chunks(wires, max(1, min(MAX_CHUNK, n // 2)) if per_sample else MAX_CHUNK)
            return LocalStep(per_sample, span, tuple(wires), positions, direct, tuple(chunks))
        if stage.kind == "perm":
            perm = np.arange(2**n)
            for p in stage.prims:
                perm = perm[wire_permutation(list(p.table), p.wires, n).numpy()]
            return PermStep(torch.tensor(perm), torch.tensor(np.argsort(perm)))
        if stage.kind == "diag":
            with_angle = [p for p in stage.prims if p.angle is not None]
            return PhaseStep(
                per_sample,
                A=torch.tensor(np.stack([_expand_local(p.coeffs[0], p.wires, n) for p in with_angle])
                               if with_angle else np.zeros((0, 2**n))),
                c=torch.tensor(sum((_expand_local(p.coeffs[1], p.wires, n) for p in stage.prims), np.zeros(2**n))),
                slots=torch.tensor([self._angle_slot(p.angle, shared) for p in with_angle], dtype=torch.long),
                factor=torch.tensor([1.0 if p.angle is None or p.angle.source == CONST else p.angle.scale
                                     for p in with_angle], dtype=torch.float64))
        dense = [(p.op.matrix, p.op.wires) for p in stage.prims if p.op is not None and p.op.matrix is not None]
        if len(dense) != len(stage.prims):
            raise UnsupportedError(f"the engine has no lowering for {[p.op for p in stage.prims]}")
        return DenseStep(tuple(m for m, _ in dense), tuple(w for _, w in dense))

    def _rotation_group(self, prims: list[Prim], shared: bool) -> RotationGroup:
        """The local primitives of all stages with (or without) per-sample angles, concatenated so that
        all their matrices come from one vectorised ``C + cos·A + sin·S`` at run time."""
        coeffs = [p.coeffs for p in prims]
        C, A, S = (torch.tensor(np.stack([c[i] for c in coeffs])) for i in range(3))
        return RotationGroup(
            C, A, S,
            slots=torch.tensor([self._angle_slot(p.angle, shared) for p in prims]),
            factor=torch.tensor([c[3] * (1.0 if p.angle is None or p.angle.source == CONST else p.angle.scale)
                                 for c, p in zip(coeffs, prims)], dtype=torch.float64))

    def _tables(self, dtype: torch.dtype, device: torch.device) -> tuple[list[Step], dict, torch.Tensor, Any]:
        """The compiled tables as tensors of the run's dtype and device (cached). Plain tensors also when
        first built inside a torch.func transform: its wrappers die with it, and the steps hide them from
        the unwrapping that autograd.Function needs."""
        key = (dtype, device)
        if key not in self._device_cache:
            real = torch.float64 if dtype == torch.complex128 else torch.float32
            def cast(v: torch.Tensor) -> torch.Tensor:
                return v.to(device, dtype if v.is_complex() else real if v.is_floating_point() else v.dtype)

            in_transform = torch._C._are_functorch_transforms_active() and not torch.compiler.is_compiling()
            with torch._C._DisableFuncTorch() if in_transform else contextlib.nullcontext():
                self._device_cache[key] = ([_cast_fields(step, cast) for step in self.steps],
                                           {ps: _cast_fields(g, cast) for ps, g in self.groups.items()},
                                           self.consts.to(device=device, dtype=real),
                                           None if self.signs is None else self.signs.to(device=device, dtype=real))
        return self._device_cache[key]

    # -- run -----------------------------------------------------------------------------------------
    def execute(self, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Outputs ``(B, n_out)``. Stage matrices, phases and the initial product state are built
        here with autograd (small tensors, few ops); the state evolution and its backward sweep are
        one :class:`_Evolve` node."""
        batch, device = inputs.shape[0], inputs.device
        steps, groups, consts, signs = self._tables(dtype, device)
        tables = {False: torch.cat([weights, consts])}
        if self.uses_inputs:
            tables[True] = torch.cat([inputs, tables[False].expand(batch, -1)], dim=1)
        mats = {ps: _rotation_matrices(g, tables[ps]) for ps, g in groups.items()}
        params: list[torch.Tensor | None] = []
        for step in steps:
            if isinstance(step, (ProductStep, LocalStep)):
                lo, hi = step.span
                wire_mats = _wire_products(step, mats[step.per_sample][..., lo:hi, :, :])
                if isinstance(step, ProductStep):
                    params.append(self._product_state(wire_mats, step.wires))
                else:
                    params.extend(_kron(wire_mats[..., a:b, :, :]) for a, b, _ in step.chunks)
            elif isinstance(step, PhaseStep):
                params.append(self._phases(step, tables[step.per_sample]))
            else:
                params.append(None)
        return self.measure(apply_function(_Evolve, self, steps, batch, dtype, device, *params), signs)  # (B, n_out)

    def _split(self, steps, params):
        """Pair each step with its parameters: a list of chunk matrices for local stages."""
        it = iter(params)
        return [(step, [next(it) for _ in step.chunks] if isinstance(step, LocalStep) else next(it))
                for step in steps]

    def forward_state(self, steps, params, batch, dtype, device) -> torch.Tensor:
        """The final state ``(B, 2**n)`` (no autograd)."""
        n = self.n_qubits
        paired = self._split(steps, params)
        # only the first stage can be the product state; otherwise start from |0...0>
        first = paired[0] if paired else None
        state = paired.pop(0)[1] if first and isinstance(first[0], ProductStep) else zero_state(n, 1, dtype, device)
        for step, p in paired:
            if isinstance(step, LocalStep):
                for (a, b, start), k in zip(step.chunks, p):
                    state = _apply_block(state, k, start, b - a, n)
            elif isinstance(step, PermStep):
                state = state[:, step.perm]
            elif isinstance(step, PhaseStep):
                state = state * p
            elif isinstance(step, DenseStep):
                for matrix, wires in zip(step.matrices, step.wires):
                    state = apply_matrix(state, matrix, wires, n)
        return state.expand(batch, -1).contiguous() if state.shape[0] != batch else state

    def backward_sweep(self, steps, params, state, grad):
        """Reverse sweep: undo each stage (unitary, so ψ_prev = U† ψ) while pulling the gradient
        back; returns the gradients of the stage parameters. Keeps O(1) states in memory."""
        n = self.n_qubits
        paired = self._split(steps, params)
        grads = []
        for step, p in reversed(paired):
            if isinstance(step, ProductStep):
                grads.append(grad if p.shape[0] == grad.shape[0] else grad.sum(0, keepdim=True))
            elif isinstance(step, LocalStep):
                g_chunks = []
                for (a, b, start), k in reversed(list(zip(step.chunks, p))):
                    k_inv = k.conj().transpose(-1, -2)
                    state = _apply_block(state, k_inv, start, b - a, n)
                    g_chunks.append(_block_grad(grad, state, start, b - a, n, per_sample=k.dim() == 3))
                    grad = _apply_block(grad, k_inv, start, b - a, n)
                grads.extend(g_chunks)
            elif isinstance(step, PermStep):
                state, grad = state[:, step.inverse], grad[:, step.inverse]
                grads.append(None)
            elif isinstance(step, PhaseStep):
                state = state * p.conj()
                g_d = grad * state.conj()
                grads.append(g_d if step.per_sample else g_d.sum(0))
                grad = grad * p.conj()
            else:
                for matrix, wires in zip(reversed(step.matrices), reversed(step.wires)):
                    u_inv = matrix.conj().T
                    state = apply_matrix(state, u_inv, wires, n)
                    grad = apply_matrix(grad, u_inv, wires, n)
                grads.append(None)
        return grads[::-1]

    def _product_state(self, wire_mats: torch.Tensor, wires: tuple[int, ...]) -> torch.Tensor:
        """Kronecker product of each wire's ``M|0>`` (untouched wires stay |0>): ``(B or 1, 2**n)``."""
        cols = wire_mats[..., :, 0]  # (..., W, 2)
        zero = torch.tensor([1, 0], dtype=cols.dtype, device=cols.device)
        by_wire = {w: cols[..., j, :] for j, w in enumerate(wires)}
        state = by_wire.get(0, zero)
        for w in range(1, self.n_qubits):
            state = (state.unsqueeze(-1) * by_wire.get(w, zero).unsqueeze(-2)).flatten(-2)
        return state if state.dim() == 2 else state.unsqueeze(0)

    @staticmethod
    def _phases(step: PhaseStep, table: torch.Tensor) -> torch.Tensor:
        if step.slots.numel() == 0:
            return torch.polar(torch.ones_like(step.c), step.c)
        phase = (table[..., step.slots] * step.factor) @ step.A + step.c
        return torch.polar(torch.ones_like(phase), phase)

    def measure(self, state: torch.Tensor, signs) -> torch.Tensor:
        """⟨Z⟩ words as one matmul of |ψ|² by the precomputed signs; any other measurement list
        goes through :func:`hqnn.sim.measure.measure`."""
        if not self.z_words_only:
            return measure(state, self.measurements, self.n_qubits)
        return torch.view_as_real(state).square().sum(-1) @ signs  # |ψ|² in the fewest autograd nodes


MAX_CHUNK = 6  # wires per Kronecker block: 64x64 matrices keep the matmuls efficient and small


def _chunks(wires: list[int], max_width: int) -> list[tuple[int, int, int]]:
    """Split sorted touched wires into runs of consecutive wires of at most ``max_width``:
    (first index into ``wires``, end index, first wire)."""
    runs, start = [], 0
    for i in range(1, len(wires) + 1):
        if i == len(wires) or wires[i] != wires[i - 1] + 1:
            runs.append((start, i))
            start = i
    out: list[tuple[int, int, int]] = []
    for a, b in runs:
        pieces = -(-(b - a) // max_width)
        size = -(-(b - a) // pieces)
        out.extend((j, min(j + size, b), wires[j]) for j in range(a, b, size))
    return out


def _kron(mats: torch.Tensor) -> torch.Tensor:
    """Kronecker product over the wire axis: ``(..., k, 2, 2) -> (..., 2**k, 2**k)``."""
    lead = mats.shape[:-3]
    out = mats[..., 0, :, :]
    for j in range(1, mats.shape[-3]):
        d = out.shape[-1]
        out = out.reshape(*lead, d, 1, d, 1) * mats[..., j, :, :].reshape(*lead, 1, 2, 1, 2)
        out = out.reshape(*lead, 2 * d, 2 * d)
    return out


def _rotation_matrices(group: RotationGroup, table: torch.Tensor) -> torch.Tensor:
    """All primitives' matrices ``C + cos(kθ)·A + sin(kθ)·S`` at once: ``(..., g, 2, 2)``."""
    theta = table[..., group.slots] * group.factor
    shape = (*theta.shape, 1, 1)
    return group.C + torch.cos(theta).reshape(shape) * group.A + torch.sin(theta).reshape(shape) * group.S


def _wire_products(step: _WireStep, mats: torch.Tensor) -> torch.Tensor:
    """Per touched wire, the product of its primitives (in order): ``(..., W, 2, 2)``."""
    if step.direct:
        return mats
    positions = step.positions
    eye = torch.eye(2, dtype=mats.dtype, device=mats.device).expand(*mats.shape[:-3], 1, 2, 2)
    mats = torch.cat([mats, eye], dim=-3)
    acc = mats[..., positions[0], :, :]
    for pos in positions[1:]:
        acc = mats[..., pos, :, :] @ acc
    return acc


def _block_grad(grad: torch.Tensor, state: torch.Tensor, start: int, width: int, n: int,
                per_sample: bool) -> torch.Tensor:
    """Gradient of a block matrix K applied on wires start..start+width-1 (``out = K state``):
    ``sum over the other indices of grad ⊗ conj(state)``; ``(B, d, d)`` per sample or ``(d, d)`` shared."""
    d, batch = 2**width, grad.shape[0]
    rest, lead = 2 ** (n - start - width), 2**start
    if rest == 1 and not per_sample:
        g, s = grad.reshape(-1, d), state.reshape(-1, d)
        return g.T @ s.conj()
    if lead == 1:
        g, s = grad.reshape(batch, d, rest), state.reshape(batch, d, rest)
        out = g @ s.conj().transpose(-1, -2)
        return out if per_sample else out.sum(0)
    out = torch.einsum("baic,bajc->bij", grad.reshape(batch, lead, d, rest), state.reshape(batch, lead, d, rest).conj())
    return out if per_sample else out.sum(0)


def _apply_block(state: torch.Tensor, k: torch.Tensor, start: int, width: int, n: int) -> torch.Tensor:
    """Apply a ``(d, d)`` or per-sample ``(B, d, d)`` matrix on wires start..start+width-1 of ``(B, 2**n)``."""
    d = 2**width
    rest = 2 ** (n - start - width)
    if rest == 1:
        view = state.reshape(state.shape[0], 2**start, d)
        out = view @ k.transpose(-1, -2)
    else:
        view = state.reshape(state.shape[0], 2**start, d, rest)
        out = (k[:, None] if k.dim() == 3 else k) @ view
    return out.reshape(out.shape[0], -1)


def apply_function(function, *args):
    """``function.apply(*args)`` without autograd.Function's per-call signature binding (about 13 µs,
    a fifth of a 4-qubit native forward+backward) when neither torch.compile nor torch.func is
    active: the arguments here are all positional, so the binding has nothing to do."""
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return function.apply(*args)
    return super(torch.autograd.Function, function).apply(*torch._functorch.utils.unwrap_dead_wrappers(args))


class _Evolve(torch.autograd.Function):
    """The state evolution ``(B, 2**n)`` as one autograd node with a reversible backward sweep.

    The backward is plain differentiable torch ops of the stage parameters and the final state,
    which is this node's output: under ``create_graph=True`` (Hessians, gradient penalties) autograd
    differentiates the sweep, through this node again, so higher derivatives are exact. New-style
    (``setup_context``, generated vmap rule) so that torch.compile and torch.func trace it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(core, steps, batch, dtype, device, *params):
        state = core.forward_state(steps, params, batch, dtype, device)
        return state.view_as(state) if any(state is p for p in params) else state  # autograd saves no bare input

    @staticmethod
    def setup_context(ctx, inputs, output):
        core, steps = inputs[:2]
        params = inputs[5:]
        ctx.core, ctx.steps, ctx.param_mask = core, steps, [p is not None for p in params]
        ctx.save_for_backward(output, *[p for p in params if p is not None])

    @staticmethod
    def backward(ctx, grad_state):
        state, *saved = ctx.saved_tensors
        it = iter(saved)
        params = [next(it) if present else None for present in ctx.param_mask]
        return (None, None, None, None, None, *ctx.core.backward_sweep(ctx.steps, params, state, grad_state))

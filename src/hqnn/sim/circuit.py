"""A circuit: gates whose angles come from inputs, trainable weights or constants, and measurements.

A :class:`Circuit` is a plain, picklable description; simulating it is :func:`hqnn.sim.run`'s job.
Angles are symbolic: ``c.inputs[i]`` is input feature i, ``c.add_weights(name, shape)[l, i]`` a
trainable weight, a Python number a constant, and each may carry a scale (``math.pi * x[i]``).

Example:
    >>> c = Circuit(2, n_inputs=2)
    >>> w = c.add_weights("w", (2,))
    >>> for i in range(2):
    ...     c.ry(math.pi * c.inputs[i], i)
    ...     c.rz(w[i], i)
    >>> c.cnot(0, 1)
    >>> c.expval_z()
    >>> c.n_outputs, c.n_weights
    (2, 2)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from hqnn.exceptions import GateError, ShapeError, ValueRangeError, WireError
from hqnn.sim.channels import channel_spec, check_kraus, check_strengths
from hqnn.sim.gates import gate_spec

__all__ = ["Angle", "AngleLike", "Op", "Measurement", "Circuit", "ParamArray"]

INPUT, WEIGHT, CONST = "input", "weight", "const"


@dataclass(frozen=True)
class Angle:
    """One gate angle: ``scale * inputs[index]``, ``scale * weights[index]`` or the constant ``scale``.

    Channel strengths (not gate angles) may also carry ``transform`` ("sigmoid": the value is
    ``scale * sigmoid(source[index])``) and ``choices`` (> 1: the index read is ``index + r`` with r
    drawn uniformly from ``0..choices-1`` per sample at every evaluation; see :mod:`hqnn.sim.density`).
    """

    source: str
    index: int = -1
    scale: float = 1.0
    transform: str | None = None
    choices: int = 1

    def __mul__(self, k: float) -> Angle:
        if not isinstance(k, (int, float)):
            return NotImplemented
        return replace(self, scale=self.scale * float(k))

    def sigmoid(self) -> Angle:
        """``sigmoid(source[index])`` as a channel strength (the angle must be unscaled and untransformed)."""
        if self.source == CONST or self.scale != 1.0 or self.transform is not None:
            raise GateError(f"sigmoid() applies to a plain input or weight, not to {self!r}")
        return replace(self, transform="sigmoid")

    def random_offset(self, choices: int) -> Angle:
        """Read ``source[index + r]`` with r uniform in ``0..choices-1``, re-drawn per sample and evaluation."""
        if self.source != INPUT or int(choices) < 1:
            raise GateError(f"random_offset needs an input angle and choices >= 1; got {self!r}, {choices}")
        return replace(self, choices=int(choices))

    __rmul__ = __mul__

    def __neg__(self) -> Angle:
        return self * -1.0

    def __truediv__(self, k: float) -> Angle:
        return self * (1.0 / k)


AngleLike = Angle | float
"""An angle argument: a symbolic Angle (``c.inputs[i]``, ``w[l, i]``, scaled) or a constant number."""


def as_angle(value: AngleLike) -> Angle:
    """An Angle from an Angle or a real number (a constant)."""
    if isinstance(value, Angle):
        return value
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise GateError(f"constant angles must be finite; got {value}")
        return Angle(CONST, -1, float(value))
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return as_angle(float(value))
    raise GateError(f"an angle must be a number, c.inputs[i] or a weight w[...]; got {value!r}")


class ParamArray:
    """An array of symbolic angles (inputs or a named weight block); indexing gives Angles."""

    def __init__(self, source: str, flat_index: np.ndarray, name: str):
        self.source, self._idx, self.name = source, flat_index, name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._idx.shape)

    def __len__(self) -> int:
        return self._idx.shape[0]

    def __getitem__(self, key):
        try:
            sub = self._idx[key]
        except IndexError as exc:
            raise ShapeError(f"index {key!r} is out of range for {self.name} of shape {self.shape}") from exc
        if np.ndim(sub) == 0:
            return Angle(self.source, int(sub), 1.0)
        return ParamArray(self.source, sub, self.name)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def flat(self) -> list[Angle]:
        return [Angle(self.source, int(i), 1.0) for i in self._idx.ravel()]


@dataclass(frozen=True)
class Op:
    """A gate on wires with its angles, or a constant matrix (``name == "QubitUnitary"``).

    ``kind`` is "gate", "channel" (a noise channel of :mod:`hqnn.sim.channels`; ``matrix`` holds the
    Kraus operators ``(m, d, d)`` of a "QubitChannel") or "readout" (a classical flip of the wire's
    measured bit, applied to the measurements wherever the op sits).
    """

    name: str
    wires: tuple[int, ...]
    params: tuple[Angle, ...] = ()
    matrix: torch.Tensor | None = field(default=None, compare=False, hash=False)
    kind: str = "gate"


@dataclass(frozen=True)
class Measurement:
    """``kind`` is "expval" (``paulis`` = (("Z", 0), ("Z", 3)) for Z0 Z3), "probs" (``wires``) or "state"."""

    kind: str
    wires: tuple[int, ...] = ()
    paulis: tuple[tuple[str, int], ...] = ()


def parse_pauli_word(word: str) -> tuple[tuple[str, int], ...]:
    """Parse "Z0 Z3", "X1 Y2" or "Z0@Z3" into (("Z", 0), ("Z", 3)); "I" terms are dropped."""
    terms = []
    for token in word.replace("@", " ").split():
        letter, digits = token[0].upper(), token[1:]
        if letter not in "IXYZ" or not digits.isdigit():
            raise GateError(f"a Pauli word is letters X, Y, Z or I each followed by a wire, like 'Z0 X3'; got {word!r}")
        if letter != "I":
            terms.append((letter, int(digits)))
    wires = [w for _, w in terms]
    if len(set(wires)) != len(wires):
        raise WireError(f"a Pauli word names each wire at most once; got {word!r}")
    return tuple(terms)


class Circuit:
    """A parametrised circuit on ``n_qubits`` wires reading ``n_inputs`` features.

    Gates are methods named after PennyLane's gates in lower case (``rx``, ``rot``, ``cnot``, ``crx``,
    ``isingzz``, ``toffoli``, ...) taking the angles first and the wires last, or the generic
    :meth:`gate`. Templates are added with :meth:`add`.

    Args:
        n_qubits: number of wires (>= 1).
        n_inputs: number of input features each sample provides.

    Raises:
        WireError: a wire outside ``0..n_qubits-1`` or repeated in one gate.
        GateError: an unknown gate name or the wrong number of angles.
    """

    def __init__(self, n_qubits: int, n_inputs: int = 0):
        if int(n_qubits) < 1:
            raise WireError(f"n_qubits must be >= 1; got {n_qubits}")
        if int(n_inputs) < 0:
            raise ShapeError(f"n_inputs must be >= 0; got {n_inputs}")
        self.n_qubits, self.n_inputs = int(n_qubits), int(n_inputs)
        self.ops: list[Op] = []
        self.measurements: list[Measurement] = []
        self.weight_shapes: dict[str, tuple[int, ...]] = {}
        self.n_weights = 0
        self.inputs = ParamArray(INPUT, np.arange(self.n_inputs), "inputs")

    # -- parameters ------------------------------------------------------------------------------
    def add_weights(self, name: str, shape: int | Sequence[int]) -> ParamArray:
        """Declare a block of trainable weights; returns its symbolic array (flattened into one vector)."""
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if name in self.weight_shapes:
            raise ShapeError(f"weights {name!r} are already declared with shape {self.weight_shapes[name]}")
        if any(s < 0 for s in shape):
            raise ShapeError(f"weight shape must be non-negative; got {shape} for {name!r}")
        size = int(np.prod(shape)) if shape else 1
        idx = np.arange(self.n_weights, self.n_weights + size).reshape(shape)
        self.weight_shapes[name] = shape
        self.n_weights += size
        return ParamArray(WEIGHT, idx, name)

    def weight_slices(self) -> dict[str, tuple[slice, tuple[int, ...]]]:
        """For each weight block, its slice of the flat weight vector and its shape."""
        out, start = {}, 0
        for name, shape in self.weight_shapes.items():
            size = int(np.prod(shape)) if shape else 1
            out[name] = (slice(start, start + size), shape)
            start += size
        return out

    # -- gates -----------------------------------------------------------------------------------
    def _check_wires(self, wires: Iterable[int], what: str) -> tuple[int, ...]:
        wires = tuple(int(w) for w in wires)
        for w in wires:
            if not 0 <= w < self.n_qubits:
                raise WireError(f"{what}: wire {w} is out of range for a {self.n_qubits}-qubit circuit "
                                f"(valid: 0..{self.n_qubits - 1})")
        if len(set(wires)) != len(wires):
            raise WireError(f"{what}: wires must be distinct; got {wires}")
        return wires

    def _check_angle(self, a: Angle, what: str) -> Angle:
        if a.source == INPUT and not 0 <= a.index < self.n_inputs:
            raise ShapeError(f"{what}: input {a.index} is out of range; the circuit reads {self.n_inputs} inputs")
        if a.source == WEIGHT and not 0 <= a.index < self.n_weights:
            raise ShapeError(f"{what}: weight {a.index} does not belong to this circuit ({self.n_weights} weights)")
        return a

    def gate(self, name: str, wires: int | Sequence[int], *params: AngleLike) -> Circuit:
        """Append gate ``name`` (PennyLane name or alias) on ``wires`` with angles ``params``."""
        wires = (wires,) if isinstance(wires, (int, np.integer)) else tuple(wires)
        return self._add(gate_spec(name).name, wires, *params)

    def _add(self, name: str, wires: tuple[int, ...], *params: AngleLike) -> Circuit:
        spec = gate_spec(name)
        if len(wires) != spec.n_wires:
            raise WireError(f"{spec.name} acts on {spec.n_wires} wire(s); got wires {wires}")
        if len(params) != spec.n_params:
            raise GateError(f"{spec.name} takes {spec.n_params} angle(s); got {len(params)}")
        wires = self._check_wires(wires, spec.name)
        angles = tuple(self._check_angle(as_angle(p), spec.name) for p in params)
        if any(a.transform is not None or a.choices > 1 for a in angles):
            raise GateError(f"{spec.name}: sigmoid() and random_offset() angles are for channel strengths only")
        self.ops.append(Op(spec.name, wires, angles))
        return self

    # One method per row of the gate table (hqnn.sim.gates.GATES): angles first, wires last.
    def identity(self, wire: int) -> Circuit:
        """Identity on ``wire``."""
        return self._add("Identity", (wire,))

    def h(self, wire: int) -> Circuit:
        """Hadamard H = (X + Z)/√2 on ``wire``."""
        return self._add("Hadamard", (wire,))

    hadamard = h

    def x(self, wire: int) -> Circuit:
        """PauliX on ``wire``."""
        return self._add("PauliX", (wire,))

    def y(self, wire: int) -> Circuit:
        """PauliY on ``wire``."""
        return self._add("PauliY", (wire,))

    def z(self, wire: int) -> Circuit:
        """PauliZ on ``wire``."""
        return self._add("PauliZ", (wire,))

    def s(self, wire: int) -> Circuit:
        """S = diag(1, i) on ``wire``."""
        return self._add("S", (wire,))

    def t(self, wire: int) -> Circuit:
        """T = diag(1, e^{iπ/4}) on ``wire``."""
        return self._add("T", (wire,))

    def sx(self, wire: int) -> Circuit:
        """SX = √X on ``wire``."""
        return self._add("SX", (wire,))

    def rx(self, theta: AngleLike, wire: int) -> Circuit:
        """RX(θ) = exp(-iθX/2) on ``wire``."""
        return self._add("RX", (wire,), theta)

    def ry(self, theta: AngleLike, wire: int) -> Circuit:
        """RY(θ) = exp(-iθY/2) on ``wire``."""
        return self._add("RY", (wire,), theta)

    def rz(self, theta: AngleLike, wire: int) -> Circuit:
        """RZ(θ) = exp(-iθZ/2) on ``wire``."""
        return self._add("RZ", (wire,), theta)

    def phase_shift(self, phi: AngleLike, wire: int) -> Circuit:
        """PhaseShift(φ) = diag(1, e^{iφ}) on ``wire``."""
        return self._add("PhaseShift", (wire,), phi)

    def rot(self, phi: AngleLike, theta: AngleLike, omega: AngleLike, wire: int) -> Circuit:
        """Rot(φ, θ, ω) = RZ(ω)·RY(θ)·RZ(φ) on ``wire``."""
        return self._add("Rot", (wire,), phi, theta, omega)

    def u3(self, theta: AngleLike, phi: AngleLike, delta: AngleLike, wire: int) -> Circuit:
        """U3(θ, φ, δ) = PhaseShift(φ)·RY(θ)·PhaseShift(δ) on ``wire``."""
        return self._add("U3", (wire,), theta, phi, delta)

    def cnot(self, control: int, target: int) -> Circuit:
        """CNOT (controlled X)."""
        return self._add("CNOT", (control, target))

    def cz(self, control: int, target: int) -> Circuit:
        """CZ (controlled Z)."""
        return self._add("CZ", (control, target))

    def cy(self, control: int, target: int) -> Circuit:
        """CY (controlled Y)."""
        return self._add("CY", (control, target))

    def swap(self, wire0: int, wire1: int) -> Circuit:
        """SWAP of two wires."""
        return self._add("SWAP", (wire0, wire1))

    def toffoli(self, control0: int, control1: int, target: int) -> Circuit:
        """Toffoli (doubly controlled X)."""
        return self._add("Toffoli", (control0, control1, target))

    def crx(self, theta: AngleLike, control: int, target: int) -> Circuit:
        """Controlled RX(θ)."""
        return self._add("CRX", (control, target), theta)

    def cry(self, theta: AngleLike, control: int, target: int) -> Circuit:
        """Controlled RY(θ)."""
        return self._add("CRY", (control, target), theta)

    def crz(self, theta: AngleLike, control: int, target: int) -> Circuit:
        """Controlled RZ(θ)."""
        return self._add("CRZ", (control, target), theta)

    def crot(self, phi: AngleLike, theta: AngleLike, omega: AngleLike, control: int, target: int) -> Circuit:
        """Controlled Rot(φ, θ, ω)."""
        return self._add("CRot", (control, target), phi, theta, omega)

    def isingxx(self, phi: AngleLike, wire0: int, wire1: int) -> Circuit:
        """IsingXX(φ) = exp(-iφ X⊗X/2)."""
        return self._add("IsingXX", (wire0, wire1), phi)

    def isingyy(self, phi: AngleLike, wire0: int, wire1: int) -> Circuit:
        """IsingYY(φ) = exp(-iφ Y⊗Y/2)."""
        return self._add("IsingYY", (wire0, wire1), phi)

    def isingzz(self, phi: AngleLike, wire0: int, wire1: int) -> Circuit:
        """IsingZZ(φ) = exp(-iφ Z⊗Z/2)."""
        return self._add("IsingZZ", (wire0, wire1), phi)

    def unitary(self, matrix, wires: Sequence[int]) -> Circuit:
        """Append a constant unitary ``(2**k, 2**k)`` on ``wires`` (checked for unitarity)."""
        wires = self._check_wires((wires,) if isinstance(wires, int) else wires, "QubitUnitary")
        m = torch.as_tensor(matrix, dtype=torch.complex128)
        d = 2 ** len(wires)
        if m.shape != (d, d):
            raise ShapeError(f"QubitUnitary on {len(wires)} wire(s) needs a ({d}, {d}) matrix; got {tuple(m.shape)}")
        if not torch.allclose(m @ m.conj().T, torch.eye(d, dtype=m.dtype), atol=1e-8):
            raise GateError("QubitUnitary: the matrix is not unitary (U U^dagger != I within 1e-8)")
        self.ops.append(Op("QubitUnitary", wires, (), m))
        return self

    # -- noise -----------------------------------------------------------------------------------
    def channel(self, name: str, wires: int | Sequence[int], *strengths) -> Circuit:
        """Append a noise channel of :mod:`hqnn.sim.channels` (e.g. "BitFlip", "AmplitudeDamping").

        Strengths are numbers (checked against the channel's range), inputs or weights, optionally
        transformed: ``c.inputs[3].sigmoid()`` gives γ = sigmoid(x_3) per sample. A circuit with a
        channel is simulated with density matrices (:mod:`hqnn.sim.density`).

        Raises:
            GateError: unknown channel or wrong number of strengths.
            ValueRangeError: a constant strength outside its range.
        """
        spec = channel_spec(name)
        wires = self._check_wires((wires,) if isinstance(wires, (int, np.integer)) else wires, spec.name)
        if len(wires) != spec.n_wires or len(strengths) != spec.n_params:
            raise GateError(f"{spec.name} takes {spec.n_params} strength(s) on {spec.n_wires} wire(s); "
                            f"got {len(strengths)} on wires {wires}")
        angles = tuple(self._check_angle(as_angle(p), spec.name) for p in strengths)
        check_strengths(spec, {k: a.scale for k, a in enumerate(angles) if a.source == CONST})
        self.ops.append(Op(spec.name, wires, angles, kind="channel"))
        return self

    def kraus(self, matrices, wires: int | Sequence[int]) -> Circuit:
        """Append a channel given by constant Kraus operators ``(m, 2**k, 2**k)`` (checked: Σ K†K = I)."""
        wires = self._check_wires((wires,) if isinstance(wires, (int, np.integer)) else wires, "QubitChannel")
        self.ops.append(Op("QubitChannel", wires, (), check_kraus(matrices, len(wires)), kind="channel"))
        return self

    def bit_flip(self, p: AngleLike, wire: int) -> Circuit:
        """BitFlip: X with probability p."""
        return self.channel("BitFlip", wire, p)

    def phase_flip(self, p: AngleLike, wire: int) -> Circuit:
        """PhaseFlip: Z with probability p."""
        return self.channel("PhaseFlip", wire, p)

    def depolarizing(self, p: AngleLike, wire: int) -> Circuit:
        """DepolarizingChannel: X, Y or Z, each with probability p/3."""
        return self.channel("DepolarizingChannel", wire, p)

    def amplitude_damping(self, gamma: AngleLike, wire: int) -> Circuit:
        """AmplitudeDamping(γ): |1> decays to |0> with probability γ."""
        return self.channel("AmplitudeDamping", wire, gamma)

    def phase_damping(self, gamma: AngleLike, wire: int) -> Circuit:
        """PhaseDamping(γ): coherences shrink by √(1-γ)."""
        return self.channel("PhaseDamping", wire, gamma)

    def generalized_amplitude_damping(self, gamma: AngleLike, p: AngleLike, wire: int) -> Circuit:
        """GeneralizedAmplitudeDamping(γ, p): damping towards a thermal state with excited population 1-p."""
        return self.channel("GeneralizedAmplitudeDamping", wire, gamma, p)

    def thermal_relaxation(self, pe: AngleLike, t1: AngleLike, t2: AngleLike, tg: AngleLike, wire: int) -> Circuit:
        """ThermalRelaxationError(pe, t1, t2, tg): T1/T2 relaxation over a gate of duration tg."""
        return self.channel("ThermalRelaxationError", wire, pe, t1, t2, tg)

    def readout_error(self, p0to1: float, p1to0: float, wire: int) -> Circuit:
        """Flip wire's measured bit 0 -> 1 with probability ``p0to1`` and 1 -> 0 with ``p1to0``.

        A classical error on the readout: it acts on the measurements (expvals and probs) whatever
        its position in the circuit.
        """
        wires = self._check_wires((wire,), "ReadoutError")
        for p in (p0to1, p1to0):
            if not 0.0 <= float(p) <= 1.0:
                raise ValueRangeError(f"readout flip probabilities must lie in [0, 1]; got {p0to1}, {p1to0}")
        self.ops.append(Op("ReadoutError", wires, (as_angle(p0to1), as_angle(p1to0)), kind="readout"))
        return self

    @property
    def has_noise(self) -> bool:
        """Whether the circuit holds channels or readout errors (and needs a noisy simulator)."""
        return any(op.kind != "gate" for op in self.ops)

    def add(self, template) -> Circuit:
        """Add a template (anything with ``__call__(circuit)``, e.g. StronglyEntanglingLayers(...))."""
        template(self)
        return self

    # -- measurements ----------------------------------------------------------------------------
    def _measure(self, m: Measurement) -> Circuit:
        if m.kind == "state" and self.measurements or any(x.kind == "state" for x in self.measurements):
            raise ShapeError("state() must be the circuit's only measurement")
        self.measurements.append(m)
        return self

    def expval(self, word: str) -> Circuit:
        """Measure the expectation of a Pauli word such as "Z0", "Z0 Z3" or "X1 Y2"."""
        paulis = parse_pauli_word(word)
        self._check_wires([w for _, w in paulis], f"expval({word!r})")
        return self._measure(Measurement("expval", tuple(w for _, w in paulis), paulis))

    def expval_z(self, wires: Sequence[int] | None = None) -> Circuit:
        """Measure <Z_w> for each wire (all wires by default), one output each."""
        for w in self._check_wires(range(self.n_qubits) if wires is None else wires, "expval_z"):
            self._measure(Measurement("expval", (w,), (("Z", w),)))
        return self

    def probs(self, wires: Sequence[int] | None = None) -> Circuit:
        """Measure the probabilities of the basis states of ``wires`` (2**k outputs, wire order as given)."""
        wires = self._check_wires(range(self.n_qubits) if wires is None else wires, "probs")
        return self._measure(Measurement("probs", wires))

    def state(self) -> Circuit:
        """Return the final state ``(B, 2**n)`` complex (must be the only measurement)."""
        return self._measure(Measurement("state"))

    @property
    def n_outputs(self) -> int:
        return sum(2 ** len(m.wires) if m.kind == "probs" else 2**self.n_qubits if m.kind == "state" else 1
                   for m in self.measurements)

    # -- identity --------------------------------------------------------------------------------
    def structure_key(self) -> tuple:
        """A hashable key of everything but the weight values (what a compiled plan depends on)."""
        return (
            self.n_qubits,
            self.n_inputs,
            self.n_weights,
            tuple((op.name, op.wires, op.params, None if op.matrix is None else op.matrix.numpy().tobytes())
                  for op in self.ops),
            tuple(self.measurements),
        )

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the compiled plans (:func:`hqnn.sim.plan.compile_circuit`)."""
        return {k: v for k, v in self.__dict__.items() if k != "_plans"}

    def __repr__(self) -> str:
        return (f"Circuit(n_qubits={self.n_qubits}, n_inputs={self.n_inputs}, n_weights={self.n_weights}, "
                f"gates={len(self.ops)}, outputs={self.n_outputs})")

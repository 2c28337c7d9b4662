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
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np
import torch

from hqnn.exceptions import GateError, ShapeError, ValueRangeError, WireError
from hqnn.sim.channels import channel_spec, check_kraus, check_strengths
from hqnn.sim.gates import gate_spec

__all__ = ["Angle", "Op", "Measurement", "Circuit", "ParamArray"]

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

    def __mul__(self, k: float) -> "Angle":
        if not isinstance(k, (int, float)):
            return NotImplemented
        return replace(self, scale=self.scale * float(k))

    def sigmoid(self) -> "Angle":
        """``sigmoid(source[index])`` as a channel strength (the angle must be unscaled and untransformed)."""
        if self.source == CONST or self.scale != 1.0 or self.transform is not None:
            raise GateError(f"sigmoid() applies to a plain input or weight, not to {self!r}")
        return replace(self, transform="sigmoid")

    def random_offset(self, choices: int) -> "Angle":
        """Read ``source[index + r]`` with r uniform in ``0..choices-1``, re-drawn per sample and evaluation."""
        if self.source != INPUT or int(choices) < 1:
            raise GateError(f"random_offset needs an input angle and choices >= 1; got {self!r}, {choices}")
        return replace(self, choices=int(choices))

    __rmul__ = __mul__

    def __neg__(self) -> "Angle":
        return self * -1.0

    def __truediv__(self, k: float) -> "Angle":
        return self * (1.0 / k)


def as_angle(value) -> Angle:
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
                raise WireError(f"{what}: wire {w} is out of range for a {self.n_qubits}-qubit circuit (valid: 0..{self.n_qubits - 1})")
        if len(set(wires)) != len(wires):
            raise WireError(f"{what}: wires must be distinct; got {wires}")
        return wires

    def _check_angle(self, a: Angle, what: str) -> Angle:
        if a.source == INPUT and not 0 <= a.index < self.n_inputs:
            raise ShapeError(f"{what}: input {a.index} is out of range; the circuit reads {self.n_inputs} inputs")
        if a.source == WEIGHT and not 0 <= a.index < self.n_weights:
            raise ShapeError(f"{what}: weight {a.index} does not belong to this circuit ({self.n_weights} weights)")
        return a

    def gate(self, name: str, wires: int | Sequence[int], *params) -> "Circuit":
        """Append gate ``name`` (PennyLane name or alias) on ``wires`` with angles ``params``."""
        spec = gate_spec(name)
        wires = (wires,) if isinstance(wires, (int, np.integer)) else tuple(wires)
        if spec.n_wires is not None and len(wires) != spec.n_wires:
            raise WireError(f"{spec.name} acts on {spec.n_wires} wire(s); got wires {wires}")
        if len(params) != spec.n_params:
            raise GateError(f"{spec.name} takes {spec.n_params} angle(s); got {len(params)}")
        wires = self._check_wires(wires, spec.name)
        angles = tuple(self._check_angle(as_angle(p), spec.name) for p in params)
        if any(a.transform is not None or a.choices > 1 for a in angles):
            raise GateError(f"{spec.name}: sigmoid() and random_offset() angles are for channel strengths only")
        self.ops.append(Op(spec.name, wires, angles))
        return self

    def unitary(self, matrix, wires: Sequence[int]) -> "Circuit":
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
    def channel(self, name: str, wires: int | Sequence[int], *strengths) -> "Circuit":
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

    def kraus(self, matrices, wires: int | Sequence[int]) -> "Circuit":
        """Append a channel given by constant Kraus operators ``(m, 2**k, 2**k)`` (checked: Σ K†K = I)."""
        wires = self._check_wires((wires,) if isinstance(wires, (int, np.integer)) else wires, "QubitChannel")
        self.ops.append(Op("QubitChannel", wires, (), check_kraus(matrices, len(wires)), kind="channel"))
        return self

    def readout_error(self, p0to1: float, p1to0: float, wire: int) -> "Circuit":
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

    def add(self, template) -> "Circuit":
        """Add a template (anything with ``__call__(circuit)``, e.g. StronglyEntanglingLayers(...))."""
        template(self)
        return self

    # -- measurements ----------------------------------------------------------------------------
    def _measure(self, m: Measurement) -> "Circuit":
        if m.kind == "state" and self.measurements or any(x.kind == "state" for x in self.measurements):
            raise ShapeError("state() must be the circuit's only measurement")
        self.measurements.append(m)
        return self

    def expval(self, word: str) -> "Circuit":
        """Measure the expectation of a Pauli word such as "Z0", "Z0 Z3" or "X1 Y2"."""
        paulis = parse_pauli_word(word)
        self._check_wires([w for _, w in paulis], f"expval({word!r})")
        return self._measure(Measurement("expval", tuple(w for _, w in paulis), paulis))

    def expval_z(self, wires: Sequence[int] | None = None) -> "Circuit":
        """Measure <Z_w> for each wire (all wires by default), one output each."""
        for w in self._check_wires(range(self.n_qubits) if wires is None else wires, "expval_z"):
            self._measure(Measurement("expval", (w,), (("Z", w),)))
        return self

    def probs(self, wires: Sequence[int] | None = None) -> "Circuit":
        """Measure the probabilities of the basis states of ``wires`` (2**k outputs, wire order as given)."""
        wires = self._check_wires(range(self.n_qubits) if wires is None else wires, "probs")
        return self._measure(Measurement("probs", wires))

    def state(self) -> "Circuit":
        """Return the final state ``(B, 2**n)`` complex (must be the only measurement)."""
        return self._measure(Measurement("state"))

    @property
    def n_outputs(self) -> int:
        return sum(2 ** len(m.wires) if m.kind == "probs" else 2**self.n_qubits if m.kind == "state" else 1
                   for m in self.measurements)

    # -- identity --------------------------------------------------------------------------------
    def structure_key(self) -> tuple:
        """A hashable key of everything but the weight values: used to cache compiled plans."""
        return (
            self.n_qubits,
            self.n_inputs,
            self.n_weights,
            tuple((op.name, op.wires, op.params, None if op.matrix is None else op.matrix.numpy().tobytes())
                  for op in self.ops),
            tuple(self.measurements),
        )

    def __repr__(self) -> str:
        return (f"Circuit(n_qubits={self.n_qubits}, n_inputs={self.n_inputs}, n_weights={self.n_weights}, "
                f"gates={len(self.ops)}, outputs={self.n_outputs})")


def _make_gate_method(name: str):
    spec = gate_spec(name)
    n_params = spec.n_params

    def method(self, *args):
        if len(args) < n_params:
            raise GateError(f"{spec.name} takes {n_params} angle(s) then {spec.n_wires} wire(s); got {args}")
        return self.gate(spec.name, args[n_params:], *args[:n_params])

    method.__name__ = name.lower()
    method.__doc__ = f"Append {spec.name}: {n_params} angle(s) then {spec.n_wires} wire(s)."
    return method


for _name, _method_name in [
    ("RX", "rx"), ("RY", "ry"), ("RZ", "rz"), ("Rot", "rot"), ("PhaseShift", "phase_shift"), ("U3", "u3"),
    ("Hadamard", "h"), ("Hadamard", "hadamard"), ("PauliX", "x"), ("PauliY", "y"), ("PauliZ", "z"),
    ("S", "s"), ("T", "t"), ("SX", "sx"), ("CNOT", "cnot"), ("CZ", "cz"), ("CY", "cy"), ("SWAP", "swap"),
    ("CRX", "crx"), ("CRY", "cry"), ("CRZ", "crz"), ("CRot", "crot"), ("IsingXX", "isingxx"),
    ("IsingYY", "isingyy"), ("IsingZZ", "isingzz"), ("Toffoli", "toffoli"),
]:
    setattr(Circuit, _method_name, _make_gate_method(_name))


def _make_channel_method(name: str, method_name: str):
    spec = channel_spec(name)

    def method(self, *args):
        if len(args) != spec.n_params + 1:
            raise GateError(f"{spec.name} takes {spec.n_params} strength(s) then a wire; got {args}")
        return self.channel(spec.name, args[-1], *args[:-1])

    method.__name__ = method_name
    method.__doc__ = f"Append the {spec.name} channel: {spec.n_params} strength(s) then a wire."
    return method


for _name, _method_name in [
    ("BitFlip", "bit_flip"), ("PhaseFlip", "phase_flip"), ("DepolarizingChannel", "depolarizing"),
    ("AmplitudeDamping", "amplitude_damping"), ("PhaseDamping", "phase_damping"),
    ("GeneralizedAmplitudeDamping", "generalized_amplitude_damping"),
    ("ThermalRelaxationError", "thermal_relaxation"),
]:
    setattr(Circuit, _method_name, _make_channel_method(_name, _method_name))

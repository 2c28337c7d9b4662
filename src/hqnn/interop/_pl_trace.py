"""Trace a PennyLane quantum function once into an :class:`hqnn.sim.Circuit`.

The function is called a single time with numpy object arrays of :class:`~hqnn.interop._symbolic.Symbol`
placeholders inside a PennyLane queuing context. The recorded operations are translated to hqnn's
gates and noise channels, decomposing anything hqnn lacks (templates such as AngleEmbedding or
StronglyEntanglingLayers, adjoints, ...) with PennyLane's own ``decomposition()``; the measurements
become hqnn measurements.

Three things go beyond a gate list, and the result (:class:`Trace`) carries them:

- non-linear angles (``x[i] * x[j]`` in IQPEmbedding, ``np.sin(x)``, ``x * w``) are *derived features*
  (:class:`~hqnn.interop._symbolic.FeatureMap`) computed in torch and read by the circuit as inputs;
- ``AmplitudeEmbedding`` / ``StatePrep`` of a real vector (first on its wires) becomes the cascade of
  uniformly controlled RY rotations of Möttönen et al. (quant-ph/0407010), each a ladder of RYs and
  CNOTs whose angles are derived features; when PennyLane would not normalise the vector, the outputs
  are multiplied by its squared norm, as PennyLane's unnormalised state gives;
- ``expval`` of a Hamiltonian, a Pauli sum (``qml.dot``, ``0.5 * Z(0) + X(1)``) or a constant
  ``Hermitian`` measures each Pauli word once and combines them linearly (:class:`Readout`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hqnn.exceptions import UnsupportedError, ValueRangeError, require
from hqnn.interop._symbolic import FeatureMap, Symbol, deriving, symbol_array
from hqnn.interop.conventions import pennylane_wire_map
from hqnn.sim.channels import CHANNELS
from hqnn.sim.circuit import Angle, Circuit
from hqnn.sim.gates import GATES

__all__ = ["Readout", "Trace", "amplitude_angles", "trace_quantum_function"]

logger = logging.getLogger(__name__)

# Operations with no effect on expectation values or probabilities of an uncontrolled circuit.
_IGNORED = {"GlobalPhase", "Barrier", "Snapshot", "Identity", "WireCut"}
_STATE_PREPS = {"StatePrep", "AmplitudeEmbedding"}
# PennyLane's amplitude tolerance for "already normalised" (pennylane.ops.qubit.state_preparation).
_NORM_TOLERANCE = 1e-10


@dataclass
class Readout:
    """Final outputs as ``circuit_outputs @ matrix.T + bias``: ``matrix (n_out, n_circuit)``, ``bias (n_out,)``."""

    matrix: torch.Tensor
    bias: torch.Tensor

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        matrix, bias = self.matrix.to(out), self.bias.to(out)
        return out @ matrix.T + bias  # (B, n_out)


@dataclass
class Trace:
    """A traced quantum function: the circuit, its input features and how to read its outputs.

    ``single_expval``: the function returns one expectation value (not in a list), so the layer's
    output has no output dimension, as in PennyLane. ``readout`` is None when the outputs are the
    circuit's own.
    """

    circuit: Circuit
    single_expval: bool
    features: FeatureMap
    readout: Readout | None = None


def _declare(circuit: Circuit, weight_shapes: dict[str, tuple[int, ...]]) -> dict[str, object]:
    """Declare the weight blocks on ``circuit`` and return their symbolic placeholders by name."""
    return {name: symbol_array(circuit.add_weights(name, shape)) for name, shape in weight_shapes.items()}


def _scalar(param):
    """A gate parameter as a Symbol or a float.

    Raises:
        UnsupportedError: a broadcast (batched) parameter.
    """
    if isinstance(param, Symbol):
        return param
    if isinstance(param, np.ndarray) and param.ndim == 0:
        return _scalar(param.item())
    if isinstance(param, torch.Tensor) and param.numel() == 1:
        return float(param)
    if np.ndim(param) == 0:
        return float(param)
    raise UnsupportedError(f"parameter broadcasting: a gate parameter of shape {np.shape(param)} "
                           "(trace the circuit for one sample; hqnn batches the inputs itself)")


def _simple_angle(param) -> Angle | float | None:
    """The parameter as one hqnn angle, or None when it is a sum of several sources or has an offset."""
    if not isinstance(param, Symbol):
        return param
    terms = [(s, c) for s, c in param.terms.items() if c != 0.0]
    if not terms:
        return param.const
    if len(terms) == 1 and param.const == 0.0:
        source, coeff = terms[0]
        return source * coeff
    return None


def _add_gate(circuit: Circuit, name: str, wires: tuple[int, ...], params: list) -> bool:
    """Append a gate hqnn knows; returns False when its angles need PennyLane's decomposition first."""
    angles = [a for a in (_simple_angle(p) for p in params) if a is not None]
    if len(angles) == len(params):
        circuit.gate(name, wires, *angles)
        return True
    if GATES[name].generator is None:  # one angle with a fixed generator: a sum of angles is a product of gates
        return False
    (param,) = params
    for source, coeff in param.terms.items():
        if coeff != 0.0:
            circuit.gate(name, wires, source * coeff)
    if param.const != 0.0:
        circuit.gate(name, wires, param.const)
    return True


# ---- state preparation ------------------------------------------------------------------------
def _gray(i: int) -> int:
    return i ^ (i >> 1)


def _safe_atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """atan2 with angle 0 and gradient 0 (not NaN) at the origin."""
    zero = (x == 0) & (y == 0)
    return torch.atan2(torch.where(zero, torch.zeros_like(y), y), torch.where(zero, torch.ones_like(x), x))


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with gradient 0 (not inf) at 0."""
    zero = x <= 0
    return torch.where(zero, torch.zeros_like(x), torch.sqrt(torch.where(zero, torch.ones_like(x), x)))


@functools.cache
def _walsh_matrix(q: int) -> torch.Tensor:
    size = 1 << q
    j, i = np.arange(size)[:, None], np.arange(size)[None, :]
    parity = np.vectorize(lambda v: bin(v).count("1") % 2)(j & (i ^ (i >> 1)))
    return torch.from_numpy(1.0 - 2.0 * parity) / size


def _multiplexer_matrix(q: int, like: torch.Tensor) -> torch.Tensor:
    """``M (2**q, 2**q)`` with ``θ = α @ M``: the RY angles of the CNOT ladder of a q-control multiplexer.

    For control state j the ladder's RYs act with signs ``S[j, i] = (-1)^popcount(j & gray(i))`` (the
    X's that the CNOTs applied so far), so ``α = S θ`` and, S being a Walsh matrix, ``θ = Sᵀ α / 2**q``.
    """
    return _walsh_matrix(q).to(dtype=like.dtype, device=like.device)


def amplitude_angles(amplitudes: torch.Tensor, normalize: bool, validate_norm: bool):
    """The multiplexed RY angles preparing ``amplitudes / |amplitudes|`` from ``|0...0>``, and the output scale.

    Args:
        amplitudes: ``(B, 2**n)`` real amplitudes, wire 0 the most significant bit.
        normalize, validate_norm: PennyLane's StatePrep flags (``pad_with`` implies normalize).

    Returns:
        ``(angles (B, 2**n - 1), scale (B,))``: angles level by level (target wire q, control state
        j of wires 0..q-1), then the factor for the outputs: the squared norm where PennyLane keeps the
        vector as given (no normalisation asked, or the batch already has norm 1 within its
        tolerance), else 1.

    Raises:
        ValueRangeError: a vector is not normalised and neither normalize nor pad_with was given.
    """
    batch, dim = amplitudes.shape
    n = dim.bit_length() - 1
    squares = amplitudes**2
    angles = []
    for q in range(n):
        if q == n - 1:  # the last level keeps the signs
            pairs = amplitudes.reshape(batch, 1 << q, 2)
            r0, r1 = pairs[..., 0], pairs[..., 1]
        else:
            halves = squares.reshape(batch, 1 << q, 2, -1).sum(-1)
            r0, r1 = _safe_sqrt(halves[..., 0]), _safe_sqrt(halves[..., 1])
        alpha = 2 * _safe_atan2(r1, r0)  # (B, 2**q): the rotation for each control state
        angles.append(alpha @ _multiplexer_matrix(q, alpha))
    norm2 = squares.sum(-1)  # (B,)
    if not (normalize or validate_norm):
        scale = norm2
    elif torch.allclose(norm2.detach().sqrt(), torch.ones_like(norm2), rtol=1e-5, atol=_NORM_TOLERANCE):
        scale = norm2
    elif normalize:
        scale = torch.ones_like(norm2)
    else:
        raise ValueRangeError(f"AmplitudeEmbedding/StatePrep: the state must have norm 1; got norms "
                              f"{norm2.detach().sqrt().tolist()[:4]}... (pass normalize=True or pad_with=...)")
    return torch.cat(angles, -1), scale


def _add_state_prep(circuit: Circuit, op, wires: tuple[int, ...], features: FeatureMap) -> None:
    """AmplitudeEmbedding / StatePrep of a real vector, first on its wires: a cascade of RY multiplexers."""
    touched = [w for o in circuit.ops for w in o.wires if w in wires]
    if touched:
        raise UnsupportedError(f"{op.name} on wires {list(op.wires)} after other operations on those wires: "
                               "hqnn prepares states only from |0...0>")
    state = np.asarray(op.parameters[0], dtype=object).reshape(-1)
    if state.shape[0] != 1 << len(wires):
        raise UnsupportedError(f"{op.name}: a state of shape {np.shape(op.parameters[0])} on {len(wires)} wires "
                               "(broadcast states are not supported)")
    entries: list[Symbol | float] = []
    for e in state:
        if isinstance(e, Symbol):
            entries.append(e)
            continue
        value = complex(np.asarray(e.detach() if isinstance(e, torch.Tensor) else e).item())
        if abs(value.imag) > 1e-12:
            raise UnsupportedError(f"{op.name} with complex amplitudes: hqnn prepares real amplitude vectors")
        entries.append(value.real)
    hyper = op.hyperparameters
    normalize = bool(hyper.get("normalize", False)) or hyper.get("pad_with") is not None
    if not any(isinstance(e, Symbol) for e in entries):
        normalize = True  # PennyLane has already normalised (or rejected) a constant state
    angles = features.amplitudes(entries, normalize, bool(hyper.get("validate_norm", False)))
    circuit.n_inputs = features.width
    k = 0
    for q, target in enumerate(wires):
        for i in range(1 << q):
            circuit.ry(next(iter(angles[k].terms)), target)  # a new column: one input, coefficient 1
            k += 1
            if q:
                bit = (_gray(i) ^ _gray((i + 1) % (1 << q))).bit_length() - 1
                circuit.cnot(wires[q - 1 - bit], target)


def _has_symbols(state) -> bool:
    return isinstance(state, (list, tuple, np.ndarray)) and any(
        isinstance(e, Symbol) for e in np.asarray(state, dtype=object).reshape(-1))


@contextlib.contextmanager
def _symbolic_state_prep(qml):
    """While tracing, StatePrep (and AmplitudeEmbedding) only pads a symbolic state: the rest happens in torch."""
    cls = qml.StatePrep
    original = cls.__dict__["_preprocess"]

    def preprocess(state, wires, pad_with, normalize, validate_norm):
        if not _has_symbols(state):
            return original.__func__(state, wires, pad_with, normalize, validate_norm)
        state = np.asarray(state, dtype=object)
        if state.ndim != 1:
            raise UnsupportedError(f"StatePrep/AmplitudeEmbedding of a state of shape {state.shape}: "
                                   "pass one sample's features (hqnn batches the inputs itself)")
        dim = 2 ** len(qml.wires.Wires(wires))
        if pad_with is None and state.shape[0] != dim:
            raise ValueError(f"State must be of length {dim}; got length {state.shape[0]}. "
                             "Use the 'pad_with' argument for automated padding.")
        if state.shape[0] > dim:
            raise ValueError(f"Input state must be of length {dim} or smaller to be padded; "
                             f"got length {state.shape[0]}.")
        padding = np.empty(dim - state.shape[0], dtype=object)
        padding[:] = [pad_with] * padding.shape[0]
        return np.concatenate([state, padding])

    cls._preprocess = staticmethod(preprocess)
    try:
        yield
    finally:
        cls._preprocess = original


# ---- operations -------------------------------------------------------------------------------
def _channel_strength(param, features: FeatureMap):
    """A channel strength as one hqnn angle (a sum of sources becomes a derived column)."""
    value = _simple_angle(param)
    return value if value is not None else features.derive("identity", param)


def _constant(param, what: str) -> np.ndarray:
    value = np.asarray(param.detach() if isinstance(param, torch.Tensor) else param)
    if value.dtype == object:
        raise UnsupportedError(f"{what} whose matrix depends on the inputs or weights")
    return value


def _add_operation(circuit: Circuit, op, wire_map: dict, qml, features: FeatureMap) -> None:
    """Translate one PennyLane operation (recursively through its decomposition)."""
    if isinstance(op, qml.measurements.MidMeasureMP) or op.name == "Conditional":
        raise UnsupportedError(f"mid-circuit measurement or classical control ({op.name}) on wires {list(op.wires)}")
    if op.name in _IGNORED:
        return
    circuit.n_inputs = features.width  # the derived columns made so far are valid angles
    wires = tuple(wire_map[w] for w in op.wires)
    if op.name == "QubitUnitary":
        circuit.unitary(_constant(op.parameters[0], "QubitUnitary"), wires)
        return
    if op.name in _STATE_PREPS:
        _add_state_prep(circuit, op, wires, features)
        return
    if op.name in CHANNELS:
        strengths = [_channel_strength(_scalar(p), features) for p in op.parameters]
        circuit.n_inputs = features.width
        circuit.channel(op.name, wires, *strengths)
        return
    if op.name == "QubitChannel":
        circuit.kraus(np.stack([_constant(k, "QubitChannel") for k in op.parameters]), wires)
        return
    if op.name in GATES and _add_gate(circuit, op.name, wires, [_scalar(p) for p in op.parameters]):
        return
    try:
        decomposition = op.decomposition()
    except qml.exceptions.DecompositionUndefinedError as exc:
        raise UnsupportedError(f"PennyLane operation {op.name} on wires {list(op.wires)}: it has no hqnn "
                               f"equivalent and no decomposition") from exc
    except UnsupportedError as exc:
        raise UnsupportedError(f"{op.name}: {exc}") from exc
    except TypeError as exc:  # e.g. complex arithmetic on a symbolic angle
        raise UnsupportedError(f"PennyLane operation {op.name} on wires {list(op.wires)}: its decomposition "
                               f"computes with the angles in a way hqnn cannot trace ({exc})") from exc
    for sub in decomposition:
        _add_operation(circuit, sub, wire_map, qml, features)


# ---- measurements -----------------------------------------------------------------------------
def _pauli_terms(obs, wire_map: dict, qml) -> list[tuple[float, str]]:
    """The observable as ``[(coefficient, "X0 Z3"), ...]`` ("" is the identity)."""
    sentence = obs.pauli_rep
    if sentence is None:
        try:
            matrix = _constant(qml.matrix(obs), f"observable {obs.name}")
        except (qml.exceptions.MatrixUndefinedError, TypeError, ValueError) as exc:
            raise UnsupportedError(f"observable {obs.name}: it has no Pauli decomposition or constant matrix") from exc
        sentence = qml.pauli_decompose(matrix, wire_order=obs.wires, pauli=True)
    terms = []
    for word, coeff in sentence.items():
        if isinstance(coeff, Symbol) or np.asarray(coeff).dtype == object:
            raise UnsupportedError(f"observable {obs.name} whose coefficients depend on the inputs or weights")
        coeff = complex(np.asarray(coeff.detach() if isinstance(coeff, torch.Tensor) else coeff).item())
        if abs(coeff.imag) > 1e-10:
            raise UnsupportedError(f"observable {obs.name} is not Hermitian (complex Pauli coefficient {coeff})")
        terms.append((coeff.real, " ".join(f"{letter}{wire_map[w]}" for w, letter in word.items())))
    return terms


class _Outputs:
    """The circuit's measurements and the rows that combine them into the function's outputs."""

    def __init__(self, circuit: Circuit):
        self.circuit = circuit
        self.rows: list[tuple[dict[int, float], float]] = []  # (output index -> coefficient, bias) per output
        self.expvals: dict[str, int] = {}  # Pauli word -> its output index

    def expval(self, terms: list[tuple[float, str]]) -> None:
        row: dict[int, float] = {}
        bias = 0.0
        for coeff, word in terms:
            if not word:
                bias += coeff
                continue
            if word not in self.expvals:
                self.expvals[word] = self.circuit.n_outputs
                self.circuit.expval(word)
            row[self.expvals[word]] = row.get(self.expvals[word], 0.0) + coeff
        self.rows.append((row, bias))

    def direct(self, add: Callable[[], object]) -> None:
        start = self.circuit.n_outputs
        add()
        self.rows.extend(({k: 1.0}, 0.0) for k in range(start, self.circuit.n_outputs))

    def readout(self) -> Readout | None:
        n = self.circuit.n_outputs
        if len(self.rows) == n and all(row == {k: 1.0} and bias == 0.0 for k, (row, bias) in enumerate(self.rows)):
            return None
        matrix = torch.zeros(len(self.rows), n, dtype=torch.float64)
        for k, (row, _) in enumerate(self.rows):
            for j, coeff in row.items():
                matrix[k, j] = coeff
        return Readout(matrix, torch.tensor([bias for _, bias in self.rows], dtype=torch.float64))


def _add_measurement(outputs: _Outputs, mp, wire_map: dict, qml) -> None:
    measurements, circuit = qml.measurements, outputs.circuit
    if getattr(mp, "mv", None) is not None:
        raise UnsupportedError(f"{type(mp).__name__} of a mid-circuit measurement value")
    if isinstance(mp, measurements.ExpectationMP):
        outputs.expval(_pauli_terms(mp.obs, wire_map, qml))
    elif isinstance(mp, measurements.ProbabilityMP) and mp.obs is None:
        labels = mp.wires if len(mp.wires) else list(wire_map)
        outputs.direct(lambda: circuit.probs([wire_map[w] for w in labels]))
    elif isinstance(mp, measurements.StateMP) and not isinstance(mp, measurements.DensityMatrixMP):
        if circuit.has_noise:
            raise UnsupportedError("state() of a circuit with noise channels (PennyLane returns a density matrix)")
        outputs.direct(circuit.state)
    else:
        raise UnsupportedError(f"measurement {mp}: hqnn supports expval (Pauli words, Hamiltonians, Pauli sums, "
                               "constant Hermitian), probs(wires) and state()")


def _operation_in(exc: BaseException, qml) -> str:
    """"NAME: " for the outermost PennyLane operation being built when ``exc`` was raised, else ""."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, qml.operation.Operator):
            return f"{type(candidate).__name__}: "
    return ""


def trace_quantum_function(func: Callable, weight_shapes: dict[str, tuple[int, ...]], n_inputs: int,
                           wires: Sequence | None = None) -> Trace:
    """Trace ``func(inputs=..., **weights)`` once into a Circuit.

    Args:
        func: a PennyLane quantum function (``qnode.func``) taking ``inputs`` and the weight arguments.
        weight_shapes: weight name -> shape (``()`` for a scalar), in declaration order.
        n_inputs: length of the ``inputs`` vector.
        wires: the device's wire labels (hqnn wire i is ``wires[i]``); None: the wires the function touches.

    Returns:
        the :class:`Trace`.

    Raises:
        UnsupportedError: an operation, measurement or angle hqnn cannot represent.
        MissingDependencyError: PennyLane is not installed.
    """
    qml = require("pennylane", "pennylane")
    # qml.math dispatches on the argument's type: route Symbols to numpy, whose ufuncs they intercept.
    require("autoray", "pennylane").register_backend(Symbol, "numpy")
    scratch = Circuit(1, n_inputs)
    kwargs = {"inputs": symbol_array(scratch.inputs), **_declare(scratch, weight_shapes)}
    features = FeatureMap(n_inputs)
    with deriving(features), _symbolic_state_prep(qml):
        with qml.queuing.AnnotatedQueue() as queue:
            try:
                result = func(**kwargs)
            except UnsupportedError as exc:
                raise UnsupportedError(f"{_operation_in(exc, qml)}{exc}") from exc
        tape = qml.tape.QuantumScript.from_queue(queue)
        wire_map = pennylane_wire_map(tape.wires if wires is None else wires)
        missing = [w for w in tape.wires if w not in wire_map]
        if missing:
            raise UnsupportedError(f"the function acts on wires {missing} that the device does not have "
                                   f"({list(wire_map)})")
        draft = Circuit(len(wire_map), n_inputs)
        _declare(draft, weight_shapes)  # the same declarations: the placeholders' indices are valid here
        for op in tape.operations:
            _add_operation(draft, op, wire_map, qml, features)
    if not tape.measurements:
        raise UnsupportedError("the quantum function returns no measurement")
    circuit = Circuit(len(wire_map), features.width)
    _declare(circuit, weight_shapes)
    circuit.ops.extend(draft.ops)
    outputs = _Outputs(circuit)
    for mp in tape.measurements:
        _add_measurement(outputs, mp, wire_map, qml)
    logger.debug("traced %s into %r", getattr(func, "__name__", func), circuit)
    return Trace(circuit, isinstance(result, qml.measurements.ExpectationMP), features, outputs.readout())

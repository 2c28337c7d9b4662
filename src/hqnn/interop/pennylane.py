"""PennyLane adapters: a drop-in ``TorchLayer`` that runs on hqnn, and circuits as QNodes.

:class:`TorchLayer` takes the same arguments as ``qml.qnn.TorchLayer``, registers the same
Parameters under the same names and returns the same values, but traces the QNode's function once
per input width (on the first call with that width, as PennyLane builds its tape from the inputs it
is given) into an :class:`~hqnn.sim.Circuit` and simulates it with :func:`hqnn.sim.run`. Pickles and
``torch.save`` keep the traced circuits but not the function (often a local closure). :func:`to_pennylane`
goes the other way. PennyLane is imported only when these are used.
"""

from __future__ import annotations

import functools
import inspect
import math
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from hqnn.exceptions import ConfigError, ShapeError, require
from hqnn.interop._pl_trace import Trace, trace_quantum_function
from hqnn.interop.conventions import pennylane_wire
from hqnn.sim.circuit import CONST, INPUT, Circuit
from hqnn.sim.execute import run

__all__ = ["TorchLayer", "to_pennylane", "trace_qnode"]

_INPUT_ARG = "inputs"


def _normalise_shapes(weight_shapes: dict) -> dict[str, tuple[int, ...]]:
    """PennyLane's rule: an iterable is a shape, 1 is a scalar ``()``, any other int n is ``(n,)``."""
    return {name: tuple(int(s) for s in size) if isinstance(size, Iterable) else () if size == 1 else (int(size),)
            for name, size in weight_shapes.items()}


def _validate_signature(func: Callable, weight_shapes: dict) -> None:
    """The checks of ``qml.qnn.TorchLayer``: an ``inputs`` argument and a shape for every other one."""
    sig = inspect.signature(func).parameters
    if _INPUT_ARG not in sig:
        raise ConfigError(f"the QNode must take an argument named {_INPUT_ARG!r} for the data; it takes {list(sig)}")
    if _INPUT_ARG in weight_shapes:
        raise ConfigError(f"{_INPUT_ARG!r} must not be given a shape in weight_shapes")
    kinds = [p.kind for p in sig.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        raise ConfigError("the QNode cannot take a variable number of positional arguments (*args)")
    if inspect.Parameter.VAR_KEYWORD not in kinds and set(weight_shapes) | {_INPUT_ARG} != set(sig):
        raise ConfigError(f"weight_shapes must give a shape for every non-input argument of the QNode: "
                          f"expected {sorted(set(sig) - {_INPUT_ARG})}, got {sorted(weight_shapes)}")


def trace_qnode(qnode, weight_shapes: dict, n_inputs: int | None = None) -> Trace:
    """Trace a QNode's quantum function into an hqnn Circuit for inputs of length ``n_inputs``.

    Args:
        qnode: a ``qml.QNode`` whose function takes ``inputs`` and the weight arguments.
        weight_shapes: as for ``qml.qnn.TorchLayer``.
        n_inputs: length of ``inputs``; by default the number of device wires.

    Returns:
        the :class:`~hqnn.interop._pl_trace.Trace` (``.circuit``, ``.single_expval``, ``.features``,
        ``.readout``).

    Raises:
        UnsupportedError: an operation, measurement or angle hqnn cannot represent.
        ShapeError: the function reads more than ``n_inputs`` inputs.
    """
    labels = _device_wires(qnode)
    if n_inputs is None:
        if labels is None:
            raise ShapeError("the device declares no wires; pass n_inputs (the length of the inputs vector)")
        n_inputs = len(labels)
    return _trace(qnode.func, _normalise_shapes(weight_shapes), int(n_inputs), labels)


def _device_wires(qnode) -> list | None:
    wires = qnode.device.wires
    return list(wires) if wires is not None and len(wires) else None


def _trace(func: Callable, shapes: dict, n_inputs: int, labels: list | None) -> Trace:
    try:
        return trace_quantum_function(func, shapes, n_inputs, labels)
    except IndexError as exc:
        raise ShapeError(f"the quantum function reads more than the {n_inputs} inputs it was given "
                         f"(inputs of shape (..., {n_inputs}))") from exc


class TorchLayer(nn.Module):
    """Drop-in replacement for ``qml.qnn.TorchLayer`` that simulates the QNode with hqnn.

    Each key of ``weight_shapes`` becomes an ``nn.Parameter`` registered under that name (an int n
    means shape ``(n,)``, 1 a scalar). ``init_method`` is None (U[0, 2π)), a ``torch.nn.init``-style
    callable, or a dict giving a callable or a tensor per weight. The forward pass maps
    ``(..., n_inputs) -> (..., n_outputs)`` (leading dimensions flattened and restored; a QNode returning
    one expectation value gives ``(...,)``), in the dtype and on the device of the inputs. The function
    is traced on the first call with each input width and the circuit is cached for that width.

    Args:
        qnode: the QNode (its function is kept for tracing; a pickled layer keeps only the traces).
        weight_shapes: weight argument name -> shape.
        init_method: weight initialisation, as in PennyLane.
        n_inputs: optional hint (an hqnn extra): trace for this input width now, so unsupported
            operations are reported at construction.
        method: simulation method passed to :func:`hqnn.sim.run` (an hqnn extra).

    Raises:
        ConfigError: the QNode's signature does not match ``weight_shapes``.
        UnsupportedError: the circuit uses something hqnn cannot simulate (named in the message).
        ShapeError: a tensor in ``init_method`` or the inputs have the wrong shape.

    Example:
        >>> import pennylane as qml
        >>> dev = qml.device("default.qubit", wires=2)
        >>> @qml.qnode(dev)
        ... def qnode(inputs, weights):
        ...     qml.AngleEmbedding(inputs, wires=range(2))
        ...     qml.BasicEntanglerLayers(weights, wires=range(2))
        ...     return [qml.expval(qml.Z(i)) for i in range(2)]
        >>> TorchLayer(qnode, {"weights": (3, 2)})(torch.zeros(5, 2)).shape
        torch.Size([5, 2])
    """

    def __init__(self, qnode, weight_shapes: dict, init_method: Callable | dict[str, Callable | Any] | None = None,
                 *, n_inputs: int | None = None, method: str = "auto"):
        super().__init__()
        shapes = _normalise_shapes(weight_shapes)
        _validate_signature(qnode.func, shapes)
        if getattr(qnode, "interface", "auto") not in ("auto", "torch"):
            raise ConfigError(f"TorchLayer needs a QNode with interface 'auto' or 'torch'; got {qnode.interface!r}")
        self.weight_shapes, self.method = shapes, method
        self.func_name = getattr(qnode.func, "__name__", "qnode")
        self._func, self._wires = qnode.func, _device_wires(qnode)
        self.traces: dict[int, Trace] = {}
        self._last: int | None = None
        if n_inputs is not None:
            self.trace(int(n_inputs))
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(self._initial_weight(name, shape, init_method)))

    def trace(self, n_inputs: int) -> Trace:
        """The trace for inputs of length ``n_inputs`` (made on first use, then cached)."""
        if n_inputs not in self.traces:
            if self._func is None:
                raise ShapeError(f"this layer was unpickled with traces for input widths {sorted(self.traces)}; "
                                 f"got inputs of width {n_inputs} (build it from the QNode to trace new widths)")
            self.traces[n_inputs] = _trace(self._func, self.weight_shapes, n_inputs, self._wires)
        self._last = n_inputs
        return self.traces[n_inputs]

    @property
    def circuit(self) -> Circuit:
        """The circuit of the most recently used input width."""
        if self._last is None:
            raise ShapeError("the layer has not been traced yet: call it on inputs or pass n_inputs=")
        return self.traces[self._last].circuit

    def __getstate__(self):
        state = dict(self.__dict__)
        try:  # keep the function where it pickles (a module-level function), else only the traces
            pickle.dumps(self._func)
        except Exception:  # noqa: BLE001 - any pickling failure (closures, lambdas, QNode-wrapped names)
            state["_func"] = None
        return state

    @staticmethod
    def _initial_weight(name: str, shape: tuple[int, ...], init_method) -> torch.Tensor:
        if init_method is None:
            init = functools.partial(torch.nn.init.uniform_, b=2 * math.pi)
        elif callable(init_method):
            init = init_method
        else:
            init = init_method[name]
            if isinstance(init, torch.Tensor):
                if tuple(init.shape) != shape:
                    raise ShapeError(f"the tensor given for weight {name!r} must have shape {shape}; "
                                     f"got {tuple(init.shape)}")
                return init
        return init(torch.empty(*shape)) if shape else init(torch.empty(1))[0]

    @property
    def qnode_weights(self) -> dict[str, nn.Parameter]:
        """The weights by argument name, as ``qml.qnn.TorchLayer.qnode_weights``."""
        return {name: getattr(self, name) for name in self.weight_shapes}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() == 0:
            raise ShapeError("TorchLayer expects inputs of shape (..., n_inputs); got a scalar")
        n_inputs = inputs.shape[-1]
        trace = self.trace(n_inputs)
        lead = inputs.shape[:-1]
        weights = torch.cat([getattr(self, name).to(inputs).reshape(-1) for name in self.weight_shapes]) \
            if self.weight_shapes else None
        flat, scale = inputs.reshape(-1, n_inputs), None
        if trace.features:  # derived features: non-linear angles, state-preparation angles
            flat, scale = trace.features(flat, weights)
        out = run(trace.circuit, flat, weights, method=self.method)  # (B, n_circuit_outputs)
        if trace.readout is not None:  # Hamiltonians, Pauli sums, Hermitian observables
            out = trace.readout(out)
        if out.is_complex():  # state(): qml.qnn.TorchLayer casts it to the inputs' real dtype, keeping the real part
            out = out.real
            scale = None if scale is None else scale.sqrt()
        if scale is not None:  # an unnormalised prepared state scales every output
            out = out * scale
        out = out.to(inputs.dtype)
        if trace.single_expval:
            return out.reshape(lead)
        return out.reshape(*lead, out.shape[-1])

    def extra_repr(self) -> str:
        traced = ", ".join(f"{n}: {t.circuit!r}" for n, t in self.traces.items())
        return f"func={self.func_name}, traced={{{traced}}}"


def to_pennylane(circuit: Circuit, weights=None, device=None):
    """The circuit as a PennyLane QNode ``qnode(inputs, weights)`` (torch interface).

    hqnn wire i is PennyLane wire i. The QNode returns a list with one entry per hqnn measurement
    (``qml.expval`` of the Pauli word, ``qml.probs`` or ``qml.state``); ``torch.hstack`` of the
    list equals :func:`hqnn.sim.run`'s output for one sample.

    Args:
        circuit: the circuit.
        weights: ``(n_weights,)`` default weights bound to the QNode's ``weights`` argument.
        device: a PennyLane device or device name (default "default.qubit" with n_qubits wires).

    Returns:
        the QNode.

    Raises:
        MissingDependencyError: PennyLane is not installed.

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> qnode = to_pennylane(rezk_qnn(), weights=torch.zeros(8))
        >>> len(qnode(torch.zeros(4)))
        4
    """
    qml = require("pennylane", "pennylane")
    if device is None or isinstance(device, str):
        device = qml.device(device or "default.qubit", wires=[pennylane_wire(w) for w in range(circuit.n_qubits)])
    default_weights = weights

    def angle(a, inputs, weights):
        if a.source == INPUT:
            return a.scale * inputs[..., a.index]
        if a.source == CONST:
            return a.scale
        return a.scale * weights[a.index]

    def measurement(m):
        if m.kind == "probs":
            return qml.probs(wires=[pennylane_wire(w) for w in m.wires])
        if m.kind == "state":
            return qml.state()
        factors = [getattr(qml, f"Pauli{letter}")(pennylane_wire(w)) for letter, w in m.paulis]
        return qml.expval(qml.prod(*factors) if len(factors) > 1 else factors[0] if factors else qml.Identity(0))

    @qml.qnode(device, interface="torch")
    def qnode(inputs=None, weights=default_weights):
        for op in circuit.ops:
            wires = [pennylane_wire(w) for w in op.wires]
            if op.matrix is not None:
                qml.QubitUnitary(op.matrix, wires=wires)
            else:
                getattr(qml, op.name)(*(angle(a, inputs, weights) for a in op.params), wires=wires)
        return [measurement(m) for m in circuit.measurements]

    return qnode

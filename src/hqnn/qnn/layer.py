"""``QuantumLayer``: a circuit as a ``torch.nn`` layer that owns its weights."""

from __future__ import annotations

import torch
from torch import nn

from hqnn.exceptions import ConfigError, ShapeError
from hqnn.qnn.init import initialize
from hqnn.sim.circuit import Circuit
from hqnn.sim.execute import run
from hqnn.sim.gates import complex_dtype_for
from hqnn.sim.gradients import DIFF_METHODS, LiftedCircuit, execute
from hqnn.sim.noise import NoiseModel
from hqnn.sim.plan import METHODS, compile_circuit

__all__ = ["QuantumLayer", "NotACircuitError"]


class NotACircuitError(ConfigError, TypeError):
    """QuantumLayer was given something other than an hqnn Circuit (a ConfigError, and a TypeError
    for callers that catch the latter)."""


class QuantumLayer(nn.Module):
    """A circuit's trainable weights as one Parameter; maps ``(..., n_inputs) -> (..., n_outputs)``.

    The layer is stateless between calls (nothing to reset), follows its inputs' device, and can be
    saved with ``state_dict``, ``torch.save`` of the whole module, pickling or ``copy.deepcopy``.

    Args:
        circuit: the circuit (see :class:`hqnn.sim.Circuit`).
        init: weight initialiser: "uniform" (U[0, 2π), the default), "normal", "truncated_normal", "zeros".
        init_kwargs: settings of the initialiser (e.g. ``{"std": 0.1}``).
        method: simulation method of noise-free backprop layers (see :func:`hqnn.sim.run`):
            "auto", "native", "engine" or "gates".
        diff_method: "best" (backprop, or parameter-shift with shots), "backprop", "adjoint",
            "parameter-shift" or "finite-diff" (:mod:`hqnn.sim.gradients`).
        shots: samples per measurement (None: exact expectations).
        noise_model: a :class:`hqnn.sim.noise.NoiseModel` applied to the circuit (density matrices).
        generator: a CPU torch.Generator for shots and random channel strengths (reproducible runs).

    Raises:
        ConfigError: an unknown ``method`` or ``diff_method``, or a ``method`` other than "auto" for a
            layer that does not run noise-free backprop (at construction).
        ShapeError: inputs whose last dimension is not ``circuit.n_inputs``.

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> layer = QuantumLayer(rezk_qnn())
        >>> layer(torch.zeros(8, 4)).shape
        torch.Size([8, 4])
    """

    def __init__(self, circuit: Circuit, init: str = "uniform", init_kwargs: dict | None = None,
                 method: str = "auto", diff_method: str = "best", shots: int | None = None,
                 noise_model: NoiseModel | None = None, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(circuit, Circuit):
            raise NotACircuitError(f"QuantumLayer needs an hqnn Circuit; got {type(circuit).__name__}")
        if diff_method != "best" and diff_method not in DIFF_METHODS:
            raise ConfigError(f"unknown diff_method {diff_method!r}; valid: best, {', '.join(DIFF_METHODS)}")
        self.circuit = circuit
        self.method = method
        self.noise_model, self.shots, self.generator = noise_model, shots, generator
        if method not in METHODS:
            raise ConfigError(f"unknown simulation method {method!r}; valid: {', '.join(METHODS)}")
        self.diff_method = ("parameter-shift" if shots else "backprop") if diff_method == "best" else diff_method
        if shots is not None and self.diff_method in ("backprop", "adjoint"):
            raise ConfigError(f"shots={shots} needs diff_method 'parameter-shift' or 'finite-diff'; "
                              f"got {self.diff_method!r}")
        if method != "auto" and (self.diff_method != "backprop" or noise_model is not None):
            raise ConfigError(f"method={method!r} applies to noise-free backprop layers; this layer runs "
                              f"diff_method={self.diff_method!r}{' with a noise model' if noise_model else ''}: "
                              "leave method='auto'")
        self.simulated = noise_model.apply(circuit) if noise_model is not None else circuit
        self.init, self.init_kwargs = init, dict(init_kwargs or {})
        self.weights = nn.Parameter(torch.empty(circuit.n_weights))
        self.reset_parameters()
        self._compiled = self._compile()

    def _compile(self):
        """What :meth:`forward` runs directly: the circuit's plan (noise-free backprop) or its
        :class:`LiftedCircuit` (other diff methods); None for noisy backprop (then every call goes
        through :func:`hqnn.sim.gradients.execute`). Built once: a call re-validates nothing."""
        if self.diff_method != "backprop":
            return LiftedCircuit(self.simulated, self.diff_method, self.shots, self.generator)
        if self.simulated is not self.circuit or self.generator is not None:
            return None
        return compile_circuit(self.circuit, self.method)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_compiled", None)  # holds kernel tables and pointers: rebuilt, never copied
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._compiled = self._compile()

    def reset_parameters(self) -> None:
        initialize(self.weights, self.init, **self.init_kwargs)

    @property
    def n_inputs(self) -> int:
        return self.circuit.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.circuit.n_outputs

    def weight_blocks(self) -> dict[str, torch.Tensor]:
        """The weights as views with their declared shapes, by block name."""
        return {name: self.weights[sl].view(shape) for name, (sl, shape) in self.circuit.weight_slices().items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != (self.n_inputs,):
            raise ShapeError(
                f"QuantumLayer expects inputs of shape (..., {self.n_inputs}); got {tuple(x.shape)}")
        lead = x.shape[:-1]
        flat, weights = x.reshape(lead.numel(), self.n_inputs), self.weights.to(x.device)
        if self._compiled is not None and flat.dtype == weights.dtype and flat.shape[0] > 0:
            # the hot path: one compiled call (the native kernel checks the angles' finiteness itself)
            out = self._compiled.execute(flat, weights, complex_dtype_for(flat.dtype))
        elif self._compiled is not None and self.diff_method == "backprop":  # a plan, with mixed precision or no rows
            out = run(self.circuit, flat, weights, method=self.method)
        else:
            out = execute(self.simulated, flat, weights, diff_method=self.diff_method, shots=self.shots,
                          generator=self.generator)
        return out.reshape(*lead, out.shape[-1])

    def extra_repr(self) -> str:
        return (f"n_qubits={self.circuit.n_qubits}, n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, "
                f"n_weights={self.circuit.n_weights}")

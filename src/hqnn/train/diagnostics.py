"""Circuit diagnostics: is each circuit layer of a hybrid fed useful angles, and does it get gradients?

A :class:`CircuitMonitor` watches every :class:`~hqnn.qnn.QuantumLayer` of a model during training
and, once per epoch, reports per layer the statistics of its input angles and the gradient norms of
its weights and of the layer that feeds it; :meth:`CircuitMonitor.warnings` turns the last epoch's
numbers into plain-English warnings for the run's summary: a dead input (the circuit sees a
constant), saturated inputs (the activation before the circuit passes almost no gradient back) and
vanishing circuit gradients (a barren plateau, or a circuit whose output is ignored).

Definitions:

* **Input statistics** are taken over the values fed to the layer in training mode only (evaluation
  passes are not counted), per input feature (the layer's ``n_inputs`` columns). ``angle_std`` is
  the population standard deviation (``ddof=0``) of a feature, averaged over features.
* **Saturated**: circuit inputs are rotation angles that usually come from a bounded activation,
  and which one is read off the epoch's observed range, for the smallest bound ``b`` in
  ``SATURATION_BOUNDS`` (1, or π for activations scaled to angles) that holds it. When every value
  lies in ``[0, b]`` (firing rates, sigmoids) a value is saturated within ``SATURATION_MARGIN * b``
  of either end (a neuron that never or always fires); when every value lies in ``[-b, b]`` (tanh)
  a value is saturated when ``|x| >= (1 - SATURATION_MARGIN) * b``; inputs outside ``[-π, π]`` come
  from no bounded activation (a plain ``Linear``), and nothing is counted as saturated.
* **The layer before** a circuit is the last module with parameters of its own that ran before the
  circuit in the same forward pass (found with forward hooks, so it works for any model wiring);
  ``pre_grad_norm`` is the norm of that module's own parameter gradients.
* **Gradient norms** are root-mean-square over the epoch's steps of the per-step L2 norm:
  ``sqrt(mean_step ||g||^2)``. Frozen parameters (``grad`` is None) count as zero.

Accumulation stays on the model's device (no host synchronisation per batch); numbers are copied to
the host once per layer in :meth:`CircuitMonitor.end_epoch`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from hqnn.qnn import QuantumLayer

__all__ = [
    "CircuitMonitor",
    "DEAD_INPUT_STD",
    "SATURATION_MARGIN",
    "SATURATION_BOUNDS",
    "SATURATED_FRACTION",
    "FEATURE_SATURATED_FRACTION",
    "VANISHING_GRAD_NORM",
]

# A value within 1% of the activation's bound is saturated: at |tanh| >= 0.99 the derivative
# 1 - tanh^2 is below 0.02, so less than 2% of the gradient passes back to the layer before; a rate
# within 0.01 of 0 or 1 is a neuron that never or always fires (for T <= 100 time steps, exactly so).
SATURATION_MARGIN = 0.01
# The bounds of the activations that feed circuits: tanh, sigmoid and firing rates (1), and the same
# scaled to cover a rotation's useful half-turn (π, e.g. the ``bn_sigmoid`` angle encoder).
SATURATION_BOUNDS = (1.0, math.pi)
_ROUNDING = 1e-6  # slack for float32 inputs at a bound (float32(pi) > math.pi)
# An input that moves by less than 1e-3 over a whole epoch moves each <Z> by at most 1e-3 times its
# angle scale (1, or pi in rezk_qnn's RY(pi x)) per gate it feeds, as |d<Z>/d theta| <= 1 for one
# rotation: the circuit sees a constant.
DEAD_INPUT_STD = 1e-3
# Warn when most of a layer's input values are saturated, or nearly all values of one input.
SATURATED_FRACTION = 0.5
FEATURE_SATURATED_FRACTION = 0.9
# RMS norm of all of a circuit's weight gradients. Healthy hqnn circuits get about 1e-2 to 1 (measured
# in the 2nd epoch on digits, Adam 1e-3: cnn_qnn 0.12, cnn_qnn_plus 0.20, sqdr_cnn 0.075, hcqdl
# 0.009); below 1e-5 the gradient is within two orders of
# magnitude of float32 rounding (eps 1.2e-7) of a loss of order 1: SGD does not move the circuit, and
# Adam's normalised steps follow noise.
VANISHING_GRAD_NORM = 1e-5

_KEYS = (
    "angle_mean", "angle_std", "angle_min_std", "angle_min", "angle_max", "dead_inputs", "min_std_input",
    "saturated", "max_feature_saturated", "max_saturated_input", "grad_norm", "pre_grad_norm", "trainable",
)


@dataclass
class _LayerState:
    """One circuit layer's accumulators for the current epoch (tensors on the inputs' device)."""

    module: QuantumLayer
    previous: nn.Module | None = None
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    trainable: bool = False

    def reset(self) -> None:
        self.inputs, self.count, self.grads, self.steps, self.trainable = {}, 0, {}, 0, False


def _accumulate(store: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> None:
    store[key] = value if key not in store else store[key] + value


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float64 to accumulate in, float32 where the device has no float64 (Apple MPS)."""
    return x.to(torch.float32 if x.device.type == "mps" else torch.float64)


def _squared_norm(params: Iterable[nn.Parameter]) -> torch.Tensor | None:
    grads = [_wide(p.grad.detach()) for p in params if p.grad is not None]
    if not grads:
        return None
    total = grads[0].square().sum()
    for g in grads[1:]:
        total = total + g.square().sum()
    return total


class CircuitMonitor:
    """Per-epoch input and gradient statistics of every :class:`~hqnn.qnn.QuantumLayer` in ``model``.

    The trainer calls :meth:`after_backward` after each training ``loss.backward()`` and
    :meth:`end_epoch` once per epoch; the input statistics are collected by hooks during training
    forward passes (a module in ``eval()`` mode is not counted). A model without circuit layers
    gets a monitor that does nothing and reports nothing.

    Args:
        model: the model to watch (or its ``torch.compile`` wrapper); circuit layers are named by
            their module path (``"quantum"``, ``"head.2"``; ``"circuit"`` when the model is itself a
            QuantumLayer).

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), QuantumLayer(rezk_qnn()))
        >>> monitor = CircuitMonitor(model)
        >>> model(torch.randn(8, 3)).sum().backward()
        >>> monitor.after_backward()
        >>> sorted(monitor.end_epoch())[:2]
        ['2.angle_max', '2.angle_mean']
    """

    def __init__(self, model: nn.Module):
        model = getattr(model, "_orig_mod", model)  # a torch.compile'd model: hook the modules it runs
        self._paths = {id(m): name for name, m in model.named_modules()}
        self._layers = {
            name or "circuit": _LayerState(m) for name, m in model.named_modules() if isinstance(m, QuantumLayer)
        }
        self._last_called: nn.Module | None = None
        self._handles: list[Any] = []
        # which layer feeds each circuit is found on the first forward pass; these hooks then go, so
        # that a torch.compile'd model is not recompiled for Python state that changes every call
        self._tracking: list[Any] = []
        if not self._layers:
            return
        self._tracking.append(model.register_forward_pre_hook(self._start_pass))
        for module in model.modules():
            if next(module.parameters(recurse=False), None) is not None:
                self._tracking.append(module.register_forward_hook(self._called))
        self._tracking.append(model.register_forward_hook(self._first_pass_done))
        for name, state in self._layers.items():
            # a partial of a method, not a closure, so that the model stays picklable with hooks attached
            self._handles.append(state.module.register_forward_pre_hook(partial(self._record_inputs, name)))

    @property
    def names(self) -> list[str]:
        """The watched circuit layers' module paths."""
        return list(self._layers)

    def previous(self, name: str) -> str | None:
        """Module path of the layer that feeds circuit ``name`` (None before its first forward pass,
        or when nothing with parameters runs before it)."""
        module = self._layers[name].previous
        return None if module is None else self._paths.get(id(module), type(module).__name__)

    def remove(self) -> None:
        """Detach every hook from the model; the monitor records nothing afterwards."""
        for handle in self._handles + self._tracking:
            handle.remove()
        self._handles, self._tracking = [], []

    def _start_pass(self, module: nn.Module, args: tuple) -> None:
        self._last_called = None

    def _called(self, module: nn.Module, args: tuple, output: Any) -> None:
        self._last_called = module

    @torch.compiler.disable
    def _first_pass_done(self, module: nn.Module, args: tuple, output: Any) -> None:
        for handle in self._tracking:
            handle.remove()
        self._tracking = []

    # run eagerly under torch.compile (one graph break per circuit layer): the statistics are
    # Python-side accumulators that a traced graph would guard on and recompile for every batch
    @torch.compiler.disable
    def _record_inputs(self, name: str, module: QuantumLayer, args: tuple) -> None:
        state = self._layers[name]
        if self._tracking:
            state.previous = self._last_called
        if not module.training or not args or not isinstance(args[0], torch.Tensor):
            return
        with torch.no_grad():
            x = args[0].detach().reshape(-1, module.n_inputs)  # (N, n_inputs)
            if x.shape[0] == 0:
                return
            x = _wide(x)
            if "shift" not in state.inputs:
                # sums of values shifted by the first batch's mean keep the variance exact for
                # features with a large mean and a tiny spread (the dead inputs we look for)
                state.inputs["shift"] = x.mean(0)
            shifted = x - state.inputs["shift"]
            magnitude = x.abs()
            _accumulate(state.inputs, "sum", shifted.sum(0))
            _accumulate(state.inputs, "sumsq", shifted.square().sum(0))
            near_bound = [(magnitude >= (1 - SATURATION_MARGIN) * bound).sum(0) for bound in SATURATION_BOUNDS]
            near_zero = [(magnitude <= SATURATION_MARGIN * bound).sum(0) for bound in SATURATION_BOUNDS]
            _accumulate(state.inputs, "high", torch.stack(near_bound))  # (bounds, n_inputs)
            _accumulate(state.inputs, "low", torch.stack(near_zero))
            low, high = x.amin(0), x.amax(0)
            state.inputs["min"] = torch.minimum(state.inputs.get("min", low), low)
            state.inputs["max"] = torch.maximum(state.inputs.get("max", high), high)
            state.count += x.shape[0]

    def after_backward(self) -> None:
        """Add this step's squared gradient norms (circuit weights, layer before); call after each
        training ``loss.backward()`` and before the optimiser clears the gradients."""
        for state in self._layers.values():
            state.steps += 1
            state.trainable |= any(p.requires_grad for p in state.module.parameters())
            before = () if state.previous is None else state.previous.parameters(recurse=False)
            for key, params in (("weights", state.module.parameters()), ("previous", before)):
                squared = _squared_norm(params)
                if squared is not None:
                    _accumulate(state.grads, key, squared)

    def end_epoch(self) -> dict[str, float]:
        """This epoch's statistics, ``{f"{name}.{stat}": value}`` for every circuit layer, then a reset.

        Stats: ``angle_mean`` (mean input value), ``angle_std`` (mean over features of each feature's
        std), ``angle_min_std`` (the smallest feature std) and ``min_std_input`` (its index),
        ``angle_min`` / ``angle_max`` (the observed range), ``dead_inputs`` (features with std below
        ``DEAD_INPUT_STD``), ``saturated`` (fraction of all values), ``max_feature_saturated`` and
        ``max_saturated_input`` (the worst feature's fraction and index), ``grad_norm`` and
        ``pre_grad_norm`` (RMS per-step gradient norms of the circuit weights and of the layer
        before; 0 when frozen or without steps), ``trainable`` (1.0 when the circuit weights
        required grad during the epoch's steps). Input stats are NaN for a layer that saw no
        training batch.
        """
        stats: dict[str, float] = {}
        for name, state in self._layers.items():
            values = self._input_stats(state) + self._grad_stats(state)
            stats |= {f"{name}.{key}": value for key, value in zip(_KEYS, values)}
            state.reset()
        return stats

    @staticmethod
    def _input_stats(state: _LayerState) -> list[float]:
        if state.count == 0:
            return [math.nan] * 10
        acc, n = state.inputs, state.count
        mean_shifted = acc["sum"] / n
        std = (acc["sumsq"] / n - mean_shifted.square()).clamp_min(0).sqrt()  # (n_inputs,)
        low, high = acc["min"].min(), acc["max"].max()
        saturated = torch.zeros_like(std)  # (n_inputs,): stays 0 for inputs of no bounded activation
        for k, bound in reversed(list(enumerate(SATURATION_BOUNDS))):  # the smallest bound that holds wins
            bound *= 1 + _ROUNDING  # float32 pi * 1.0 lies just above math.pi
            positive, symmetric = (low >= 0) & (high <= bound), (low >= -bound) & (high <= bound)
            counts = _wide(torch.where(positive, acc["high"][k] + acc["low"][k], acc["high"][k])) / n
            saturated = torch.where(symmetric, counts, saturated)
        values = [
            (acc["shift"] + mean_shifted).mean(), std.mean(), std.min(), low, high,
            (std < DEAD_INPUT_STD).sum(), std.argmin(), saturated.mean(), saturated.max(), saturated.argmax(),
        ]
        return [float(v) for v in torch.stack([v.double() for v in values]).tolist()]

    @staticmethod
    def _grad_stats(state: _LayerState) -> list[float]:
        norms = [math.sqrt(float(state.grads[key]) / state.steps) if key in state.grads else 0.0
                 for key in ("weights", "previous")]  # a key is there only after a step
        return [*norms, float(state.trainable)]

    def warnings(self, history: Sequence[dict[str, Any]]) -> list[str]:
        """Plain-English warnings about each circuit layer in the last epoch of ``history`` (rows
        holding :meth:`end_epoch`'s keys, and ``epoch``); an empty list when all looks healthy."""
        found: list[str] = []
        for name in self._layers:
            rows = [(i, row) for i, row in enumerate(history) if f"{name}.grad_norm" in row]
            if not rows:
                continue
            index, row = rows[-1]
            epoch = row.get("epoch", index + 1)
            stat = {key: float(row.get(f"{name}.{key}", math.nan)) for key in _KEYS}
            n_inputs = self._layers[name].module.n_inputs
            found += _input_warnings(name, n_inputs, epoch, stat, self.previous(name))
            if stat["trainable"] > 0:
                grad = stat["grad_norm"]
                if not math.isfinite(grad):
                    found.append(f"{name}: circuit weight gradients are not finite ({grad}) in epoch {epoch}")
                elif grad < VANISHING_GRAD_NORM:
                    found.append(
                        f"{name}: circuit weight gradient norm {grad:.2g} (< {VANISHING_GRAD_NORM:g}) in epoch "
                        f"{epoch}: vanishing gradients (barren plateau, or an output the model ignores); "
                        "the circuit is not learning"
                    )
        return found


def _input_warnings(name: str, n_inputs: int, epoch: Any, stat: dict[str, float], previous: str | None) -> list[str]:
    found = []
    dead = int(stat["dead_inputs"]) if stat["dead_inputs"] > 0 else 0  # NaN (no training batch): 0
    worst = int(stat["min_std_input"]) if dead else None
    if dead == 1:
        found.append(
            f"{name}: input {worst} is dead (std {stat['angle_min_std']:.2g} over epoch {epoch}): "
            "its rotation barely changes, so the circuit sees a constant there"
        )
    elif dead > 1:
        found.append(
            f"{name}: {dead} of {n_inputs} inputs are dead (std < {DEAD_INPUT_STD:g} over epoch {epoch}; "
            f"input {worst}: {stat['angle_min_std']:.2g}): their rotations barely change, so the circuit sees "
            "constants there"
        )
    where = _saturation_ends(stat["angle_min"], stat["angle_max"])
    before = f"the layer before ({previous})" if previous else "the layer before"
    if stat["saturated"] >= SATURATED_FRACTION:
        found.append(
            f"{name}: {stat['saturated']:.0%} of input values saturated {where} in epoch {epoch}: "
            f"little gradient reaches {before}"
        )
    elif stat["max_feature_saturated"] >= FEATURE_SATURATED_FRACTION:
        found.append(
            f"{name}: input {int(stat['max_saturated_input'])} is saturated {where} in "
            f"{stat['max_feature_saturated']:.0%} of values in epoch {epoch}: little gradient reaches {before} "
            "through it"
        )
    return found


def _saturation_ends(low: float, high: float) -> str:
    """Where saturated values sit, for inputs observed in ``[low, high]`` (see the module docstring)."""
    bound = next((b for b in SATURATION_BOUNDS if max(-low, high) <= b * (1 + _ROUNDING)), SATURATION_BOUNDS[-1])
    name = "π" if bound == math.pi else f"{bound:g}"
    if low >= 0:
        return f"at 0 or {name} (sigmoid-like, or rates that never or always fire)"
    return f"at ±{name} (tanh-like)"

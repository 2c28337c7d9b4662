"""Build the circuit layer of a hybrid model, or the classical twin that replaces it."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hqnn.exceptions import ConfigError, ShapeError
from hqnn.layers import ClassicalTwin
from hqnn.qnn import QuantumLayer
from hqnn.templates import recipes

__all__ = ["circuit_layer", "init_circuit_weights"]

WEIGHT_INITS = ("uniform", "normal")


def circuit_layer(circuit: str | None, n_inputs: int, n_outputs: int, **recipe_kwargs: Any) -> nn.Module:
    """The quantum layer built from the recipe ``hqnn.templates.recipes.<circuit>(**recipe_kwargs)``,
    or, for ``circuit=None``, a :class:`ClassicalTwin` of the same widths.

    Args:
        circuit: recipe name (``"hcqdl_crx_ring"``, ``"rezk_qnn"``, ...) or None for the twin.
        n_inputs: input width the model feeds the layer.
        n_outputs: output width the model expects from it.
        **recipe_kwargs: passed to the recipe (unused by the twin).

    Returns:
        a module mapping ``(B, n_inputs) -> (B, n_outputs)``; a quantum layer has its weights
        initialised U(0, 2 pi).

    Raises:
        ConfigError: for an unknown recipe.
        ShapeError: if the recipe's circuit has other widths than the model needs.
    """
    if circuit is None:
        return ClassicalTwin(n_inputs, n_outputs)
    build = getattr(recipes, circuit, None)
    if build is None or circuit.startswith("_"):
        known = ", ".join(getattr(recipes, "__all__", ()))
        raise ConfigError(f"unknown circuit recipe {circuit!r}; expected None (classical twin) or one of: {known}")
    built = build(**recipe_kwargs)
    if (built.n_inputs, built.n_outputs) != (n_inputs, n_outputs):
        raise ShapeError(
            f"circuit {circuit!r}({recipe_kwargs}) maps {built.n_inputs} inputs to {built.n_outputs} outputs; "
            f"this model needs {n_inputs} -> {n_outputs}"
        )
    return QuantumLayer(built, init="uniform")


def init_circuit_weights(layer: nn.Module, init: str) -> None:
    """Re-initialise a quantum layer's angles: ``"uniform"`` U(0, 2 pi) or ``"normal"``, the
    half-normal ``trunc_normal(mean 0, std 1, a=0, b=2 pi)`` of SQDR-CNN. A classical twin is left as is.

    Raises:
        ConfigError: for another ``init``.
    """
    if init not in WEIGHT_INITS:
        raise ConfigError(f"unknown circuit weight init {init!r}; expected one of {WEIGHT_INITS}")
    if not isinstance(layer, QuantumLayer):
        return
    with torch.no_grad():
        if init == "uniform":
            layer.weights.uniform_(0.0, 2 * math.pi)
        else:
            nn.init.trunc_normal_(layer.weights, mean=0.0, std=1.0, a=0.0, b=2 * math.pi)

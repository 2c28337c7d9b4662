"""Build the circuit layer of a hybrid model, or the classical twin that replaces it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hqnn.exceptions import ConfigError, ShapeError
from hqnn.layers import ClassicalTwin
from hqnn.qnn import QuantumLayer
from hqnn.templates import noisy_recipes
from hqnn.templates.recipes import RECIPES

__all__ = ["CIRCUITS", "ENCODINGS", "AngleEncoder", "circuit_layer"]

# Every recipe a model may name: the noiseless seed circuits and their noisy (density-matrix) versions.
CIRCUITS = {**RECIPES, **{name: getattr(noisy_recipes, name) for name in noisy_recipes.__all__}}


ENCODINGS = ("none", "tanh", "bn_sigmoid")


class AngleEncoder(nn.Module):
    """How features become the circuit's input angles.

    ``"none"``: as given; ``"tanh"``: ``tanh(x)`` (HCQDL's published map, angles in (-1, 1) rad);
    ``"bn_sigmoid"``: ``scale * sigmoid(BatchNorm1d(x))``: the batch statistics keep every feature
    spread out and away from saturation, and the angles fill (0, scale) with the centre at
    scale / 2, so with scale π an RY angle covers (0, π), where ⟨Z⟩ = cos θ is one-to-one:
    the sign of a feature is not lost, as it is for RY(x) with x in (-1, 1) (cos is even).

    Args:
        kind: one of :data:`ENCODINGS`.
        n_features: input width (for the batch norm).
        scale: angle range of ``"bn_sigmoid"`` (π for circuits that read raw angles, 1 for
            circuits that multiply by π themselves).

    Shapes: ``(B, n_features) -> (B, n_features)``.

    Raises:
        ConfigError: an unknown kind.
    """

    def __init__(self, kind: str, n_features: int, scale: float = 1.0):
        super().__init__()
        if kind not in ENCODINGS:
            raise ConfigError(f"unknown encoding {kind!r}; expected one of {', '.join(ENCODINGS)}")
        self.kind, self.scale = kind, scale
        self.norm = nn.BatchNorm1d(n_features) if kind == "bn_sigmoid" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "tanh":
            return torch.tanh(x)
        if self.norm is not None:  # kind "bn_sigmoid"
            return self.scale * torch.sigmoid(self.norm(x))
        return x

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, scale={self.scale:g}"


def circuit_layer(
    circuit: str | None, n_inputs: int, n_outputs: int, init: str = "uniform", **recipe_kwargs: Any
) -> nn.Module:
    """The :class:`QuantumLayer` of the recipe ``CIRCUITS[circuit](**recipe_kwargs)``,
    or, for ``circuit=None``, a :class:`ClassicalTwin` of the same widths.

    Args:
        circuit: recipe name (``"hcqdl_crx_ring"``, ``"rezk_qnn"``, ...) or None for the twin.
        n_inputs: input width the model feeds the layer.
        n_outputs: output width the model expects from it.
        init: the quantum layer's weight initialiser (``"uniform"`` U(0, 2 pi), ``"truncated_normal"``, ...).
        **recipe_kwargs: passed to the recipe (unused by the twin).

    Returns:
        a module mapping ``(B, n_inputs) -> (B, n_outputs)``.

    Raises:
        ConfigError: for an unknown recipe or initialiser.
        ShapeError: if the recipe's circuit has other widths than the model needs.
    """
    if circuit is None:
        return ClassicalTwin(n_inputs, n_outputs)
    if circuit not in CIRCUITS:
        raise ConfigError(
            f"unknown circuit recipe {circuit!r}; expected None (classical twin) or one of: {', '.join(CIRCUITS)}"
        )
    built = CIRCUITS[circuit](**recipe_kwargs)
    if (built.n_inputs, built.n_outputs) != (n_inputs, n_outputs):
        raise ShapeError(
            f"circuit {circuit!r}({recipe_kwargs}) maps {built.n_inputs} inputs to {built.n_outputs} outputs; "
            f"this model needs {n_inputs} -> {n_outputs}"
        )
    return QuantumLayer(built, init=init)

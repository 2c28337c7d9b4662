"""``QuantumLayer``: a circuit as a ``torch.nn`` layer that owns its weights."""

from __future__ import annotations

import torch
from torch import nn

from hqnn.exceptions import ShapeError
from hqnn.qnn.init import initialize
from hqnn.sim.circuit import Circuit
from hqnn.sim.execute import run

__all__ = ["QuantumLayer"]


class QuantumLayer(nn.Module):
    """A circuit's trainable weights as one Parameter; maps ``(..., n_inputs) -> (..., n_outputs)``.

    The layer is stateless between calls (nothing to reset), follows its inputs' device, and can be
    saved with ``state_dict``, ``torch.save`` of the whole module, pickling or ``copy.deepcopy``.

    Args:
        circuit: the circuit (see :class:`hqnn.sim.Circuit`).
        init: weight initialiser: "uniform" (U[0, 2π), the default), "normal", "truncated_normal", "zeros".
        init_kwargs: settings of the initialiser (e.g. ``{"std": 0.1}``).
        method: simulation method passed to :func:`hqnn.sim.run`.

    Raises:
        ShapeError: inputs whose last dimension is not ``circuit.n_inputs``.

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> layer = QuantumLayer(rezk_qnn())
        >>> layer(torch.zeros(8, 4)).shape
        torch.Size([8, 4])
    """

    def __init__(self, circuit: Circuit, init: str = "uniform", init_kwargs: dict | None = None,
                 method: str = "auto"):
        super().__init__()
        if not isinstance(circuit, Circuit):
            raise TypeError(f"QuantumLayer needs an hqnn Circuit; got {type(circuit).__name__}")
        self.circuit = circuit
        self.method = method
        self.init, self.init_kwargs = init, dict(init_kwargs or {})
        self.weights = nn.Parameter(torch.empty(circuit.n_weights))
        self.reset_parameters()

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
        out = run(self.circuit, x.reshape(-1, self.n_inputs), self.weights.to(x.device), method=self.method)
        return out.reshape(*lead, out.shape[-1])

    def extra_repr(self) -> str:
        return f"n_qubits={self.circuit.n_qubits}, n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, n_weights={self.circuit.n_weights}"
